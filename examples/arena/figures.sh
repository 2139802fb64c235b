#!/usr/bin/env bash
# Reproduces the arena figures of the README: 100 rooms of 8 bots at 30 Hz
# (plain, then 8 bots reset, then 8 bots blackholed for 3s behind the
# impairment proxy), each against a fresh server. Prints the machine's load
# and, per run, the bot's and the server's last JSON lines.
#
#	bash examples/arena/figures.sh [duration]
#
# SERVER_FLAGS adds flags to the server's (e.g. -park 1ms), and NICE runs it
# at that niceness (e.g. -10, as root):
#
#	NICE=-10 bash examples/arena/figures.sh 20s
set -euo pipefail
cd "$(dirname "$0")/../.."
dur=${1:-30s}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./examples/arena/server ./examples/arena/bot
addr=127.0.0.1:7399

run() {
	name=$1
	shift
	# shellcheck disable=SC2086 # SERVER_FLAGS is a list of flags
	nice -n "${NICE:-0}" "$bin/server" -addr "$addr" ${SERVER_FLAGS:-} >"$bin/server.out" 2>"$bin/server.err" &
	local pid=$!
	sleep 0.5
	echo "== $name, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
	"$bin/bot" -addr "$addr" -n 800 -duration "$dur" "$@" | tail -1 | sed 's/^/bot:    /'
	kill -INT "$pid"
	wait "$pid"
	tail -1 "$bin/server.out" | sed 's/^/server: /'
}
run plain
run reset -cut 8 -cut-at 5s
run blackhole -cut 8 -cut-at 5s -blackhole 3s

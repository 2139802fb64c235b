#!/usr/bin/env bash
# Reproduces the arena figures of the README: 100 rooms of 8 bots at 30 Hz
# (plain, then 8 bots reset, then 8 bots blackholed for 3s behind the
# impairment proxy), each against a fresh server. Prints the machine's load
# and, per run, the bot's and the server's last JSON lines. During the plain
# run, examples/arena/wakelat measures how late the operating system wakes
# a C thread at the server's priority (the floor under the ticks' lateness).
#
#	bash examples/arena/figures.sh [duration]
#
# SERVER_FLAGS adds flags to the server's (e.g. -park 1ms), NICE runs it
# at that niceness (e.g. -10, as root) and SCHED runs it under chrt with
# those arguments (e.g. "-f 10" for SCHED_FIFO, as root):
#
#	NICE=-10 bash examples/arena/figures.sh 20s
#	SCHED="-f 10" bash examples/arena/figures.sh 20s
set -euo pipefail
cd "$(dirname "$0")/../.."
dur=${1:-30s}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./examples/arena/server ./examples/arena/bot ./examples/arena/wakelat
addr=127.0.0.1:7399
prio=(nice -n "${NICE:-0}")
if [ -n "${SCHED:-}" ]; then
	# shellcheck disable=SC2206 # SCHED is a list of chrt arguments
	prio=(chrt ${SCHED})
fi

run() {
	name=$1
	shift
	# shellcheck disable=SC2086 # SERVER_FLAGS is a list of flags
	"${prio[@]}" "$bin/server" -addr "$addr" ${SERVER_FLAGS:-} >"$bin/server.out" 2>"$bin/server.err" &
	local pid=$!
	sleep 0.5
	echo "== $name, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
	local wl=
	if [ "$name" = plain ]; then
		"${prio[@]}" "$bin/wakelat" -duration "$dur" >"$bin/wakelat.out" &
		wl=$!
	fi
	"$bin/bot" -addr "$addr" -n 800 -duration "$dur" "$@" | tail -1 | sed 's/^/bot:    /'
	if [ -n "$wl" ]; then
		wait "$wl"
		sed 's/^/os:     /' "$bin/wakelat.out"
	fi
	kill -INT "$pid"
	wait "$pid"
	tail -1 "$bin/server.out" | sed 's/^/server: /'
}
run plain
run reset -cut 8 -cut-at 5s
run blackhole -cut 8 -cut-at 5s -blackhole 3s

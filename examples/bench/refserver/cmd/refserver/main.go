// Command refserver runs the hand-written go-enet reference echo server
// (package refserver) until interrupted.
//
// Usage:
//
//	refserver [-addr 127.0.0.1:6789] [-peers 4095] [-poll]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/codecat/go-enet"
	"github.com/enetkit/enetkit/examples/bench/refserver"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6789", "listen address ip:port")
	peers := flag.Int("peers", refserver.MaxPeers, "peer slots")
	poll := flag.Bool("poll", false, "busy-poll Service(0) instead of blocking in Service(1)")
	flag.Parse()
	if err := run(*addr, *peers, *poll); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(addr string, peers int, poll bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enet.Initialize()
	defer enet.Deinitialize()
	s, err := refserver.Listen(addr, peers, poll)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "refserver: listening on %s (pid %d, peers %d, poll %v)\n", addr, os.Getpid(), peers, poll)
	return s.Run(ctx)
}

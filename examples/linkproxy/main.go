// Command linkproxy puts a UDP server, such as an ENet game server, behind a
// simulated bad link. Clients connect to -listen instead of the server:
//
//	linkproxy -listen 127.0.0.1:7000 -target 127.0.0.1:6789 -loss 0.1 -delay 50ms -jitter 20ms -dup 0.01 -reorder 0.01 -seed 1
//
// The impairment applies to both directions. It runs until SIGINT or
// SIGTERM, then prints the datagram counts.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/enetkit/enetkit/integration/linkproxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7000", "`address` clients send to")
	target := flag.String("target", "127.0.0.1:6789", "`address` of the server")
	var l linkproxy.Link
	flag.Float64Var(&l.Loss, "loss", 0, "independent drop probability")
	flag.Float64Var(&l.BurstEnter, "burst-enter", 0, "per-datagram probability of entering a loss burst")
	flag.Float64Var(&l.BurstExit, "burst-exit", 0, "per-datagram probability of leaving a loss burst")
	flag.DurationVar(&l.Delay, "delay", 0, "one-way delay")
	flag.DurationVar(&l.Jitter, "jitter", 0, "uniform jitter, +/- this much")
	flag.Float64Var(&l.Duplicate, "dup", 0, "duplication probability")
	flag.Float64Var(&l.Reorder, "reorder", 0, "probability a datagram is held back by -reorder-delay")
	flag.DurationVar(&l.ReorderDelay, "reorder-delay", 0, "extra delay of a reordered datagram (0: 10ms)")
	seed := flag.Int64("seed", 1, "random seed")
	flag.Parse()

	p, err := linkproxy.New(*listen, *target, linkproxy.Config{Up: l, Down: l, Seed: *seed})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("linkproxy: %v -> %s, %+v\n", p.Addr(), *target, l)
	if err := p.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	printStats(p.Stats())
}

func printStats(s linkproxy.Stats) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\treceived\tforwarded\tlost\tburst\tblackholed\toverflow\tduplicated\treordered\terrors\t")
	for _, d := range []struct {
		name string
		s    linkproxy.DirStats
	}{{"up", s.Up}, {"down", s.Down}} {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", d.name, d.s.Received, d.s.Forwarded,
			d.s.Lost, d.s.BurstLost, d.s.Blackholed, d.s.Overflow, d.s.Duplicated, d.s.Reordered, d.s.Errors)
	}
	w.Flush()
}

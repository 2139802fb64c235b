// Command server shows ENet channels: it accepts connections with two
// channels, echoes every message received on channel 0, and only counts and
// prints those received on channel 1.
//
//	go run ./examples/channels/server -addr localhost:6789
//
// Talk to it with go run ./examples/channels/client. When a client leaves,
// the server prints how many of its messages it echoed and ignored. It runs
// until SIGINT or SIGTERM, then disconnects its clients and exits with
// status 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/netloop"
)

func main() {
	addr := flag.String("addr", "localhost:6789", "`address` to listen on")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string) error {
	// A client asking for more channels gets two; for fewer, what it asked.
	host, err := netloop.New(addr, netloop.WithChannels(2))
	if err != nil {
		return err
	}
	fmt.Println("listening on", host.Addr())

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return host.Run(ctx) })
	g.Go(func() error { return serve(ctx, host) })
	return g.Wait()
}

// client is what the server knows of one connection.
type client struct {
	addr    netip.AddrPort
	echoed  int // messages on channel 0
	ignored int // messages on channel 1
}

// serve handles the host's events until Run closes the channel.
func serve(ctx context.Context, host *netloop.Host) error {
	clients := make(map[netloop.Peer]*client)
	for ev := range host.Events() {
		switch ev.Kind {
		case netloop.EventConnect:
			clients[ev.Peer] = &client{addr: ev.Addr}
			fmt.Println("Connected:", ev.Addr)
		case netloop.EventReceive:
			c := clients[ev.Peer]
			if ev.Channel != 0 {
				c.ignored++
				fmt.Printf("channel %d: %s from %v (ignored)\n", ev.Channel, ev.Payload, c.addr)
				continue
			}
			c.echoed++
			fmt.Printf("channel 0: %s from %v (echoed)\n", ev.Payload, c.addr)
			err := host.Send(ctx, ev.Peer, 0, ev.Payload, ev.Flag)
			if err != nil && !errors.Is(err, netloop.ErrClosed) && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "server: echo to %v: %v\n", c.addr, err)
			}
		case netloop.EventDisconnect:
			c := clients[ev.Peer]
			fmt.Printf("Disconnected: %v (%v): echoed %d, ignored %d\n", c.addr, ev.Reason, c.echoed, c.ignored)
			delete(clients, ev.Peer)
		}
	}
	return nil
}

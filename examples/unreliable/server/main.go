// Command server shows ENet's unreliable (sequenced) delivery. A client
// greets it with a reliable message on channel 0, sends a burst of
// unreliable messages on channel 1, each holding a 4-byte big-endian
// sequence number, then a reliable "done <n>" on channel 0. The server
// counts the unreliable messages it received, checks that their sequence
// numbers increase, and replies on channel 0 with a summary such as
// "received 100 of 100 in order".
//
//	go run ./examples/unreliable/server -addr localhost:6789
//
// Talk to it with go run ./examples/unreliable/client. It runs until SIGINT
// or SIGTERM, then disconnects its clients and exits with status 0.
package main

import (
	"context"
	"encoding/binary"
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

// burst is what the server knows of one client's burst.
type burst struct {
	addr       netip.AddrPort
	received   int    // unreliable messages
	last       uint32 // the last sequence number received
	outOfOrder int    // messages whose sequence number was not above the last
	malformed  int    // messages without a sequence number
}

// serve handles the host's events until Run closes the channel.
func serve(ctx context.Context, host *netloop.Host) error {
	bursts := make(map[netloop.Peer]*burst)
	for ev := range host.Events() {
		switch ev.Kind {
		case netloop.EventConnect:
			bursts[ev.Peer] = &burst{addr: ev.Addr}
			fmt.Println("Connected:", ev.Addr)
		case netloop.EventReceive:
			b := bursts[ev.Peer]
			if ev.Channel != 0 {
				b.count(ev.Payload)
				continue
			}
			var n int
			if _, err := fmt.Sscanf(string(ev.Payload), "done %d", &n); err != nil {
				fmt.Printf("Got message: %s from %v\n", ev.Payload, b.addr)
				continue
			}
			summary := b.summary(n)
			fmt.Printf("%v: %s\n", b.addr, summary)
			*b = burst{addr: b.addr} // ready for another burst
			err := host.Send(ctx, ev.Peer, 0, []byte(summary), netloop.Reliable)
			if err != nil && !errors.Is(err, netloop.ErrClosed) && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "server: reply to %v: %v\n", b.addr, err)
			}
		case netloop.EventDisconnect:
			fmt.Printf("Disconnected: %v (%v)\n", bursts[ev.Peer].addr, ev.Reason)
			delete(bursts, ev.Peer)
		}
	}
	return nil
}

func (b *burst) count(msg []byte) {
	if len(msg) < 4 {
		b.malformed++
		return
	}
	seq := binary.BigEndian.Uint32(msg)
	if b.received > 0 && seq <= b.last {
		b.outOfOrder++
	}
	b.received++
	b.last = seq
}

func (b *burst) summary(n int) string {
	s := fmt.Sprintf("received %d of %d", b.received, n)
	if b.outOfOrder == 0 {
		s += " in order"
	} else {
		s += fmt.Sprintf(", %d out of order", b.outOfOrder)
	}
	if b.malformed > 0 {
		s += fmt.Sprintf(", %d malformed", b.malformed)
	}
	return s
}

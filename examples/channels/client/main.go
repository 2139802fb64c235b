// Command client exercises ENet channels against the channels server: it
// connects with two channels, sends -n reliable messages on each, and checks
// that exactly those sent on channel 0 come back, in order, and none of
// those sent on channel 1.
//
//	go run ./examples/channels/client -addr localhost:6789 -n 10
//
// Start go run ./examples/channels/server first. The client prints a
// summary and exits with status 0 if the check passes, 1 otherwise
// (including when the exchange does not complete within -timeout).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/netloop"
)

func main() {
	addr := flag.String("addr", "localhost:6789", "server `address`")
	n := flag.Int("n", 10, "messages to send on each channel")
	timeout := flag.Duration("timeout", 5*time.Second, "how long to wait for the server")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *n, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string, n int, timeout time.Duration) error {
	if n < 1 {
		return errors.New("-n must be at least 1")
	}
	host, err := netloop.New("", netloop.WithPeers(1), netloop.WithDrainTimeout(time.Second))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("no answer from %s within %v (is the server running?)", addr, timeout))
	defer cancel()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return host.Run(ctx) })
	g.Go(func() error {
		defer host.Close()
		return talk(ctx, host, addr, n)
	})
	return g.Wait()
}

func message(ch uint8, i int) string { return fmt.Sprintf("message %d on channel %d", i, ch) }

// talk connects to addr, sends n messages on each channel, collects the
// echoes of the channel-0 ones and disconnects.
func talk(ctx context.Context, host *netloop.Host, addr string, n int) error {
	server, err := host.Connect(ctx, addr, 2, 0)
	if err != nil {
		return err
	}
	var got [2]int // echoes received on channel 0, and on any other
	var bad error  // the first unexpected echo
	for {
		var ev netloop.Event
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; got back %d of %d messages", context.Cause(ctx), got[0], n)
		case e, ok := <-host.Events():
			if !ok {
				return netloop.ErrClosed
			}
			ev = e
		}
		switch ev.Kind {
		case netloop.EventConnect:
			fmt.Println("Connected to", ev.Addr)
			// The server decides how many channels the connection has.
			info, err := host.PeerInfo(ctx, server)
			if err != nil {
				return err
			}
			if info.Channels < 2 {
				return fmt.Errorf("%s granted %d channel(s), need 2", addr, info.Channels)
			}
			// Channel 1 first in each pair: on a link that keeps order, an
			// echo of it would come before the last channel-0 echo.
			for i := range n {
				for _, ch := range []uint8{1, 0} {
					if err := host.Send(ctx, server, ch, []byte(message(ch, i)), netloop.Reliable); err != nil {
						return err
					}
				}
			}
		case netloop.EventReceive:
			if ev.Channel != 0 {
				got[1]++
				if bad == nil {
					bad = fmt.Errorf("unexpected echo on channel %d: %q", ev.Channel, ev.Payload)
				}
				continue
			}
			if want := message(0, got[0]); string(ev.Payload) != want && bad == nil {
				bad = fmt.Errorf("echo %q, want %q", ev.Payload, want)
			}
			if got[0]++; got[0] == n {
				if err := host.Disconnect(ctx, server, 0); err != nil {
					return err
				}
			}
		case netloop.EventDisconnect:
			if ev.Reason == netloop.ReasonConnectFailed {
				return fmt.Errorf("cannot connect to %s", addr)
			}
			fmt.Printf("sent %d messages on channel 0 and %d on channel 1; got back %d on channel 0 and %d on channel 1\n",
				n, n, got[0], got[1])
			switch {
			case ev.Reason != netloop.ReasonLocal:
				return fmt.Errorf("connection to %s ended: %v", addr, ev.Reason)
			case bad != nil:
				return bad
			}
			fmt.Println("OK: exactly the channel-0 messages came back")
			return nil
		}
	}
}

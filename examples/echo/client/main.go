// Command client is the Go version of client.lua in lua-enet's tutorial: it
// connects to an ENet echo server, sends a message, prints the reply,
// disconnects cleanly and exits with status 0.
//
//	go run ./examples/echo/client -addr localhost:6789 -msg "hello world"
//
// Start go run ./examples/echo/server first, or any ENet 1.3 echo server:
// the message travels as it is, without framing. If the exchange does not
// complete within -timeout (no server, say), it exits with status 1.
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
	msg := flag.String("msg", "hello world", "`message` to send")
	timeout := flag.Duration("timeout", 5*time.Second, "how long to wait for the server")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *msg, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr, msg string, timeout time.Duration) error {
	if msg == "" {
		return errors.New("-msg is empty: ENet sends no empty messages")
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
		defer host.Close() // the exchange is over: stop Run
		return talk(ctx, host, addr, msg)
	})
	return g.Wait()
}

// talk connects to addr, sends msg, waits for the echo and disconnects.
func talk(ctx context.Context, host *netloop.Host, addr, msg string) error {
	server, err := host.Connect(ctx, addr, 1, 0)
	if err != nil {
		return err
	}
	for {
		var ev netloop.Event
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case e, ok := <-host.Events():
			if !ok {
				return netloop.ErrClosed
			}
			ev = e
		}
		switch ev.Kind {
		case netloop.EventConnect:
			fmt.Println("Connected to", ev.Addr)
			if err := host.Send(ctx, server, 0, []byte(msg), netloop.Reliable); err != nil {
				return err
			}
		case netloop.EventReceive:
			fmt.Printf("Got message: %s\n", ev.Payload)
			if string(ev.Payload) != msg {
				return fmt.Errorf("reply %q, want %q", ev.Payload, msg)
			}
			// As client.lua does: disconnect, so that the server need not
			// wait for a timeout. The Disconnect event confirms it.
			if err := host.Disconnect(ctx, server, 0); err != nil {
				return err
			}
		case netloop.EventDisconnect:
			switch ev.Reason {
			case netloop.ReasonLocal:
				return nil // the server acknowledged our disconnect
			case netloop.ReasonConnectFailed:
				return fmt.Errorf("cannot connect to %s", addr)
			}
			return fmt.Errorf("connection to %s ended: %v", addr, ev.Reason)
		}
	}
}

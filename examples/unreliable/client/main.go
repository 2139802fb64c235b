// Command client sends a burst of unreliable messages to the unreliable
// server and prints what the server saw. It greets the server with a
// reliable message on channel 0, sends -n unreliable messages on channel 1,
// each holding its sequence number (4 bytes, big-endian), then a reliable
// "done <n>" on channel 0, and prints the server's reply, such as "received
// 100 of 100 in order".
//
//	go run ./examples/unreliable/client -addr localhost:6789 -n 100
//
// Start go run ./examples/unreliable/server first. Unreliable messages may
// be lost (on loopback they rarely are), and ENet orders messages within a
// channel only, so on a real network the reliable "done" may overtake part
// of the burst, which then counts as lost. The client exits with status 0
// once it has the reply, and 1 if it has none within -timeout.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
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
	n := flag.Int("n", 100, "unreliable messages to send")
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
	if n < 0 {
		return errors.New("-n must not be negative")
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

// talk connects to addr, sends the burst, prints the server's summary and
// disconnects.
func talk(ctx context.Context, host *netloop.Host, addr string, n int) error {
	server, err := host.Connect(ctx, addr, 2, 0)
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
			info, err := host.PeerInfo(ctx, server)
			if err != nil {
				return err
			}
			if info.Channels < 2 {
				return fmt.Errorf("%s granted %d channel(s), need 2", addr, info.Channels)
			}
			if err := send(ctx, host, server, n); err != nil {
				return err
			}
		case netloop.EventReceive:
			if ev.Channel != 0 || !bytes.HasPrefix(ev.Payload, []byte("received ")) {
				fmt.Printf("unexpected message on channel %d: %q\n", ev.Channel, ev.Payload)
				continue
			}
			fmt.Printf("server: %s\n", ev.Payload)
			if err := host.Disconnect(ctx, server, 0); err != nil {
				return err
			}
		case netloop.EventDisconnect:
			switch ev.Reason {
			case netloop.ReasonLocal:
				return nil
			case netloop.ReasonConnectFailed:
				return fmt.Errorf("cannot connect to %s", addr)
			}
			return fmt.Errorf("connection to %s ended: %v", addr, ev.Reason)
		}
	}
}

// send sends the greeting, the burst of n and "done".
func send(ctx context.Context, host *netloop.Host, server netloop.Peer, n int) error {
	if err := host.Send(ctx, server, 0, []byte("hello"), netloop.Reliable); err != nil {
		return err
	}
	// One buffer for the whole burst: Send keeps each slice until it is
	// sent, and nothing writes to it after.
	seqs := make([]byte, 4*n)
	for i := range n {
		msg := seqs[4*i : 4*i+4]
		binary.BigEndian.PutUint32(msg, uint32(i))
		if err := host.Send(ctx, server, 1, msg, netloop.Unreliable); err != nil {
			return err
		}
	}
	// Put the burst on the wire before "done", which travels on another
	// channel and so is not ordered with it.
	if err := host.Flush(ctx); err != nil {
		return err
	}
	return host.Send(ctx, server, 0, fmt.Appendf(nil, "done %d", n), netloop.Reliable)
}

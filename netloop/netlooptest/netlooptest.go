// Package netlooptest runs netloop hosts in tests, in the manner of
// net/http/httptest: hosts on loopback that stop with the test, and waits
// on events that fail the test after a deadline instead of sleeping.
//
//	srv := netlooptest.Start(t, "127.0.0.1:0")
//	cli := netlooptest.Start(t, "")
//	p := netlooptest.Dial(t, cli, srv.Addr().String(), 1, 0)
//	ev := netlooptest.Expect(t, srv, netloop.EventConnect)
package netlooptest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// Timeout is the longest any helper waits for one thing to happen.
const Timeout = 10 * time.Second

// Go runs run(ctx) in a goroutine until stop is called or the test ends:
// then it cancels ctx, waits for run (at most Timeout) and fails the test if
// run returned an error or did not return. stop returns run's error; it is
// idempotent.
func Go(tb testing.TB, run func(ctx context.Context) error) (stop func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	var (
		once sync.Once
		err  error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(Timeout):
				err = errors.New("netlooptest: run did not return")
			}
		})
		return err
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("netlooptest: %v", err)
		}
	})
	return stop
}

// Start creates a host on addr ("" for a client host) and runs it until the
// test ends. When it stops, its remaining events are drained, so that its
// shutdown never waits for the test.
func Start(tb testing.TB, addr string, opts ...netloop.Option) *netloop.Host {
	tb.Helper()
	h, err := netloop.New(addr, opts...)
	if err != nil {
		tb.Fatalf("netlooptest: New(%q): %v", addr, err)
	}
	Go(tb, func(ctx context.Context) error {
		context.AfterFunc(ctx, func() { // ends when Run closes Events
			for range h.Events() {
			}
		})
		return h.Run(ctx)
	})
	return h
}

// Next returns h's next event, failing the test if none comes within
// Timeout or Events is closed.
func Next(tb testing.TB, h *netloop.Host) netloop.Event {
	tb.Helper()
	select {
	case ev, ok := <-h.Events():
		if !ok {
			tb.Fatal("netlooptest: events closed")
		}
		return ev
	case <-time.After(Timeout):
		tb.Fatal("netlooptest: no event")
	}
	return netloop.Event{}
}

// Expect returns h's next event, which must be of kind k.
func Expect(tb testing.TB, h *netloop.Host, k netloop.Kind) netloop.Event {
	tb.Helper()
	ev := Next(tb, h)
	if ev.Kind != k {
		tb.Fatalf("netlooptest: event %v (%+v), want %v", ev.Kind, ev, k)
	}
	return ev
}

// Dial connects h to addr and waits for the connection's Connect event,
// which must be h's next event.
func Dial(tb testing.TB, h *netloop.Host, addr string, channels int, data uint32) netloop.Peer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	p, err := h.Connect(ctx, addr, channels, data)
	if err != nil {
		tb.Fatalf("netlooptest: Connect(%q): %v", addr, err)
	}
	if ev := Expect(tb, h, netloop.EventConnect); ev.Peer != p {
		tb.Fatalf("netlooptest: Connect event for %v, want %v", ev.Peer, p)
	}
	return p
}

// Silent returns the address of a UDP socket on loopback that reads nothing
// and answers nothing, until the test ends: a connection to it never
// completes, as to a host that has vanished.
func Silent(tb testing.TB) netip.AddrPort {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatalf("netlooptest: silent socket: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

package netloop_test

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/enetkit/enetkit/netloop"
)

// Helpers beyond those of helpers_test.go.

// launch creates a host and runs it, like start, but lets the test stop it:
// stop cancels Run's context and returns Run's error (it is idempotent).
// The cleanup stops the host if the test did not, draining its events.
func launch(t *testing.T, addr string, opts ...netloop.Option) (h *netloop.Host, stop func() error) {
	t.Helper()
	opts = append([]netloop.Option{netloop.WithLogger(zaptest.NewLogger(t)), netloop.WithDrainTimeout(time.Second)}, opts...)
	h, err := netloop.New(addr, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", addr, err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.Run(runCtx) }()
	var (
		once   sync.Once
		runErr error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(wait):
				runErr = errors.New("Run did not return")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		go func() {
			for range h.Events() {
			}
		}()
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h, stop
}

// dial connects cli to srv and waits for the client's Connect event only;
// the server's Connect event is left on its Events.
func dial(t *testing.T, cli, srv *netloop.Host, channels int, data uint32) netloop.Peer {
	t.Helper()
	cp, err := cli.Connect(ctx(t), loopback(srv), channels, data)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if ev := expect(t, cli, netloop.EventConnect); ev.Peer != cp {
		t.Fatalf("client connect peer %v, want %v", ev.Peer, cp)
	}
	return cp
}

// loopback is the address a client uses to reach h, whatever h is bound to.
func loopback(h *netloop.Host) string {
	return "127.0.0.1:" + strconv.Itoa(int(h.Addr().Port()))
}

// stats returns h's Stats or fails the test.
func stats(t *testing.T, h *netloop.Host) netloop.Stats {
	t.Helper()
	s, err := h.Stats(ctx(t))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// info returns p's PeerInfo or fails the test.
func info(t *testing.T, h *netloop.Host, p netloop.Peer) netloop.PeerInfo {
	t.Helper()
	pi, err := h.PeerInfo(ctx(t), p)
	if err != nil {
		t.Fatalf("PeerInfo(%v): %v", p, err)
	}
	return pi
}

// send sends data from h to p or fails the test.
func send(t *testing.T, h *netloop.Host, p netloop.Peer, ch uint8, data []byte, flag netloop.Flag) {
	t.Helper()
	if err := h.Send(ctx(t), p, ch, data, flag); err != nil {
		t.Fatalf("Send(%v, ch %d, %d bytes, %v): %v", p, ch, len(data), flag, err)
	}
}

// receive returns the next event, which must be a message from p.
func receive(t *testing.T, h *netloop.Host, p netloop.Peer) netloop.Event {
	t.Helper()
	ev := expect(t, h, netloop.EventReceive)
	if ev.Peer != p {
		t.Fatalf("message from %v, want %v", ev.Peer, p)
	}
	return ev
}

// disconnected returns the next event, which must be p's Disconnect for reason why.
func disconnected(t *testing.T, h *netloop.Host, p netloop.Peer, why netloop.Reason) netloop.Event {
	t.Helper()
	ev := expect(t, h, netloop.EventDisconnect)
	if ev.Peer != p || ev.Reason != why {
		t.Fatalf("disconnect of %v (%v), want %v (%v)", ev.Peer, ev.Reason, p, why)
	}
	return ev
}

// closed fails the test unless h's Events is closed once the events still
// buffered are read; it returns those.
func closed(t *testing.T, h *netloop.Host) []netloop.Event {
	t.Helper()
	var evs []netloop.Event
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-h.Events():
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-timeout:
			t.Fatalf("Events not closed; read %d events", len(evs))
		}
	}
}

// roundTrip sends a reliable message each way between two connected ends and
// waits for both: the connection works.
func roundTrip(t *testing.T, a, b *netloop.Host, ap, bp netloop.Peer) {
	t.Helper()
	send(t, a, ap, 0, []byte("ping"), netloop.Reliable)
	if ev := receive(t, b, bp); string(ev.Payload) != "ping" {
		t.Fatalf("got %q, want ping", ev.Payload)
	}
	send(t, b, bp, 0, []byte("pong"), netloop.Reliable)
	if ev := receive(t, a, ap); string(ev.Payload) != "pong" {
		t.Fatalf("got %q, want pong", ev.Payload)
	}
}

// seqMsg is a message numbered within a stream: 1 byte stream, 4 bytes
// sequence number, then padding up to size.
func seqMsg(stream byte, seq uint32, size int) []byte {
	b := make([]byte, max(size, 5))
	b[0] = stream
	binary.BigEndian.PutUint32(b[1:], seq)
	return b
}

func parseSeq(t *testing.T, b []byte) (stream byte, seq uint32) {
	t.Helper()
	if len(b) < 5 {
		t.Fatalf("message of %d bytes, want a numbered one", len(b))
	}
	return b[0], binary.BigEndian.Uint32(b[1:])
}

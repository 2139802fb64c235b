package netloop_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// recorder is an inline handler's log of events, read by the test once the
// host has stopped (or through got, which the handler never waits on).
type recorder struct {
	got chan netloop.Event // buffered: the handler drops nothing while the test keeps up
}

func newRecorder(n int) *recorder { return &recorder{got: make(chan netloop.Event, n)} }

func (r *recorder) record(t *testing.T, ev netloop.Event) {
	select {
	case r.got <- ev:
	default:
		t.Errorf("recorder full: %v of %v lost", ev.Kind, ev.Peer)
	}
}

func (r *recorder) next(t *testing.T, k netloop.Kind) netloop.Event {
	t.Helper()
	select {
	case ev := <-r.got:
		if ev.Kind != k {
			t.Fatalf("inline handler saw %v of %v, want %v", ev.Kind, ev.Peer, k)
		}
		return ev
	case <-time.After(wait):
		t.Fatalf("inline handler saw no %v", k)
	}
	return netloop.Event{}
}

// TestInlineEcho runs an inline echo server: every message is answered
// from the loop's goroutine with Inline.Send; the echoes come back in
// order on each channel, the handler sees each peer's Connect, its messages
// in order and one Disconnect, and Events carries nothing.
func TestInlineEcho(t *testing.T) {
	const channels, n = 2, 2000
	rec := newRecorder(2*channels*n + 8)
	srv, stop := launch(t, "127.0.0.1:0", netloop.WithChannels(channels), netloop.WithInline(func(in *netloop.Inline, ev netloop.Event) {
		rec.record(t, ev)
		if ev.Kind == netloop.EventReceive {
			if err := in.Send(ev.Peer, ev.Channel, ev.Payload, ev.Flag); err != nil {
				t.Errorf("Inline.Send: %v", err)
			}
		}
	}))
	cli := start(t, "", netloop.WithChannels(channels))
	cp := dial(t, cli, srv, channels, 0)
	sp := rec.next(t, netloop.EventConnect).Peer

	sent := make(chan error, 1)
	c := ctx(t)
	go func() {
		for i := range n {
			for ch := range channels {
				// Small messages travel in their command, larger ones in a packet: both.
				if err := cli.Send(c, cp, uint8(ch), seqMsg(byte(ch), uint32(i), 16+ch*200), netloop.Reliable); err != nil {
					sent <- err
					return
				}
			}
		}
		sent <- nil
	}()
	var echoed, seen [channels]uint32
	for range channels * n {
		ev := receive(t, cli, cp)
		stream, seq := parseSeq(t, ev.Payload)
		if stream != ev.Channel || seq != echoed[ev.Channel] {
			t.Fatalf("echo %d of stream %d on channel %d, want %d", seq, stream, ev.Channel, echoed[ev.Channel])
		}
		echoed[ev.Channel]++
		sev := rec.next(t, netloop.EventReceive)
		if sev.Peer != sp {
			t.Fatalf("message of %v, want %v", sev.Peer, sp)
		}
		if _, seq := parseSeq(t, sev.Payload); seq != seen[sev.Channel] {
			t.Fatalf("handler saw message %d on channel %d, want %d", seq, sev.Channel, seen[sev.Channel])
		}
		seen[sev.Channel]++
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := cli.Disconnect(c, cp, 5); err != nil {
		t.Fatal(err)
	}
	if ev := rec.next(t, netloop.EventDisconnect); ev.Peer != sp || ev.Reason != netloop.ReasonRemote || ev.Data != 5 {
		t.Fatalf("disconnect %+v, want %v remote data 5", ev, sp)
	}
	disconnected(t, cli, cp, netloop.ReasonLocal)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if evs := closed(t, srv); len(evs) != 0 {
		t.Fatalf("Events carried %d events in inline mode", len(evs))
	}
	if s := stats(t, srv); s.Receives != channels*n || s.SentByFlag[netloop.Reliable] != channels*n {
		t.Fatalf("Receives %d, sent %d, want %d each", s.Receives, s.SentByFlag[netloop.Reliable], channels*n)
	}
}

// TestInlineCalls covers the Inline's other methods from the handler:
// Broadcast, Multicast, DisconnectNow (whose Disconnect event comes after
// the call, not inside it), errors for bad input, ErrLoopGoroutine for Host
// calls that would wait for the loop, and ErrInlineDone after the call.
func TestInlineCalls(t *testing.T) {
	rec := newRecorder(64)
	errs := make(chan error, 64)
	var kept *netloop.Inline
	inCall := false
	srv, stop := launch(t, "127.0.0.1:0", netloop.WithInline(func(in *netloop.Inline, ev netloop.Event) {
		if inCall {
			t.Error("inline handler called inside itself")
		}
		inCall = true
		defer func() { inCall = false }()
		rec.record(t, ev)
		kept = in
		if ev.Kind != netloop.EventReceive {
			return
		}
		switch string(ev.Payload) {
		case "broadcast":
			errs <- in.Broadcast(0, []byte("to all"), netloop.Reliable)
		case "multicast":
			errs <- in.Multicast([]netloop.Peer{ev.Peer, {}}, 0, bytes.Repeat([]byte("m"), 500), netloop.Reliable)
		case "bad":
			errs <- in.Send(ev.Peer, 3, []byte("x"), netloop.Reliable) // no channel 3
			errs <- in.Send(ev.Peer, 0, nil, netloop.Reliable)
			errs <- in.Send(netloop.Peer{}, 0, []byte("x"), netloop.Reliable)
			_, err := in.Host().Stats(context.Background())
			errs <- err
			errs <- in.Host().Flush(context.Background())
		case "bye":
			errs <- in.DisconnectNow(ev.Peer, 9)
			errs <- in.Send(ev.Peer, 0, []byte("late"), netloop.Reliable) // the peer is gone
		}
	}))
	cli := start(t, "")
	a := dial(t, cli, srv, 1, 0)
	b := dial(t, cli, srv, 1, 0)
	sa := rec.next(t, netloop.EventConnect).Peer
	rec.next(t, netloop.EventConnect)
	want := func(e error) {
		t.Helper()
		select {
		case err := <-errs:
			if !errors.Is(err, e) && !(e == nil && err == nil) {
				t.Fatalf("error %v, want %v", err, e)
			}
		case <-time.After(wait):
			t.Fatal("handler did not answer")
		}
	}

	send(t, cli, a, 0, []byte("broadcast"), netloop.Reliable)
	rec.next(t, netloop.EventReceive)
	want(nil)
	for _, p := range []netloop.Peer{a, b} {
		if ev := receive(t, cli, p); string(ev.Payload) != "to all" {
			t.Fatalf("broadcast %q", ev.Payload)
		}
	}
	send(t, cli, a, 0, []byte("multicast"), netloop.Reliable)
	rec.next(t, netloop.EventReceive)
	want(nil)
	if ev := receive(t, cli, a); len(ev.Payload) != 500 {
		t.Fatalf("multicast of %d bytes, want 500", len(ev.Payload))
	}
	send(t, cli, a, 0, []byte("bad"), netloop.Reliable)
	rec.next(t, netloop.EventReceive)
	want(netloop.ErrChannel)
	want(netloop.ErrEmpty)
	want(netloop.ErrForeignPeer)
	want(netloop.ErrLoopGoroutine)
	want(netloop.ErrLoopGoroutine)

	send(t, cli, a, 0, []byte("bye"), netloop.Reliable)
	rec.next(t, netloop.EventReceive)
	want(nil)
	want(netloop.ErrStalePeer)
	if ev := rec.next(t, netloop.EventDisconnect); ev.Peer != sa || ev.Reason != netloop.ReasonLocal || ev.Data != 9 {
		t.Fatalf("disconnect %+v, want %v local data 9", ev, sa)
	}
	disconnected(t, cli, a, netloop.ReasonRemote)
	// The server's Stats, from this goroutine, still work.
	if s := stats(t, srv); s.Broadcasts != 2 || s.SendsRejected != 1 {
		t.Fatalf("Broadcasts %d SendsRejected %d, want 2 1", s.Broadcasts, s.SendsRejected)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The shutdown's Disconnect of b came through the handler.
	if ev := rec.next(t, netloop.EventDisconnect); ev.Reason != netloop.ReasonShutdown {
		t.Fatalf("disconnect %+v, want shutdown", ev)
	}
	if err := kept.Send(sa, 0, []byte("x"), netloop.Reliable); !errors.Is(err, netloop.ErrInlineDone) {
		t.Fatalf("Send after the call: %v, want ErrInlineDone", err)
	}
	if err := srv.SetInline(nil); !errors.Is(err, netloop.ErrClosed) {
		t.Fatalf("SetInline after Run: %v, want ErrClosed", err)
	}
}

// TestInlinePanic: a handler that panics disconnects the event's peer; the
// host goes on serving others.
func TestInlinePanic(t *testing.T) {
	rec := newRecorder(16)
	srv, _ := launch(t, "127.0.0.1:0", netloop.WithInline(func(in *netloop.Inline, ev netloop.Event) {
		rec.record(t, ev)
		if ev.Kind == netloop.EventReceive {
			if string(ev.Payload) == "panic" {
				panic("handler bug")
			}
			in.Send(ev.Peer, 0, ev.Payload, ev.Flag)
		}
	}))
	cli := start(t, "")
	a := dial(t, cli, srv, 1, 0)
	b := dial(t, cli, srv, 1, 0)
	sa := rec.next(t, netloop.EventConnect).Peer
	rec.next(t, netloop.EventConnect)
	send(t, cli, a, 0, []byte("panic"), netloop.Reliable)
	rec.next(t, netloop.EventReceive)
	if ev := rec.next(t, netloop.EventDisconnect); ev.Peer != sa || ev.Reason != netloop.ReasonLocal {
		t.Fatalf("disconnect %+v, want %v local", ev, sa)
	}
	disconnected(t, cli, a, netloop.ReasonRemote)
	send(t, cli, b, 0, []byte("still here"), netloop.Reliable)
	if ev := receive(t, cli, b); string(ev.Payload) != "still here" {
		t.Fatalf("echo %q", ev.Payload)
	}
}

// TestInlineAllocations: an inline host that exchanged traffic returns its
// C allocations once stopped, and SetInline refuses a running host.
func TestInlineAllocations(t *testing.T) {
	before := netloop.LiveAllocations()
	func() {
		srv, stop := launch(t, "127.0.0.1:0", netloop.WithInline(func(in *netloop.Inline, ev netloop.Event) {
			if ev.Kind == netloop.EventReceive {
				in.Send(ev.Peer, 0, ev.Payload, ev.Flag)
				in.Send(ev.Peer, 0, make([]byte, 3000), netloop.Unreliable)
			}
		}))
		cli, cstop := launch(t, "")
		cp := dial(t, cli, srv, 1, 0) // the server runs
		if err := srv.SetInline(nil); !errors.Is(err, netloop.ErrRunning) {
			t.Fatalf("SetInline on a running host: %v, want ErrRunning", err)
		}
		for i := range 100 {
			send(t, cli, cp, 0, seqMsg(0, uint32(i), 2000), netloop.Reliable)
		}
		for i := 0; i < 100; {
			if ev := receive(t, cli, cp); ev.Flag == netloop.Reliable {
				i++
			}
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if err := cstop(); err != nil {
			t.Fatal(err)
		}
	}()
	if after := netloop.LiveAllocations(); after != before {
		t.Fatalf("live C allocations: %d before, %d after closing", before, after)
	}
}

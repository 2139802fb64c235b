package netloop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
)

// TestShutdown cancels a server's context right after queueing 1000
// reliable messages to a connected client: the client gets them all, then
// a Disconnect; the server's Events ends with the peer's Disconnect
// (ReasonShutdown) and is closed.
func TestShutdown(t *testing.T) {
	const n = 1000
	srv, stop := launch(t, "127.0.0.1:0", netloop.WithDrainTimeout(5*time.Second))
	cli := start(t, "")
	cp := dial(t, cli, srv, 1, 0)
	sp := expect(t, srv, netloop.EventConnect).Peer
	for i := range n {
		send(t, srv, sp, 0, seqMsg(0, uint32(i), 100), netloop.Reliable)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()

	for i := range n {
		if _, seq := parseSeq(t, receive(t, cli, cp).Payload); seq != uint32(i) {
			t.Fatalf("message %d, want %d", seq, i)
		}
	}
	disconnected(t, cli, cp, netloop.ReasonRemote)
	evs := closed(t, srv)
	if len(evs) != 1 || evs[0].Kind != netloop.EventDisconnect || evs[0].Peer != sp || evs[0].Reason != netloop.ReasonShutdown {
		t.Fatalf("server's last events %+v, want one Disconnect (shutdown)", evs)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
	select {
	case <-srv.Done():
	default:
		t.Fatal("Done not closed after Run returned")
	}
}

// TestShutdownPeers covers connections in other states at shutdown.
func TestShutdownPeers(t *testing.T) {
	t.Run("connecting", func(t *testing.T) {
		cli, stop := launch(t, "")
		p, err := cli.Connect(ctx(t), netlooptest.Silent(t).String(), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		evs := closed(t, cli)
		if len(evs) != 1 || evs[0].Peer != p || evs[0].Kind != netloop.EventDisconnect || evs[0].Reason != netloop.ReasonConnectFailed {
			t.Fatalf("events %+v, want one Disconnect (connect failed)", evs)
		}
	})
	t.Run("silent peer", func(t *testing.T) {
		// A peer that does not acknowledge its disconnection holds shutdown
		// up for the drain timeout only.
		const drain = 300 * time.Millisecond
		srv, stop := launch(t, "127.0.0.1:0", netloop.WithDrainTimeout(drain))
		cli := start(t, "")
		cp := dial(t, cli, srv, 1, 0)
		sp := expect(t, srv, netloop.EventConnect).Peer
		if err := cli.Reset(ctx(t), cp); err != nil {
			t.Fatal(err)
		}
		disconnected(t, cli, cp, netloop.ReasonLocal)
		t0 := time.Now()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d < drain || d > drain+2*time.Second {
			t.Fatalf("shutdown took %v, want about the drain timeout %v", d, drain)
		}
		evs := closed(t, srv)
		if len(evs) != 1 || evs[0].Peer != sp || evs[0].Reason != netloop.ReasonShutdown {
			t.Fatalf("events %+v, want one Disconnect (shutdown)", evs)
		}
	})
	t.Run("consumer gone", func(t *testing.T) {
		// Nobody reads Events: shutdown still ends, within the drain timeout.
		srv, stop := launch(t, "127.0.0.1:0", netloop.WithEventBuffer(1), netloop.WithDrainTimeout(300*time.Millisecond))
		cli := start(t, "")
		cp := dial(t, cli, srv, 1, 0)
		for i := range 20 {
			send(t, cli, cp, 0, seqMsg(0, uint32(i), 10), netloop.Reliable)
		}
		eventually(t, "the messages to be pending", func() bool { return stats(t, srv).PendingEvents == 20 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		disconnected(t, cli, cp, netloop.ReasonRemote)
		// What is left: the event in the channel's buffer; then it is closed.
		if evs := closed(t, srv); len(evs) != 1 || evs[0].Kind != netloop.EventConnect {
			t.Fatalf("events left %+v, want the Connect only", evs)
		}
	})
}

// TestRepeatedRun creates, runs and stops hosts 20 times, with a connection
// each time, and checks that no goroutine outlives them.
func TestRepeatedRun(t *testing.T) {
	srv := start(t, "127.0.0.1:0")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for i := range 20 {
		h, err := netloop.New("", netloop.WithDrainTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- h.Run(c) }()
		if i%2 == 0 {
			p := dial(t, h, srv, 1, uint32(i))
			sp := expect(t, srv, netloop.EventConnect).Peer
			roundTrip(t, h, srv, p, sp)
			cancel()
			disconnected(t, srv, sp, netloop.ReasonRemote)
		} else {
			cancel()
		}
		closed(t, h)
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("Run %d: %v", i, err)
			}
		case <-time.After(wait):
			t.Fatalf("Run %d did not return", i)
		}
		h.Close()
	}
}

// TestSendDuringShutdown has 4 goroutines send until the server, closed
// meanwhile, refuses: every message whose Send returned nil reaches the
// client, in order, before its Disconnect.
func TestSendDuringShutdown(t *testing.T) {
	const senders = 4
	srv, stop := launch(t, "127.0.0.1:0", netloop.WithDrainTimeout(5*time.Second))
	cli := start(t, "")
	cp := dial(t, cli, srv, 1, 0)
	sp := expect(t, srv, netloop.EventConnect).Peer

	type result struct {
		stream   byte
		accepted uint32 // messages Send took
		err      error  // the refusal that ended the sender
	}
	results := make(chan result, senders)
	c := ctx(t)
	for s := range senders {
		go func() {
			var i uint32
			for {
				if err := srv.Send(c, sp, 0, seqMsg(byte(s), i, 16), netloop.Reliable); err != nil {
					results <- result{byte(s), i, err}
					return
				}
				i++
			}
		}()
	}
	var got [senders]uint32
	recv := func() {
		stream, seq := parseSeq(t, receive(t, cli, cp).Payload)
		if int(stream) >= senders || seq != got[stream] {
			t.Fatalf("sender %d: message %d, want %d", stream, seq, got[stream])
		}
		got[stream]++
	}
	for range 100 { // some messages go through before the stop
		recv()
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()

	var want [senders]uint32
	total := uint32(0)
	for range senders {
		r := <-results
		want[r.stream] = r.accepted
		total += r.accepted
		if !errors.Is(r.err, netloop.ErrClosed) && !errors.Is(r.err, netloop.ErrNotConnected) && !errors.Is(r.err, netloop.ErrStalePeer) {
			t.Errorf("sender %d refused with %v", r.stream, r.err)
		}
	}
	for n := got[0] + got[1] + got[2] + got[3]; n < total; n++ {
		recv()
	}
	if got != want {
		t.Fatalf("received %v, want the accepted %v", got, want)
	}
	disconnected(t, cli, cp, netloop.ReasonRemote)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

package netloop_test

import (
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/netloop"
)

// TestOrdering sends 5000 reliable messages on each of 3 channels,
// interleaved, and checks that each arrives exactly once, in order on its
// channel, between the peer's Connect and its Disconnect.
func TestOrdering(t *testing.T) {
	const channels, n = 3, 5000
	srv := start(t, "127.0.0.1:0", netloop.WithChannels(channels))
	cli := start(t, "", netloop.WithChannels(channels))
	cp := dial(t, cli, srv, channels, 0)

	sent := make(chan error, 1)
	c := ctx(t)
	go func() {
		for i := range n {
			for ch := range channels {
				if err := cli.Send(c, cp, uint8(ch), seqMsg(byte(ch), uint32(i), 16), netloop.Reliable); err != nil {
					sent <- err
					return
				}
			}
		}
		sent <- cli.DisconnectLater(c, cp, 0)
	}()

	ev := next(t, srv)
	if ev.Kind != netloop.EventConnect {
		t.Fatalf("first event %v, want connect", ev.Kind)
	}
	sp := ev.Peer
	var got [channels]uint32
	for total := 0; total < channels*n; total++ {
		ev := next(t, srv)
		if ev.Kind != netloop.EventReceive || ev.Peer != sp {
			t.Fatalf("after %d messages: %v of %v, want a message of %v", total, ev.Kind, ev.Peer, sp)
		}
		stream, seq := parseSeq(t, ev.Payload)
		if ev.Flag != netloop.Reliable || int(ev.Channel) >= channels || stream != ev.Channel {
			t.Fatalf("message for channel %d on channel %d (%v)", stream, ev.Channel, ev.Flag)
		}
		if seq != got[ev.Channel] {
			t.Fatalf("channel %d: message %d, want %d", ev.Channel, seq, got[ev.Channel])
		}
		got[ev.Channel]++
	}
	if err := <-sent; err != nil {
		t.Fatalf("sending: %v", err)
	}
	disconnected(t, srv, sp, netloop.ReasonRemote)
	disconnected(t, cli, cp, netloop.ReasonLocal)
	if s := stats(t, srv); s.Receives != channels*n || s.EventsDropped != 0 {
		t.Fatalf("server Receives %d EventsDropped %d, want %d 0", s.Receives, s.EventsDropped, channels*n)
	}
}

// TestConcurrentSenders has 8 goroutines send 500 messages each to the same
// peer at once; all arrive, each sender's in its order.
func TestConcurrentSenders(t *testing.T) {
	const senders, n = 8, 500
	srv, cli, sp, cp := pair(t, 1)
	var g errgroup.Group
	c := ctx(t)
	for s := range senders {
		g.Go(func() error {
			for i := range n {
				if err := cli.Send(c, cp, 0, seqMsg(byte(s), uint32(i), 32), netloop.Reliable); err != nil {
					return err
				}
			}
			return nil
		})
	}
	var got [senders]uint32
	for total := 0; total < senders*n; total++ {
		stream, seq := parseSeq(t, receive(t, srv, sp).Payload)
		if int(stream) >= senders {
			t.Fatalf("message from sender %d", stream)
		}
		if seq != got[stream] {
			t.Fatalf("sender %d: message %d, want %d", stream, seq, got[stream])
		}
		got[stream]++
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("Send: %v", err)
	}
	// Nothing more than the 4000 came.
	roundTrip(t, cli, srv, cp, sp)
	if s := stats(t, cli); s.SentByFlag[netloop.Reliable] != senders*n+1 || s.SendsRejected != 0 {
		t.Fatalf("client sent %d reliable, rejected %d; want %d 0", s.SentByFlag[netloop.Reliable], s.SendsRejected, senders*n+1)
	}
}

// TestConcurrentCalls mixes every kind of call from several goroutines on
// both ends; under -race this checks the handles and the command path.
func TestConcurrentCalls(t *testing.T) {
	srv, cli, sp, cp := pair(t, 2)
	var g errgroup.Group
	c := ctx(t)
	for i := range 4 {
		g.Go(func() error {
			for j := range 50 {
				if err := cli.Send(c, cp, uint8(j%2), seqMsg(byte(i), uint32(j), 8), netloop.Reliable); err != nil {
					return err
				}
				if _, err := cli.PeerInfo(c, cp); err != nil {
					return err
				}
				if _, err := srv.Stats(c); err != nil {
					return err
				}
				if _, err := srv.PeerAt(c, sp.Index()); err != nil {
					return err
				}
				if err := srv.Broadcast(c, 1, []byte("b"), netloop.Unsequenced); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for range 4 * 50 {
		receive(t, srv, sp)
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	// The client got the broadcasts; skip them and check the link still works.
	send(t, srv, sp, 0, []byte("end"), netloop.Reliable)
	for {
		ev := expect(t, cli, netloop.EventReceive)
		if ev.Channel == 0 && string(ev.Payload) == "end" {
			break
		}
	}
}

package netloop_test

import (
	"errors"
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

// TestOverflow has a client send 200 reliable messages to a server whose
// Events the test does not read, with room for 1 event in the channel and
// 8 pending; then it checks the counters and reads what was kept.
func TestOverflow(t *testing.T) {
	const n = 200
	slow := []netloop.Option{netloop.WithEventBuffer(1)}

	t.Run("disconnect", func(t *testing.T) {
		srv := start(t, "127.0.0.1:0", append(slow, netloop.WithMaxPending(8), netloop.WithSlowPolicy(netloop.SlowDropUnreliable))...)
		cli := start(t, "")
		cp := dial(t, cli, srv, 1, 0)
		for i := range n {
			err := cli.Send(ctx(t), cp, 0, seqMsg(0, uint32(i), 100), netloop.Reliable)
			if errors.Is(err, netloop.ErrStalePeer) || errors.Is(err, netloop.ErrNotConnected) {
				break // the server's disconnection has arrived already
			}
			if err != nil {
				t.Fatalf("Send %d: %v", i, err)
			}
		}
		// The server drops the client when its reliable stream overflows.
		disconnected(t, cli, cp, netloop.ReasonRemote)
		s := stats(t, srv)
		if s.EventsDropped == 0 || s.PeersDropped != 1 {
			t.Fatalf("EventsDropped %d PeersDropped %d, want > 0 and 1", s.EventsDropped, s.PeersDropped)
		}
		if s.PendingEvents > 8+1 { // the pending messages and the Disconnect
			t.Fatalf("PendingEvents %d, want at most 9", s.PendingEvents)
		}
		ev := expect(t, srv, netloop.EventConnect)
		sp := ev.Peer
		got := 0
		for {
			ev := next(t, srv)
			if ev.Peer != sp {
				t.Fatalf("event of %v, want %v", ev.Peer, sp)
			}
			if ev.Kind == netloop.EventDisconnect {
				if ev.Reason != netloop.ReasonSlow {
					t.Fatalf("disconnect reason %v, want overflow", ev.Reason)
				}
				break
			}
			if ev.Kind != netloop.EventReceive {
				t.Fatalf("event %v, want receive or disconnect", ev.Kind)
			}
			if _, seq := parseSeq(t, ev.Payload); seq != uint32(got) {
				t.Fatalf("message %d after %d in order: a gap", seq, got)
			}
			got++
		}
		if got == 0 || got >= n {
			t.Fatalf("kept %d messages, want a prefix of 1..%d", got, n-1)
		}
		if uint64(got) != stats(t, srv).Receives {
			t.Fatalf("delivered %d messages, Stats.Receives %d", got, stats(t, srv).Receives)
		}
		if ev, ok := srv.CheckEvents(); ok {
			t.Fatalf("event after the Disconnect: %+v", ev)
		}
		// The server still takes connections.
		cli2 := start(t, "")
		cp2 := dial(t, cli2, srv, 1, 0)
		roundTrip(t, cli2, srv, cp2, expect(t, srv, netloop.EventConnect).Peer)
	})

	t.Run("drop", func(t *testing.T) {
		srv := start(t, "127.0.0.1:0", append(slow, netloop.WithMaxPending(8), netloop.WithSlowPolicy(netloop.SlowDropAll))...)
		cli := start(t, "")
		cp := dial(t, cli, srv, 1, 0)
		for i := range n {
			send(t, cli, cp, 0, seqMsg(0, uint32(i), 100), netloop.Reliable)
		}
		var s netloop.Stats
		eventually(t, "the server to take all messages", func() bool {
			s = stats(t, srv)
			return s.Receives+s.EventsDropped == n
		})
		if s.EventsDropped == 0 || s.PeersDropped != 0 {
			t.Fatalf("EventsDropped %d PeersDropped %d, want > 0 and 0", s.EventsDropped, s.PeersDropped)
		}
		sp := expect(t, srv, netloop.EventConnect).Peer
		last := -1
		for range s.Receives {
			_, seq := parseSeq(t, receive(t, srv, sp).Payload)
			if int(seq) <= last {
				t.Fatalf("message %d after %d", seq, last)
			}
			last = int(seq)
		}
		// No disconnect: the connection goes on.
		roundTrip(t, cli, srv, cp, sp)
		if pi := info(t, srv, sp); pi.State != netloop.StateConnected {
			t.Fatalf("state %v", pi.State)
		}
	})
}

// TestOverflowUnreliable: SlowDropUnreliable drops unsequenced messages
// that do not fit without disconnecting their peer.
func TestOverflowUnreliable(t *testing.T) {
	srv := start(t, "127.0.0.1:0", netloop.WithEventBuffer(1), netloop.WithMaxPending(8), netloop.WithSlowPolicy(netloop.SlowDropUnreliable))
	cli := start(t, "")
	cp := dial(t, cli, srv, 1, 0)
	for i := range 200 {
		send(t, cli, cp, 0, seqMsg(0, uint32(i), 100), netloop.Unsequenced)
	}
	eventually(t, "messages to be dropped", func() bool { return stats(t, srv).EventsDropped > 0 })
	s := stats(t, srv)
	if s.PeersDropped != 0 || s.Disconnects != 0 {
		t.Fatalf("PeersDropped %d Disconnects %d, want 0 0", s.PeersDropped, s.Disconnects)
	}
	sp := expect(t, srv, netloop.EventConnect).Peer
	for range s.Receives {
		if ev := receive(t, srv, sp); ev.Flag != netloop.Unsequenced {
			t.Fatalf("flag %v", ev.Flag)
		}
	}
	// The connection lives on. (The check goes from server to client: a
	// reliable message to the server could meet a full queue again, since
	// unsequenced ones may still be arriving.)
	send(t, srv, sp, 0, []byte("ping"), netloop.Reliable)
	if ev := receive(t, cli, cp); string(ev.Payload) != "ping" {
		t.Fatalf("got %q", ev.Payload)
	}
	if pi := info(t, srv, sp); pi.State != netloop.StateConnected {
		t.Fatalf("state %v", pi.State)
	}
}

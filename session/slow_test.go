package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

const (
	inbox   = 4   // WithInbox of the slow-consumer tests
	flood   = 100 // messages the client sends at a blocked handler
	seqSize = 8   // size of the numbered messages; others are echoed
)

// blocked is what a blocking handler saw once released.
type blocked struct {
	seqs []uint32 // numbered messages received
	err  error    // Receive's error at the end
}

// blocker returns a handler that publishes its session, blocks until hold
// is closed, then receives: it records numbered messages (and sends each
// number on progress, if not nil), echoes the rest, and reports on out at
// the end.
func blocker(ss sessions, hold <-chan struct{}, out chan<- blocked, progress chan<- uint32) session.HandlerFunc {
	return func(ctx context.Context, s *session.Session) error {
		ss <- s
		<-hold
		var r blocked
		for {
			m, err := s.Receive(ctx)
			if err != nil {
				r.err = err
				break
			}
			if len(m.Data) == seqSize {
				r.seqs = append(r.seqs, seqOf(m.Data))
				if progress != nil {
					progress <- seqOf(m.Data)
				}
			} else if err := s.Send(ctx, m.Channel, m.Data, m.Flag); err != nil {
				r.err = err
				break
			}
		}
		out <- r
		return nil
	}
}

// sendFlood sends n numbered messages; if staleOK, it stops without
// failing when the server has already disconnected the client (the
// client's handle is then stale, or, for a moment while the client's loop
// frees the slot, reported as not connected).
func sendFlood(t *testing.T, cli *netloop.Host, p netloop.Peer, n int, flag netloop.Flag, staleOK bool) int {
	t.Helper()
	for i := range n {
		err := cli.Send(netlooptest.Context(t), p, 0, seqMsg(uint32(i), seqSize), flag)
		if staleOK && (errors.Is(err, netloop.ErrStalePeer) || errors.Is(err, netloop.ErrNotConnected)) {
			return i
		}
		if err != nil {
			t.Fatalf("client Send %d: %v", i, err)
		}
	}
	return n
}

func result(t *testing.T, out <-chan blocked) blocked {
	t.Helper()
	select {
	case r := <-out:
		return r
	case <-time.After(wait):
		t.Fatal("blocked handler did not finish")
	}
	return blocked{}
}

// Under SlowDropUnreliable a reliable message that does not fit ends its
// session, which never sees a gap; other sessions go on.
func TestSlowConsumerReliableDisconnects(t *testing.T) {
	hold, free := release()
	ss, out := newSessions(), make(chan blocked, 1)
	srv := startServer(t, byData{1: blocker(ss, hold, out, nil)}, nil, session.WithInbox(inbox))
	t.Cleanup(free) // before the server stops
	a, b := startClient(t), startClient(t)
	pa := dial(t, a, srv.addr, 1, 1)
	sa := ss.next(t)
	pb := dial(t, b, srv.addr, 1, 2) // echo

	sendFlood(t, a, pa, flood, netloop.Reliable, true)
	end := ended(t, sa)
	if end.Reason != session.ReasonSlow {
		t.Fatalf("end %v, want slow consumer", end)
	}
	if ev := expect(t, a, netloop.EventDisconnect); ev.Reason != netloop.ReasonRemote {
		t.Fatalf("client disconnect %v, want remote", ev.Reason)
	}
	if got := srv.obs.endOf(t, sa); got != end { // after the counters are updated
		t.Fatalf("observer saw end %v, want %v", got, end)
	}
	// The other session works while the slow handler is still blocked.
	roundTrip(t, b, pb, "unaffected")

	st := srv.Stats()
	if st.Dropped == 0 || st.SlowDisconnects != 1 || st.Live != 1 || st.Started != 2 || st.Ended != 1 {
		t.Fatalf("stats %+v, want drops and one slow disconnect", st)
	}
	if n := srv.obs.drops(sa); int64(n) != st.Dropped {
		t.Fatalf("observer saw %d drops, stats say %d", n, st.Dropped)
	}
	srv.obs.mu.Lock()
	for _, m := range srv.obs.dropped[sa] {
		if m.Flag != netloop.Reliable || m.Channel != 0 || seqOf(m.Data) < inbox {
			t.Errorf("dropped %+v: want a reliable message from %d on", m, inbox)
		}
	}
	nstarted := len(srv.obs.started)
	srv.obs.mu.Unlock()
	if nstarted != 2 || !srv.obs.wasStarted(sa) {
		t.Fatalf("observer saw %d starts, want 2 including %v", nstarted, sa)
	}
	if fs := srv.obs.failuresOf(sa); len(fs) != 0 {
		t.Fatalf("observer saw handler failures %+v", fs)
	}

	free()
	r := result(t, out)
	if !slices.Equal(r.seqs, []uint32{0, 1, 2, 3}) {
		t.Fatalf("handler received %v, want the first %d messages and no more", r.seqs, inbox)
	}
	isEnd(t, r.err, session.ReasonSlow)
}

// Under SlowDropAll a session whose inbox is full loses messages but lives.
func TestSlowConsumerDropAllSurvives(t *testing.T) {
	hold, free := release()
	ss, out := newSessions(), make(chan blocked, 1)
	progress := make(chan uint32, flood)
	srv := startServer(t, blocker(ss, hold, out, progress), nil, session.WithInbox(inbox), session.WithSlowPolicy(session.SlowDropAll))
	t.Cleanup(free) // before the server stops
	a := startClient(t)
	pa := dial(t, a, srv.addr, 1, 1)
	sa := ss.next(t)

	sendFlood(t, a, pa, flood, netloop.Reliable, false)
	srv.obs.waitFor(t, "every message past the inbox dropped", func() bool { return len(srv.obs.dropped[sa]) == flood-inbox })
	if err := sa.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
	free()
	// Once the handler has drained its inbox, a message fits again.
	for i := range inbox {
		select {
		case <-progress:
		case <-time.After(wait):
			t.Fatalf("handler received %d of the %d queued messages", i, inbox)
		}
	}
	roundTrip(t, a, pa, "ping")
	if st := srv.Stats(); st.Dropped != flood-inbox || st.SlowDisconnects != 0 || st.Live != 1 {
		t.Fatalf("stats %+v, want %d drops, no disconnect", st, flood-inbox)
	}
	if err := a.Disconnect(netlooptest.Context(t), pa, 9); err != nil {
		t.Fatal(err)
	}
	r := result(t, out)
	if !slices.Equal(r.seqs, []uint32{0, 1, 2, 3}) {
		t.Fatalf("handler received %v, want the first %d", r.seqs, inbox)
	}
	if end := isEnd(t, r.err, session.ReasonRemote); end.Data != 9 {
		t.Fatalf("end data %d, want 9", end.Data)
	}
}

// Under SlowDropUnreliable, unreliable messages that do not fit are dropped
// and the session lives.
func TestSlowConsumerUnreliableDropped(t *testing.T) {
	for _, flag := range []netloop.Flag{netloop.Unreliable, netloop.Unsequenced} {
		t.Run(flag.String(), func(t *testing.T) {
			hold, free := release()
			ss, out := newSessions(), make(chan blocked, 1)
			srv := startServer(t, blocker(ss, hold, out, nil), nil, session.WithInbox(inbox))
			t.Cleanup(free) // before the server stops
			a := startClient(t)
			pa := dial(t, a, srv.addr, 1, 1)
			sa := ss.next(t)

			sendFlood(t, a, pa, flood, flag, false)
			srv.obs.waitFor(t, "a drop", func() bool { return len(srv.obs.dropped[sa]) > 0 })
			// Still connected: the server reaches the client.
			if err := sa.Send(netlooptest.Context(t), 0, []byte("alive"), netloop.Reliable); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if ev := expect(t, a, netloop.EventReceive); string(ev.Payload) != "alive" {
				t.Fatalf("client got %q", ev.Payload)
			}
			// A graceful end from the client: the session was never cut.
			if err := a.DisconnectLater(netlooptest.Context(t), pa, 77); err != nil {
				t.Fatal(err)
			}
			free()
			r := result(t, out)
			if end := isEnd(t, r.err, session.ReasonRemote); end.Data != 77 {
				t.Fatalf("end data %d, want 77", end.Data)
			}
			if len(r.seqs) < inbox {
				t.Fatalf("handler received %v, want at least the %d queued", r.seqs, inbox)
			}
			if flag == netloop.Unreliable && !slices.IsSorted(r.seqs) {
				t.Fatalf("unreliable messages out of order: %v", r.seqs)
			}
			st := srv.Stats()
			if st.Dropped == 0 || st.SlowDisconnects != 0 {
				t.Fatalf("stats %+v, want drops and no slow disconnect", st)
			}
			if n := srv.obs.drops(sa); int64(n) != st.Dropped {
				t.Fatalf("observer saw %d drops, stats say %d", n, st.Dropped)
			}
		})
	}
}

// Under Disconnect even an unreliable message that does not fit ends the session.
func TestSlowConsumerDisconnectPolicy(t *testing.T) {
	hold, free := release()
	ss, out := newSessions(), make(chan blocked, 1)
	srv := startServer(t, blocker(ss, hold, out, nil), nil, session.WithInbox(inbox), session.WithSlowPolicy(session.SlowDisconnect))
	t.Cleanup(free) // before the server stops
	a := startClient(t)
	pa := dial(t, a, srv.addr, 1, 1)
	sa := ss.next(t)
	sendFlood(t, a, pa, flood, netloop.Unsequenced, true)
	if end := ended(t, sa); end.Reason != session.ReasonSlow {
		t.Fatalf("end %v, want slow consumer", end)
	}
	expect(t, a, netloop.EventDisconnect)
	if st := srv.Stats(); st.SlowDisconnects != 1 || st.Dropped == 0 {
		t.Fatalf("stats %+v", st)
	}
	free()
	isEnd(t, result(t, out).err, session.ReasonSlow)
}

// Messages that come after the handler returned are dropped and counted.
func TestMessagesAfterHandlerReturnedDropped(t *testing.T) {
	ss := newSessions()
	returned := make(chan struct{})
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		ss <- s
		close(returned)
		return nil
	}), nil)
	a := startClient(t)
	pa := dial(t, a, srv.addr, 1, 1)
	s := ss.next(t)
	<-returned
	// The handler's nil return closes the session gracefully; messages the
	// client sends meanwhile are dropped (or refused once it is gone).
	for i := range 10 {
		if err := a.Send(netlooptest.Context(t), pa, 0, seqMsg(uint32(i), seqSize), netloop.Reliable); err != nil {
			break
		}
	}
	expect(t, a, netloop.EventDisconnect)
	if end := ended(t, s); end.Reason != session.ReasonClosed {
		t.Fatalf("end %v, want closed", end)
	}
	if st := srv.Stats(); st.Dropped != int64(srv.obs.drops(s)) || st.SlowDisconnects != 0 {
		t.Fatalf("stats %+v; observer saw %d drops", st, srv.obs.drops(s))
	}
}

// The inbox is bounded in bytes too: big messages past the bound are
// handled by the policy even while the inbox has room by count.
func TestSlowConsumerInboxBytes(t *testing.T) {
	const size, bound, sent = 16 << 10, 40 << 10, 10
	hold, free := release()
	ss := newSessions()
	got := make(chan int, sent)
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		ss <- s
		<-hold
		for {
			m, err := s.Receive(ctx)
			if err != nil {
				return nil
			}
			got <- len(m.Data)
		}
	}), nil, session.WithInbox(100), session.WithInboxBytes(bound), session.WithSlowPolicy(session.SlowDropAll))
	t.Cleanup(free) // before the server stops
	a := startClient(t)
	pa := dial(t, a, srv.addr, 1, 1)
	sa := ss.next(t)
	for range sent {
		if err := a.Send(netlooptest.Context(t), pa, 0, make([]byte, size), netloop.Reliable); err != nil {
			t.Fatal(err)
		}
	}
	srv.obs.waitFor(t, "the messages past the byte bound dropped", func() bool { return len(srv.obs.dropped[sa]) == sent-bound/size })
	free()
	for range bound / size {
		select {
		case n := <-got:
			if n != size {
				t.Fatalf("received %d bytes, want %d", n, size)
			}
		case <-time.After(wait):
			t.Fatal("the handler did not receive the messages within the bound")
		}
	}
	// Drained, the inbox takes messages again.
	if err := a.Send(netlooptest.Context(t), pa, 0, make([]byte, size), netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(wait):
		t.Fatal("a message after the drain did not arrive")
	}
}

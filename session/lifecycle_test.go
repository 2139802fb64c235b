package session_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

// Cancelling Run ends every session with Shutdown, and Run returns only
// after every handler has.
func TestShutdownWaitsForHandlers(t *testing.T) {
	const clients = 3
	ss := newSessions()
	stopped := make(chan error, clients) // each handler's end, once it saw it
	hold, free := release()
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		ss <- s
		err := echo(ctx, s)
		<-ctx.Done() // see TestReceiveEndConsistent
		stopped <- context.Cause(ctx)
		<-hold // keep Run waiting
		return err
	}), nil)
	t.Cleanup(free) // before the server stops
	var (
		clis  []*netloop.Host
		peers []netloop.Peer
		all   []*session.Session
	)
	for i := range clients {
		cli := startClient(t)
		p := dial(t, cli, srv.addr, 1, uint32(i))
		roundTrip(t, cli, p, "hi")
		clis, peers = append(clis, cli), append(peers, p)
		all = append(all, ss.next(t))
	}

	runErr := make(chan error, 1)
	go func() { runErr <- srv.stop() }()
	for range clients {
		select {
		case err := <-stopped:
			isEnd(t, err, session.ReasonShutdown)
		case <-time.After(wait):
			t.Fatal("handler did not see the shutdown")
		}
	}
	for _, s := range all {
		isEnd(t, ended(t, s), session.ReasonShutdown)
	}
	for i, cli := range clis {
		if ev := expect(t, cli, netloop.EventDisconnect); ev.Peer != peers[i] || ev.Reason != netloop.ReasonRemote {
			t.Fatalf("client %d: disconnect %+v, want remote", i, ev)
		}
	}
	// Every handler is blocked: Run must not have returned.
	select {
	case err := <-runErr:
		t.Fatalf("Run returned (%v) before its handlers", err)
	default:
	}
	free()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
	if st := srv.Stats(); st.Started != clients || st.Ended != clients || st.Live != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Messages a handler sent before the shutdown reach the peer before its
// Disconnect.
func TestShutdownDrainsSends(t *testing.T) {
	const n = 1000
	sent := make(chan error, 1)
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		for i := range n {
			if err := s.Send(ctx, 0, seqMsg(uint32(i), 32), netloop.Reliable); err != nil {
				sent <- err
				return err
			}
		}
		sent <- nil
		<-ctx.Done()
		return nil
	}), nil)
	cli := startClient(t)
	p := dial(t, cli, srv.addr, 1, 0)
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("handler did not send")
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i := range n {
		ev := next(t, cli)
		if ev.Kind != netloop.EventReceive {
			t.Fatalf("event %d: %v (%+v), want message %d", i, ev.Kind, ev, i)
		}
		if ev.Peer != p || seqOf(ev.Payload) != uint32(i) {
			t.Fatalf("message %d from %v, want %d from %v", seqOf(ev.Payload), ev.Peer, i, p)
		}
	}
	if ev := expect(t, cli, netloop.EventDisconnect); ev.Reason != netloop.ReasonRemote {
		t.Fatalf("client disconnect %v, want remote", ev.Reason)
	}
}

// ENet reuses a slot; a session's ID and handle do not carry over.
func TestStableIDsAfterSlotReuse(t *testing.T) {
	ss := newSessions()
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		ss <- s
		<-ctx.Done()
		return nil
	}), []netloop.Option{netloop.WithPeers(1)})
	a := startClient(t)
	pa := dial(t, a, srv.addr, 1, 1)
	sa := ss.next(t)
	if err := a.Disconnect(netlooptest.Context(t), pa, 5); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	expect(t, a, netloop.EventDisconnect)
	if end := srv.obs.endOf(t, sa); end.Reason != session.ReasonRemote || end.Data != 5 {
		t.Fatalf("end of A %v, want remote data 5", end)
	}

	b := startClient(t)
	pb := dial(t, b, srv.addr, 1, 2)
	sb := ss.next(t)
	if sb.ConnectData() != 2 {
		t.Fatalf("second session's connect data %d, want 2", sb.ConnectData())
	}
	if sa.Peer().Index() != sb.Peer().Index() {
		t.Fatalf("slots %d and %d: want the one slot reused", sa.Peer().Index(), sb.Peer().Index())
	}
	if sa.ID() == sb.ID() || sa.Peer() == sb.Peer() || sa.String() == sb.String() {
		t.Fatalf("sessions share an ID: %v, %v", sa, sb)
	}
	if err := sa.Send(netlooptest.Context(t), 0, []byte("for A"), netloop.Reliable); !errors.Is(err, netloop.ErrStalePeer) || !errors.Is(err, session.ErrEnded) || !errors.Is(err, netloop.ErrGone) {
		t.Fatalf("Send with A's session: %v, want %v and %v", err, netloop.ErrStalePeer, session.ErrEnded)
	}
	if err := sb.Send(netlooptest.Context(t), 0, []byte("for B"), netloop.Reliable); err != nil {
		t.Fatalf("Send with B's session: %v", err)
	}
	if ev := expect(t, b, netloop.EventReceive); ev.Peer != pb || string(ev.Payload) != "for B" {
		t.Fatalf("B received %q, want %q", ev.Payload, "for B")
	}
	if sb.Err() != nil {
		t.Fatalf("B ended: %v", sb.Err())
	}
}

// Session values are safe for concurrent use.
func TestValuesConcurrent(t *testing.T) {
	ss := newSessions()
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		ss <- s
		<-ctx.Done()
		return nil
	}), nil)
	cli := startClient(t)
	dial(t, cli, srv.addr, 1, 0)
	s := ss.next(t)

	type key struct{ g, i int }
	const goroutines, keys = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range keys {
				s.Set(key{g, i}, i)
				s.Set("shared", g) // contended
				if v, ok := s.Get(key{g, i}); !ok || v != i {
					t.Errorf("Get(%v) = %v, %v; want %d", key{g, i}, v, ok, i)
				}
				s.Get("shared")
				if i%2 == 0 {
					s.Delete(key{g, i})
				}
			}
		})
	}
	wg.Wait()
	for g := range goroutines {
		for i := range keys {
			v, ok := s.Get(key{g, i})
			if want := i%2 == 1; ok != want || (ok && v != i) {
				t.Fatalf("Get(%v) = %v, %v; want present %v", key{g, i}, v, ok, want)
			}
		}
	}
	if v, ok := s.Get("shared"); !ok || v.(int) < 0 || v.(int) >= goroutines {
		t.Fatalf("shared = %v, %v", v, ok)
	}
	s.Delete("shared")
	if _, ok := s.Get("shared"); ok {
		t.Fatal("shared still set after Delete")
	}
	s.Delete("never set") // no-op
}

// TryReceive never waits; Info and the accessors describe the connection.
func TestTryReceiveAndInfo(t *testing.T) {
	ss := newSessions()
	// An inbox of one that drops the rest: a dropped message proves the one
	// before it is queued, without polling.
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		ss <- s
		<-ctx.Done()
		return nil
	}), nil, session.WithInbox(1), session.WithSlowPolicy(session.SlowDropAll))
	cli := startClient(t)
	before := time.Now()
	p := dial(t, cli, srv.addr, 2, 99)
	s := ss.next(t)

	if m, ok := s.TryReceive(); ok {
		t.Fatalf("TryReceive on an empty inbox: %+v", m)
	}
	send(t, cli, p, 1, []byte("first"), netloop.Reliable)
	send(t, cli, p, 1, []byte("second"), netloop.Reliable)
	srv.obs.waitFor(t, "a drop", func() bool { return len(srv.obs.dropped[s]) == 1 })
	m, ok := s.TryReceive()
	if !ok || string(m.Data) != "first" || m.Channel != 1 || m.Flag != netloop.Reliable {
		t.Fatalf("TryReceive = %+v, %v; want first on channel 1, reliable", m, ok)
	}
	if m, ok := s.TryReceive(); ok {
		t.Fatalf("TryReceive on a drained inbox: %+v", m)
	}

	info, err := s.Info(netlooptest.Context(t))
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	local := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), cli.Addr().Port())
	switch {
	case info.State != netloop.StateConnected:
		t.Errorf("state %v, want connected", info.State)
	case info.Addr != local:
		t.Errorf("info address %v, want %v", info.Addr, local)
	case s.Addr() != local:
		t.Errorf("session address %v, want %v", s.Addr(), local)
	case info.Peer != s.Peer() || info.Index != s.Peer().Index():
		t.Errorf("info peer %v slot %d, want %v", info.Peer, info.Index, s.Peer())
	case info.Channels != 2:
		t.Errorf("channels %d, want 2", info.Channels)
	case info.MessagesReceived != 2:
		t.Errorf("messages received %d, want 2", info.MessagesReceived)
	}
	if s.ConnectData() != 99 || s.ID() != s.Peer().ID() || s.String() != fmt.Sprintf("session/%d", s.ID()) {
		t.Errorf("data %d, id %d, %s", s.ConnectData(), s.ID(), s)
	}
	if st := s.Started(); st.Before(before) || st.After(time.Now()) {
		t.Errorf("started %v, not during the test", st)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err() = %v while connected", err)
	}
	if st := srv.Stats(); st.Dropped != 1 || st.SlowDisconnects != 0 || st.Live != 1 {
		t.Errorf("stats %+v", st)
	}

	// After the end, TryReceive reports nothing and Receive the end at once.
	if err := cli.Disconnect(netlooptest.Context(t), p, 3); err != nil {
		t.Fatal(err)
	}
	ended(t, s)
	if m, ok := s.TryReceive(); ok {
		t.Fatalf("TryReceive after the end: %+v", m)
	}
	_, err = s.Receive(context.Background())
	if end := isEnd(t, err, session.ReasonRemote); end.Data != 3 {
		t.Fatalf("end data %d, want 3", end.Data)
	}
}

// Receive returns its own ctx's error when that ends first.
func TestReceiveContext(t *testing.T) {
	ss := newSessions()
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		ss <- s
		<-ctx.Done()
		return nil
	}), nil)
	cli := startClient(t)
	dial(t, cli, srv.addr, 1, 0)
	s := ss.next(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive with a cancelled context: %v", err)
	}
}

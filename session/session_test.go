package session_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

// A session sees every reliable message in order per channel, then its end,
// which Receive, Err and context.Cause agree on.
func TestOrderPerChannelThenRemoteEnd(t *testing.T) {
	const n = 5000 // messages, alternating between channels 0 and 1
	type result struct {
		got   [2]uint32 // messages seen per channel
		bad   error     // the first message out of order
		err   error     // what Receive returned at the end
		cause error     // context.Cause of the session's Context then
		errOf error     // s.Err() then
	}
	res := make(chan result, 1)
	h := session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		var r result
		for {
			m, err := s.Receive(ctx)
			if err != nil {
				// Receive may return the end a moment before the Context
				// is cancelled (TestReceiveEndConsistent): wait for it.
				<-s.Context().Done()
				r.err, r.cause, r.errOf = err, context.Cause(s.Context()), s.Err()
				break
			}
			switch {
			case m.Channel > 1:
				r.bad = firstErr(r.bad, fmt.Errorf("message on channel %d", m.Channel))
			case m.Flag != netloop.Reliable:
				r.bad = firstErr(r.bad, fmt.Errorf("flag %v", m.Flag))
			case seqOf(m.Data) != r.got[m.Channel]:
				r.bad = firstErr(r.bad, fmt.Errorf("channel %d: message %d, want %d", m.Channel, seqOf(m.Data), r.got[m.Channel]))
			}
			if m.Channel <= 1 {
				r.got[m.Channel]++
			}
		}
		res <- r
		return nil
	})
	// An inbox for every message: this test is about order, not slow handlers.
	srv := startServer(t, h, nil, session.WithInbox(n))
	cli := startClient(t)
	p := dial(t, cli, srv.addr, 2, 0)
	var next [2]uint32
	for i := range n {
		ch := uint8(i % 2)
		send(t, cli, p, ch, seqMsg(next[ch], 16), netloop.Reliable)
		next[ch]++
	}
	// DisconnectLater: everything sent is delivered before the disconnect.
	if err := cli.DisconnectLater(netlooptest.Context(t), p, 42); err != nil {
		t.Fatalf("DisconnectLater: %v", err)
	}
	if ev := expect(t, cli, netloop.EventDisconnect); ev.Reason != netloop.ReasonLocal {
		t.Fatalf("client disconnect reason %v, want local", ev.Reason)
	}
	var r result
	select {
	case r = <-res:
	case <-time.After(wait):
		t.Fatal("handler did not finish")
	}
	if r.bad != nil {
		t.Fatal(r.bad)
	}
	if r.got != [2]uint32{n / 2, n / 2} {
		t.Fatalf("got %v messages per channel, want %d each", r.got, n/2)
	}
	end := isEnd(t, r.err, session.ReasonRemote)
	if end.Data != 42 {
		t.Fatalf("end data %d, want 42", end.Data)
	}
	if r.cause != r.err || r.errOf != r.err {
		t.Fatalf("context.Cause %v and Err %v, want Receive's %v", r.cause, r.errOf, r.err)
	}
	// The observer hears of the end after the counters are updated.
	srv.obs.waitFor(t, "the session's end", func() bool { return len(srv.obs.ends) == 1 })
	if st := srv.Stats(); st.Dropped != 0 || st.Started != 1 || st.Ended != 1 || st.Live != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// firstErr keeps the first error.
func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

var errBoom = errors.New("boom")

// commands is a handler that does what its messages say and echoes the rest.
func commands(ctx context.Context, s *session.Session) error {
	for {
		m, err := s.Receive(ctx)
		if err != nil {
			return nil
		}
		switch string(m.Data) {
		case "close":
			if err := s.CloseWith(7); err != nil {
				return err
			}
		case "kick":
			if err := s.Kick(); err != nil {
				return err
			}
		case "return":
			return nil
		case "error":
			return fmt.Errorf("handler: %w", errBoom)
		case "panic":
			panic("boom")
		default:
			if err := s.Send(ctx, m.Channel, m.Data, m.Flag); err != nil {
				return err
			}
		}
	}
}

func TestEndReasons(t *testing.T) {
	tests := []struct {
		cmd      string
		reason   session.Reason
		data     uint32 // what the client's Disconnect carries
		errs     int64  // Stats().HandlerErrors
		panics   int64  // Stats().HandlerPanics
		failed   bool   // the observer sees HandlerFailed
		panicked bool
	}{
		{cmd: "close", reason: session.ReasonClosed, data: 7},
		{cmd: "kick", reason: session.ReasonKicked},
		{cmd: "return", reason: session.ReasonClosed},
		{cmd: "error", reason: session.ReasonHandlerError, errs: 1, failed: true},
		{cmd: "panic", reason: session.ReasonHandlerPanic, panics: 1, failed: true, panicked: true},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			ss := newSessions()
			srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
				ss <- s
				return commands(ctx, s)
			}), nil)
			cli, other := startClient(t), startClient(t)
			p := dial(t, cli, srv.addr, 1, 1)
			s := ss.next(t)
			op := dial(t, other, srv.addr, 1, 2)
			roundTrip(t, cli, p, "hello")

			send(t, cli, p, 0, []byte(tt.cmd), netloop.Reliable)
			ev := expect(t, cli, netloop.EventDisconnect)
			if ev.Reason != netloop.ReasonRemote || ev.Data != tt.data {
				t.Fatalf("client disconnect %v data %d, want remote data %d", ev.Reason, ev.Data, tt.data)
			}
			end := ended(t, s)
			if end.Reason != tt.reason {
				t.Fatalf("end %v, want %v", end, tt.reason)
			}
			if got := srv.obs.endOf(t, s); got != end {
				t.Fatalf("observer saw end %v, want %v", got, end)
			}
			switch tt.reason {
			case session.ReasonHandlerError:
				if !errors.Is(end, errBoom) || !errors.Is(end.Err, errBoom) {
					t.Fatalf("end %v does not wrap the handler's error", end)
				}
			case session.ReasonHandlerPanic:
				if end.Err == nil {
					t.Fatalf("end %v has no panic error", end)
				}
			default:
				if end.Err != nil {
					t.Fatalf("end %v has an error", end)
				}
			}

			// The server goes on serving others.
			roundTrip(t, other, op, "still there")

			// Run has returned, so every handler has, and reported its failure.
			if err := srv.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			st := srv.Stats()
			if st.HandlerErrors != tt.errs || st.HandlerPanics != tt.panics {
				t.Fatalf("stats %+v, want %d handler errors, %d panics", st, tt.errs, tt.panics)
			}
			if st.Started != 2 || st.Ended != 2 || st.Live != 0 || st.SlowDisconnects != 0 {
				t.Fatalf("stats %+v", st)
			}
			fs := srv.obs.failuresOf(s)
			if !tt.failed {
				if len(fs) != 0 {
					t.Fatalf("observer saw failures %+v", fs)
				}
				return
			}
			if len(fs) != 1 || fs[0].panicked != tt.panicked || fs[0].err == nil {
				t.Fatalf("observer saw failures %+v, want one (panicked %v)", fs, tt.panicked)
			}
			if !tt.panicked && !errors.Is(fs[0].err, errBoom) {
				t.Fatalf("observer saw error %v, want %v", fs[0].err, errBoom)
			}
		})
	}
}

// EndError.Data is documented as "Closed: the data sent".
func TestCloseWithDataInEndError(t *testing.T) {
	ss := newSessions()
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		ss <- s
		return commands(ctx, s)
	}), nil)
	cli := startClient(t)
	p := dial(t, cli, srv.addr, 1, 0)
	s := ss.next(t)
	send(t, cli, p, 0, []byte("close"), netloop.Reliable)
	if ev := expect(t, cli, netloop.EventDisconnect); ev.Data != 7 {
		t.Fatalf("client disconnect data %d, want 7", ev.Data)
	}
	end := ended(t, s)
	if end.Reason != session.ReasonClosed {
		t.Fatalf("end %v, want closed", end)
	}
	if end.Data != 7 {
		t.Fatalf("EndError.Data = %d after CloseWith(7), doc says it is the data sent "+
			"(netloop reports 0 for an acknowledged local disconnect; session/server.go finish copies ev.Data)", end.Data)
	}
}

// Closing twice, or kicking a closed session, is not an error.
func TestCloseIdempotent(t *testing.T) {
	ss := newSessions()
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		ss <- s
		<-ctx.Done()
		return nil
	}), nil)
	cli := startClient(t)
	dial(t, cli, srv.addr, 1, 0)
	s := ss.next(t)
	if s.Err() != nil {
		t.Fatalf("Err() = %v while connected", s.Err())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expect(t, cli, netloop.EventDisconnect)
	isEnd(t, ended(t, s), session.ReasonClosed)
	for name, f := range map[string]func() error{"Close": s.Close, "Kick": s.Kick, "CloseWith": func() error { return s.CloseWith(3) }} {
		if err := f(); err != nil {
			t.Errorf("%s after the end: %v", name, err)
		}
	}
	if err := s.Send(netlooptest.Context(t), 0, []byte("x"), netloop.Reliable); !errors.Is(err, netloop.ErrStalePeer) || !errors.Is(err, session.ErrEnded) {
		t.Errorf("Send after the end: %v, want %v and %v", err, netloop.ErrStalePeer, session.ErrEnded)
	}
	if s.Server() != srv.Server {
		t.Errorf("Server() = %p, want %p", s.Server(), srv.Server)
	}
	if _, err := s.Info(netlooptest.Context(t)); !errors.Is(err, netloop.ErrStalePeer) {
		t.Errorf("Info after the end: %v, want %v", err, netloop.ErrStalePeer)
	}
}

// A peer that vanishes without a word times out.
func TestTimeout(t *testing.T) {
	ss := newSessions()
	ready := make(chan error, 1)
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		ready <- s.Server().Host().SetTimeout(ctx, s.Peer(), netloop.Timeout{Limit: 4, Minimum: 200 * time.Millisecond, Maximum: time.Second})
		ss <- s
		return echo(ctx, s)
	}), nil)
	cli := startClient(t)
	p := dial(t, cli, srv.addr, 1, 0)
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("SetTimeout: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("handler did not start")
	}
	s := ss.next(t)
	roundTrip(t, cli, p, "hello")
	if err := cli.Reset(netlooptest.Context(t), p); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	expect(t, cli, netloop.EventDisconnect)
	start := time.Now()
	end := ended(t, s)
	if end.Reason != session.ReasonTimeout {
		t.Fatalf("end %v, want timeout", end)
	}
	t.Logf("timed out after %v", time.Since(start))
}

// When Receive returns the end, the session has ended in every other
// respect too: Err and context.Cause return it, the session is out of its
// groups, and a handler that returns Receive's error is not counted as failed.
func TestReceiveEndConsistent(t *testing.T) {
	const n = 300                         // sessions: the window is short, so try many
	var grp atomic.Pointer[session.Group] // set before any client connects
	problems := make(chan string, 3*n)
	done := make(chan struct{}, n)
	ss := newSessions()
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		defer func() { done <- struct{}{} }()
		if err := grp.Load().Add(s); err != nil {
			return err
		}
		ss <- s
		for {
			_, err := s.Receive(ctx)
			if err == nil {
				continue
			}
			if s.Err() != err || context.Cause(s.Context()) != err {
				problems <- "Err()/context.Cause not yet the end when Receive returned it"
			}
			if grp.Load().Contains(s) {
				problems <- "still in its group when Receive returned the end"
			}
			return err // the end itself: not a handler failure
		}
	}), nil)
	grp.Store(srv.NewGroup())
	cli := startClient(t)
	for i := range n {
		p := dial(t, cli, srv.addr, 1, uint32(i))
		// Not before the server has the connection: a Disconnect right
		// after the client's Connect event can drop ENet's pending
		// acknowledgement of the handshake, and then is never answered.
		ss.next(t)
		if err := cli.Disconnect(netlooptest.Context(t), p, 0); err != nil {
			t.Fatal(err)
		}
		expect(t, cli, netloop.EventDisconnect)
	}
	for range n {
		select {
		case <-done:
		case <-time.After(wait):
			t.Fatal("handlers did not return")
		}
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	close(problems)
	seen := make(map[string]int)
	for p := range problems {
		seen[p]++
	}
	st := srv.Stats()
	if st.HandlerErrors != 0 {
		seen["returning Receive's end counted as a handler error"] = int(st.HandlerErrors)
	}
	if len(seen) > 0 {
		t.Fatalf("of %d sessions: %v (session/session.go received returns s.end as soon as the inbox is "+
			"closed, and session/server.go finish cancels the context only after close(s.inbox))", n, seen)
	}
}

// Add of an ended session fails with that session's own end.
func TestGroupAddEndedReason(t *testing.T) {
	ss := newSessions()
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		ss <- s
		<-ctx.Done()
		return nil
	}), nil)
	cli := startClient(t)
	p := dial(t, cli, srv.addr, 1, 0)
	s := ss.next(t)
	if err := cli.Disconnect(netlooptest.Context(t), p, 8); err != nil {
		t.Fatal(err)
	}
	srv.obs.endOf(t, s) // reported after the session left its groups
	err := srv.NewGroup().Add(s)
	end := isEnd(t, err, isEndReason(err))
	if end.Reason != session.ReasonRemote || end.Data != 8 {
		t.Fatalf("Group.Add of a session that ended remotely (data 8) returns %v; want its own end %v "+
			"(session/group.go Add builds &EndError{Reason: s.endReason()} instead of returning s.end)", end, s.Err())
	}
}

// isEndReason returns err's reason, for isEnd to accept any.
func isEndReason(err error) session.Reason {
	var end *session.EndError
	if errors.As(err, &end) {
		return end.Reason
	}
	return 0
}

func TestNewRejectsBadOptions(t *testing.T) {
	host, err := netloop.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	h := session.HandlerFunc(func(ctx context.Context, s *session.Session) error { return nil })
	for name, opt := range map[string]session.Option{
		"empty inbox":          session.WithInbox(0),
		"no inbox bytes":       session.WithInboxBytes(0),
		"unknown slow policy":  session.WithSlowPolicy(session.SlowPolicy(9)),
		"negative inbox":       session.WithInbox(-5),
		"negative inbox bytes": session.WithInboxBytes(-1),
	} {
		if _, err := session.New(host, h, opt); !errors.Is(err, session.ErrOption) {
			t.Errorf("%s: New returned %v, want %v", name, err, session.ErrOption)
		}
	}
	if _, err := session.New(host, h, session.WithInbox(1), session.WithInboxBytes(1)); err != nil {
		t.Errorf("smallest inbox: %v", err)
	}
}

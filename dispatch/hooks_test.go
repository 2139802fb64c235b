package dispatch_test

import (
	"context"
	"errors"
	"testing"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

type nameKey struct{}

// hookEnd is what an OnDisconnect hook saw.
type hookEnd struct {
	order int
	data  uint32
	err   error
	ctxOK bool
}

// The connect hooks run before the first message, in order; the disconnect
// hooks run after the last, in reverse order, with how the session ended
// and a context that is not cancelled.
func TestMuxHooks(t *testing.T) {
	mux, err := dispatch.NewMux()
	if err != nil {
		t.Fatal(err)
	}
	ends := make(chan hookEnd, 8)
	mux.OnConnect(func(ctx context.Context, s *session.Session) error {
		s.Set(nameKey{}, "a")
		return nil
	})
	mux.OnConnect(func(ctx context.Context, s *session.Session) error {
		v, _ := s.Get(nameKey{})
		s.Set(nameKey{}, v.(string)+"b")
		if s.ConnectData() == 9 {
			return errors.New("not welcome")
		}
		return nil
	})
	for i := range 2 {
		mux.OnDisconnect(func(ctx context.Context, s *session.Session, err error) {
			ends <- hookEnd{order: i, data: s.ConnectData(), err: err, ctxOK: ctx.Err() == nil}
		})
	}
	name := dispatch.NewRoute[string](1, dispatch.Raw, 0, netloop.Reliable)
	name.Handle(mux, func(ctx context.Context, s *session.Session, v string) error {
		got, _ := s.Get(nameKey{})
		return name.Send(ctx, s, got.(string)+v)
	})
	srv := serve(t, mux)

	c := connect(t, srv, 1)
	c.sendMsg(t, dispatch.Raw, 1, "c")
	var got string
	if c.reply(t, dispatch.Raw, &got); got != "abc" {
		t.Fatalf("reply %q, want the connect hooks' %q then the message's %q", got, "ab", "c")
	}
	mustPanic(t, "OnConnect while serving", func() { mux.OnConnect(func(context.Context, *session.Session) error { return nil }) })
	if err := c.Disconnect(netlooptest.Context(t), c.peer, 5); err != nil {
		t.Fatal(err)
	}
	for want := 1; want >= 0; want-- {
		e := netlooptest.Recv(t, ends, "disconnect hook")
		var end *session.EndError
		if e.order != want || e.data != 1 || !errors.As(e.err, &end) || end.Reason != session.ReasonRemote || end.Data != 5 || !e.ctxOK {
			t.Fatalf("disconnect hook %+v (end %v), want hook %d with the remote end and a live context", e, end, want)
		}
	}

	// A connect hook's error ends the session as a handler error; no
	// message is handled, and the disconnect hooks still run.
	c = connect(t, srv, 9)
	// The server may disconnect before this send: then it finds the peer gone.
	msg, err := name.Encode("c")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(netlooptest.Context(t), c.peer, 0, msg, netloop.Reliable); err != nil && !errors.Is(err, netloop.ErrGone) {
		t.Fatalf("client Send: %v", err)
	}
	c.expect(t, netloop.EventDisconnect) // and no reply before it
	if end := srv.sessions.end(t, 9); end.Reason != session.ReasonHandlerError {
		t.Fatalf("end %v, want %v", end, session.ReasonHandlerError)
	}
	for want := 1; want >= 0; want-- {
		if e := netlooptest.Recv(t, ends, "disconnect hook"); e.order != want || e.data != 9 || e.err == nil || e.err.Error() != "dispatch: connect hook: not welcome" {
			t.Fatalf("disconnect hook %+v, want hook %d with the connect hook's error", e, want)
		}
	}
}

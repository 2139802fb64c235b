package dispatch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

// Message types of the test application.
const (
	typeRaw   = 1 // Raw string: replies "raw:" + it
	typeJSON  = 2 // JSON point: replies it moved by (1, 1)
	typeProto = 3 // Proto StringValue: replies it upper-cased
	typeFail  = 4 // returns errBoom
	typePanic = 5 // panics
	typeCount = 6 // Raw bytes: counts, no reply
	rawChan   = 1 // channel routed whole: replies "ch:" + it on the same channel
)

var errBoom = errors.New("boom")

// app registers the test application's handlers on mux and returns the
// number of typeCount messages handled.
func app(mux *dispatch.Mux) *atomic.Int64 {
	var count atomic.Int64
	raw := dispatch.NewRoute[string](typeRaw, dispatch.Raw, 0, netloop.Reliable)
	raw.Handle(mux, func(ctx context.Context, s *session.Session, v string) error {
		return raw.Send(ctx, s, "raw:"+v)
	})
	json := dispatch.NewRoute[point](typeJSON, dispatch.JSON, 0, netloop.Reliable)
	json.Handle(mux, func(ctx context.Context, s *session.Session, p point) error {
		p.X, p.Y = p.X+1, p.Y+1
		return json.Send(ctx, s, p)
	})
	proto := dispatch.NewRoute[*wrapperspb.StringValue](typeProto, dispatch.Proto, 0, netloop.Reliable)
	proto.Handle(mux, func(ctx context.Context, s *session.Session, v *wrapperspb.StringValue) error {
		return proto.Send(ctx, s, wrapperspb.String(strings.ToUpper(v.GetValue())))
	})
	mux.HandleFunc(typeFail, func(ctx context.Context, m *dispatch.Message) error { return errBoom })
	mux.HandleFunc(typePanic, func(ctx context.Context, m *dispatch.Message) error { panic("handler panic") })
	dispatch.Handle(mux, typeCount, dispatch.Raw, func(ctx context.Context, s *session.Session, v []byte) error {
		count.Add(1)
		return nil
	})
	mux.HandleChannel(rawChan, dispatch.HandlerFunc(func(ctx context.Context, m *dispatch.Message) error {
		if m.Type != 0 || m.Channel != rawChan {
			return fmt.Errorf("channel message with type %d on channel %d", m.Type, m.Channel)
		}
		return m.Session.Send(ctx, m.Channel, append([]byte("ch:"), m.Payload...), m.Flag)
	}))
	return &count
}

// echoRaw checks that c's session serves: a raw message comes back.
func echoRaw(t *testing.T, c *client, text string) {
	t.Helper()
	c.sendMsg(t, dispatch.Raw, typeRaw, text)
	var got string
	if typ := c.reply(t, dispatch.Raw, &got); typ != typeRaw || got != "raw:"+text {
		t.Fatalf("reply %d %q, want %d %q", typ, got, typeRaw, "raw:"+text)
	}
}

func TestMuxRoutes(t *testing.T) {
	obs := newMsgLog()
	mux, err := dispatch.NewMux(dispatch.WithObserver(obs), dispatch.WithLogger(netlooptest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	app(mux)
	srv := serve(t, mux)
	c := connect(t, srv, 1)

	echoRaw(t, c, "hello")

	c.sendMsg(t, dispatch.JSON, typeJSON, point{Name: "p", X: 1, Y: 2})
	var p point
	if typ := c.reply(t, dispatch.JSON, &p); typ != typeJSON || p.Name != "p" || p.X != 2 || p.Y != 3 {
		t.Fatalf("JSON reply %d %+v", typ, p)
	}

	c.sendMsg(t, dispatch.Proto, typeProto, wrapperspb.String("shout"))
	var sv *wrapperspb.StringValue
	if typ := c.reply(t, dispatch.Proto, &sv); typ != typeProto || sv.GetValue() != "SHOUT" {
		t.Fatalf("proto reply %d %v", typ, sv)
	}

	// Channel 1 is routed whole: no prefix is parsed, even a malformed one.
	for _, payload := range [][]byte{{0x80}, {typeRaw, 'x'}, bytes.Repeat([]byte{0xff}, 20)} {
		c.send(t, rawChan, payload)
		ev := c.expect(t, netloop.EventReceive)
		if ev.Channel != rawChan || !bytes.Equal(ev.Payload, append([]byte("ch:"), payload...)) {
			t.Fatalf("channel reply %q on %d", ev.Payload, ev.Channel)
		}
	}

	obs.waitCount(t, 6) // the observer hears after the counters are updated
	if st := mux.Stats(); st.Handled != 6 || st.Failed != 0 || st.Unknown+st.Malformed+st.Undecodable+st.TooLarge+st.RateLimited != 0 {
		t.Fatalf("stats %+v", st)
	}
	h, r := obs.snapshot()
	var types []uint32
	for _, x := range h {
		if x.err != nil {
			t.Errorf("handled type %d with error %v", x.typ, x.err)
		}
		types = append(types, x.typ)
	}
	if want := []uint32{typeRaw, typeJSON, typeProto, 0, 0, 0}; !slices.Equal(types, want) {
		t.Fatalf("observer saw types %v, want %v", types, want)
	}
	if len(r) != 0 {
		t.Fatalf("observer saw rejections %+v", r)
	}
	if end, ok := srv.sessions.ended(1); ok {
		t.Fatalf("session ended: %v", end)
	}
}

// A handler's error ends its session only.
func TestMuxHandlerError(t *testing.T) {
	obs := newMsgLog()
	mux, err := dispatch.NewMux(dispatch.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	app(mux)
	srv := serve(t, mux)
	c, other := connect(t, srv, 1), connect(t, srv, 2)
	c.sendMsg(t, dispatch.Raw, typeFail, "")
	c.expect(t, netloop.EventDisconnect)
	end := srv.sessions.end(t, 1)
	if end.Reason != session.ReasonHandlerError || !errors.Is(end, errBoom) {
		t.Fatalf("end %v, want a handler error wrapping %v", end, errBoom)
	}
	echoRaw(t, other, "fine")
	obs.waitCount(t, 2)
	if st := mux.Stats(); st.Failed != 1 || st.Handled != 2 {
		t.Fatalf("stats %+v", st)
	}
	h, _ := obs.snapshot()
	if len(h) != 2 || h[0].typ != typeFail || !errors.Is(h[0].err, errBoom) || h[1].typ != typeRaw || h[1].err != nil {
		t.Fatalf("observer saw %+v", h)
	}
}

func TestMiddlewareOrder(t *testing.T) {
	var (
		mu    sync.Mutex
		trace []string
	)
	outer := make(chan struct{}, 2) // the outermost middleware has returned
	rec := func(name string) dispatch.Middleware {
		return func(next dispatch.Handler) dispatch.Handler {
			return dispatch.HandlerFunc(func(ctx context.Context, m *dispatch.Message) error {
				mu.Lock()
				trace = append(trace, fmt.Sprintf("%s>%d", name, m.Type))
				mu.Unlock()
				err := next.ServeMessage(ctx, m)
				mu.Lock()
				trace = append(trace, fmt.Sprintf("<%s", name))
				mu.Unlock()
				if name == "a" {
					outer <- struct{}{}
				}
				return err
			})
		}
	}
	mux, err := dispatch.NewMux()
	if err != nil {
		t.Fatal(err)
	}
	mux.Use(rec("a"), rec("b"))
	mux.Use(rec("c"))
	mux.HandleFunc(7, func(ctx context.Context, m *dispatch.Message) error {
		mu.Lock()
		trace = append(trace, "handler")
		mu.Unlock()
		return m.Session.Send(ctx, 0, []byte("done"), netloop.Reliable)
	})
	mux.HandleChannel(rawChan, dispatch.HandlerFunc(func(ctx context.Context, m *dispatch.Message) error {
		return m.Session.Send(ctx, 0, []byte("done"), netloop.Reliable)
	}))
	srv := serve(t, mux)
	c := connect(t, srv, 1)
	c.send(t, 0, dispatch.AppendMessage(nil, 7, nil))
	c.expect(t, netloop.EventReceive)
	c.send(t, rawChan, []byte("whole"))
	c.expect(t, netloop.EventReceive)
	// The handlers reply before the middleware unwinds: wait for it.
	for range 2 {
		select {
		case <-outer:
		case <-time.After(wait):
			t.Fatal("middleware did not return")
		}
	}
	mu.Lock()
	got := strings.Join(trace, " ")
	mu.Unlock()
	if want := "a>7 b>7 c>7 handler <c <b <a a>0 b>0 c>0 <c <b <a"; got != want {
		t.Fatalf("trace %q, want %q", got, want)
	}
}

func TestRecover(t *testing.T) {
	for _, withRecover := range []bool{true, false} {
		t.Run(fmt.Sprintf("recover=%v", withRecover), func(t *testing.T) {
			mux, err := dispatch.NewMux()
			if err != nil {
				t.Fatal(err)
			}
			if withRecover {
				mux.Use(dispatch.Recover(netlooptest.Logger(t)))
			}
			app(mux)
			srv := serve(t, mux)
			c, other := connect(t, srv, 1), connect(t, srv, 2)
			echoRaw(t, c, "before")
			c.sendMsg(t, dispatch.Raw, typePanic, "")
			c.expect(t, netloop.EventDisconnect)
			end := srv.sessions.end(t, 1)
			want := session.ReasonHandlerPanic // the session server recovers it
			if withRecover {
				want = session.ReasonHandlerError
			}
			if end.Reason != want || end.Err == nil {
				t.Fatalf("end %v, want %v with an error", end, want)
			}
			echoRaw(t, other, "after") // other sessions are unaffected
			st := srv.Stats()
			if withRecover && (st.HandlerErrors != 1 || st.HandlerPanics != 0 || mux.Stats().Failed != 1) {
				t.Fatalf("stats %+v, mux %+v", st, mux.Stats())
			}
			if !withRecover && (st.HandlerPanics != 1 || st.HandlerErrors != 0) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	const n = 50
	for _, policy := range []dispatch.RejectPolicy{dispatch.RejectDrop, dispatch.RejectDisconnect} {
		t.Run(fmt.Sprint("policy=", policy), func(t *testing.T) {
			obs := newMsgLog()
			mux, err := dispatch.NewMux(dispatch.WithRejectPolicy(policy), dispatch.WithObserver(obs))
			if err != nil {
				t.Fatal(err)
			}
			mux.Use(dispatch.RateLimit(10, 5))
			count := app(mux)
			srv := serve(t, mux)
			c := connect(t, srv, 1)
			for range n {
				if err := c.Send(netlooptest.Context(t), c.peer, 0, dispatch.AppendMessage(nil, typeCount, []byte("x")), netloop.Reliable); err != nil {
					if policy == dispatch.RejectDisconnect && (errors.Is(err, netloop.ErrStalePeer) || errors.Is(err, netloop.ErrNotConnected)) {
						break // already cut off
					}
					t.Fatal(err)
				}
			}
			if policy == dispatch.RejectDisconnect {
				c.expect(t, netloop.EventDisconnect)
				end := srv.sessions.end(t, 1)
				if end.Reason != session.ReasonHandlerError || !errors.Is(end, dispatch.ErrRateLimited) {
					t.Fatalf("end %v, want a handler error wrapping %v", end, dispatch.ErrRateLimited)
				}
				if got := count.Load(); got < 5 {
					t.Fatalf("%d messages handled before the limit, want the burst of 5", got)
				}
				if st := mux.Stats(); st.RateLimited != 1 {
					t.Fatalf("stats %+v, want one rate-limited message", st)
				}
				return
			}
			obs.waitCount(t, n)
			st := mux.Stats()
			if st.RateLimited == 0 || count.Load()+st.RateLimited != n || count.Load() < 5 {
				t.Fatalf("%d handled, stats %+v; want at least the burst of 5 and the rest (some) limited", count.Load(), st)
			}
			h, r := obs.snapshot()
			if int64(len(h)) != count.Load() || int64(len(r)) != st.RateLimited {
				t.Fatalf("observer saw %d handled, %d rejected", len(h), len(r))
			}
			for _, x := range r {
				if x.typ != typeCount || !errors.Is(x.reason, dispatch.ErrRateLimited) {
					t.Fatalf("rejected %+v", x)
				}
			}
			// The session lives: the server still reaches the client.
			s := srv.sessions.session(1)
			if err := s.Err(); err != nil {
				t.Fatalf("session ended: %v", err)
			}
			if err := dispatch.NewRoute[string](typeRaw, dispatch.Raw, 0, netloop.Reliable).Send(netlooptest.Context(t), s, "alive"); err != nil {
				t.Fatal(err)
			}
			var got string
			if c.reply(t, dispatch.Raw, &got); got != "alive" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestBadMessages(t *testing.T) {
	const maxSize = 100
	tests := []struct {
		name  string
		msg   []byte
		typ   uint32 // as the observer sees it
		want  error
		count func(dispatch.Stats) int64
	}{
		{"unknown type", dispatch.AppendMessage(nil, 99, []byte("x")), 99, dispatch.ErrUnknownType, func(s dispatch.Stats) int64 { return s.Unknown }},
		{"lone continuation byte", []byte{0x80}, 0, dispatch.ErrMalformed, func(s dispatch.Stats) int64 { return s.Malformed }},
		{"unterminated varint", bytes.Repeat([]byte{0xff}, 10), 0, dispatch.ErrMalformed, func(s dispatch.Stats) int64 { return s.Malformed }},
		{"type out of range", append([]byte{0xff, 0xff, 0xff, 0xff, 0x10}, 'x'), 0, dispatch.ErrTypeRange, func(s dispatch.Stats) int64 { return s.Malformed }},
		{"undecodable JSON", dispatch.AppendMessage(nil, typeJSON, []byte(`{"name":`)), typeJSON, dispatch.ErrDecode, func(s dispatch.Stats) int64 { return s.Undecodable }},
		{"JSON of the wrong shape", dispatch.AppendMessage(nil, typeJSON, []byte(`[1]`)), typeJSON, dispatch.ErrDecode, func(s dispatch.Stats) int64 { return s.Undecodable }},
		{"undecodable proto", dispatch.AppendMessage(nil, typeProto, []byte{0xff}), typeProto, dispatch.ErrDecode, func(s dispatch.Stats) int64 { return s.Undecodable }},
		{"oversized", dispatch.AppendMessage(nil, typeRaw, bytes.Repeat([]byte("x"), maxSize)), 0, dispatch.ErrTooLarge, func(s dispatch.Stats) int64 { return s.TooLarge }},
	}
	for _, policy := range []dispatch.RejectPolicy{dispatch.RejectDrop, dispatch.RejectDisconnect} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("policy=%d/%s", policy, tt.name), func(t *testing.T) {
				obs := newMsgLog()
				mux, err := dispatch.NewMux(dispatch.WithMaxSize(maxSize), dispatch.WithRejectPolicy(policy), dispatch.WithObserver(obs))
				if err != nil {
					t.Fatal(err)
				}
				app(mux)
				srv := serve(t, mux)
				c, other := connect(t, srv, 1), connect(t, srv, 2)
				c.send(t, 0, tt.msg)
				if policy == dispatch.RejectDrop {
					echoRaw(t, c, "next") // the session goes on
				} else {
					c.expect(t, netloop.EventDisconnect)
					end := srv.sessions.end(t, 1)
					if end.Reason != session.ReasonHandlerError || !errors.Is(end, tt.want) {
						t.Fatalf("end %v, want a handler error wrapping %v", end, tt.want)
					}
					echoRaw(t, other, "unaffected")
				}
				if got := tt.count(mux.Stats()); got != 1 {
					t.Fatalf("stats %+v: counter %d, want 1", mux.Stats(), got)
				}
				_, r := obs.snapshot()
				if len(r) != 1 || r[0].typ != tt.typ || !errors.Is(r[0].reason, tt.want) {
					t.Fatalf("observer saw rejections %+v, want type %d: %v", r, tt.typ, tt.want)
				}
			})
		}
	}
}

// A message of exactly the size limit is accepted.
func TestMaxSizeBoundary(t *testing.T) {
	mux, err := dispatch.NewMux(dispatch.WithMaxSize(100))
	if err != nil {
		t.Fatal(err)
	}
	app(mux)
	srv := serve(t, mux)
	c := connect(t, srv, 1)
	text := strings.Repeat("x", 99) // with the 1-byte type: 100 bytes
	c.sendMsg(t, dispatch.Raw, typeRaw, text)
	var got string
	if c.reply(t, dispatch.Raw, &got); got != "raw:"+text {
		t.Fatalf("got %q", got)
	}
}

// WithMaxSize bounds every message, also those of channels routed whole.
func TestMaxSizeRawChannel(t *testing.T) {
	obs := newMsgLog()
	mux, err := dispatch.NewMux(dispatch.WithMaxSize(100), dispatch.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	app(mux)
	srv := serve(t, mux)
	c := connect(t, srv, 1)
	c.send(t, rawChan, bytes.Repeat([]byte("x"), 200))
	// The Mux serves a session's messages in order: once the reply to a
	// later message is in, the big one has been dealt with.
	c.sendMsg(t, dispatch.Raw, typeRaw, "next")
	for {
		ev := c.expect(t, netloop.EventReceive)
		if ev.Channel == 0 {
			break
		}
	}
	obs.waitCount(t, 2) // the big message (handled or rejected) and "next"
	h, _ := obs.snapshot()
	if st := mux.Stats(); st.TooLarge != 1 || len(h) != 1 || h[0].typ != typeRaw {
		t.Fatalf("a 200-byte message on a HandleChannel channel bypasses WithMaxSize(100): stats %+v, %d handled "+
			"(dispatch/mux.go serve checks the size only for typed messages)", st, len(h))
	}
}

func TestRegistrationPanics(t *testing.T) {
	h := dispatch.HandlerFunc(func(ctx context.Context, m *dispatch.Message) error { return nil })
	mux, err := dispatch.NewMux()
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(1, h)
	mux.HandleChannel(1, h)
	mustPanic(t, "Handle(nil)", func() { mux.Handle(2, nil) })
	mustPanic(t, "HandleChannel(nil)", func() { mux.HandleChannel(2, nil) })
	mustPanic(t, "duplicate Handle", func() { mux.Handle(1, h) })
	mustPanic(t, "duplicate HandleFunc", func() { mux.HandleFunc(1, h) })
	mustPanic(t, "duplicate typed Handle", func() {
		dispatch.Handle(mux, 1, dispatch.Raw, func(context.Context, *session.Session, string) error { return nil })
	})
	mustPanic(t, "duplicate HandleChannel", func() { mux.HandleChannel(1, h) })
	mux.Handle(0, h) // type 0 and MaxType are types like any other
	mux.Handle(dispatch.MaxType, h)
	mux.Use() // nothing: fine

	// Once a session is served, the Mux is frozen.
	mux.HandleFunc(typeRaw+100, func(ctx context.Context, m *dispatch.Message) error {
		return m.Session.Send(ctx, 0, []byte("served"), netloop.Reliable)
	})
	srv := serve(t, mux)
	c := connect(t, srv, 1)
	c.send(t, 0, dispatch.AppendMessage(nil, typeRaw+100, nil))
	c.expect(t, netloop.EventReceive)
	mustPanic(t, "Handle after serving", func() { mux.Handle(50, h) })
	mustPanic(t, "HandleChannel after serving", func() { mux.HandleChannel(0, h) })
	mustPanic(t, "Use after serving", func() { mux.Use(dispatch.Recover(netlooptest.Logger(t))) })
	mustPanic(t, "typed Handle after serving", func() {
		dispatch.Handle(mux, 51, dispatch.JSON, func(context.Context, *session.Session, point) error { return nil })
	})
}

// Broadcast encodes once and reaches every session of a group.
func TestBroadcast(t *testing.T) {
	mux, err := dispatch.NewMux()
	if err != nil {
		t.Fatal(err)
	}
	var grp atomic.Pointer[session.Group] // set before any client connects
	joined := make(chan struct{}, 8)
	mux.HandleFunc(1, func(ctx context.Context, m *dispatch.Message) error {
		if err := grp.Load().Add(m.Session); err != nil {
			return err
		}
		joined <- struct{}{}
		return nil
	})
	srv := serve(t, mux)
	g := srv.NewGroup()
	grp.Store(g)
	var cs []*client
	for i := range 3 {
		c := connect(t, srv, uint32(i))
		c.send(t, 0, dispatch.AppendMessage(nil, 1, nil))
		cs = append(cs, c)
	}
	for range cs {
		select {
		case <-joined:
		case <-time.After(wait):
			t.Fatal("sessions did not join")
		}
	}
	if g.Len() != 3 {
		t.Fatalf("group of %d", g.Len())
	}
	if err := dispatch.NewRoute[point](9, dispatch.JSON, 0, netloop.Reliable).Broadcast(netlooptest.Context(t), g, point{Name: "all"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		var p point
		if typ := c.reply(t, dispatch.JSON, &p); typ != 9 || p.Name != "all" {
			t.Fatalf("got %d %+v", typ, p)
		}
	}
	if err := dispatch.NewRoute[int](9, dispatch.Raw, 0, netloop.Reliable).Broadcast(netlooptest.Context(t), g, 42); err == nil {
		t.Fatal("Broadcast of an unencodable value: no error")
	}
	if err := dispatch.NewRoute[string](9, dispatch.Proto, 0, netloop.Reliable).Send(netlooptest.Context(t), g.Sessions()[0], "not a message"); err == nil {
		t.Fatal("Send of an unencodable value: no error")
	}
}

func TestLoggingMiddleware(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	mux, err := dispatch.NewMux()
	if err != nil {
		t.Fatal(err)
	}
	mux.Use(dispatch.Logging(zap.New(core)))
	app(mux)
	srv := serve(t, mux)
	c := connect(t, srv, 1)
	echoRaw(t, c, "logged")
	c.sendMsg(t, dispatch.Raw, typeFail, "")
	c.expect(t, netloop.EventDisconnect)
	srv.sessions.end(t, 1) // the failing handler, and its log entry, are done
	entries := logs.FilterMessage("message").AllUntimed()
	if len(entries) != 2 {
		t.Fatalf("%d log entries, want 2: %+v", len(entries), entries)
	}
	for i, want := range []struct {
		typ   uint32
		bytes int
		err   bool
	}{{typeRaw, len("logged"), false}, {typeFail, 0, true}} {
		f := entries[i].ContextMap()
		if entries[i].LoggerName != "dispatch" || f["type"] != want.typ || f["bytes"] != int64(want.bytes) ||
			f["channel"] != uint8(0) || f["session"] != srv.sessions.session(1).ID() || (f["error"] != nil) != want.err {
			t.Errorf("entry %d: %s %v", i, entries[i].LoggerName, f)
		}
	}
}

// A handler whose send fails because its session has ended does not fail:
// the session ends as the peer wanted.
func TestMuxSendAfterEnd(t *testing.T) {
	sendErr := make(chan error, 1)
	mux, err := dispatch.NewMux()
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc(1, func(ctx context.Context, m *dispatch.Message) error {
		m.Session.Send(ctx, 0, []byte("waiting"), netloop.Reliable)
		<-ctx.Done() // the client disconnects
		err := dispatch.NewRoute[string](1, dispatch.Raw, 0, netloop.Reliable).Send(context.Background(), m.Session, "too late")
		sendErr <- err
		return err
	})
	srv := serve(t, mux)
	c := connect(t, srv, 1)
	c.send(t, 0, dispatch.AppendMessage(nil, 1, nil))
	c.expect(t, netloop.EventReceive)
	if err := c.Disconnect(netlooptest.Context(t), c.peer, 3); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sendErr:
		if !errors.Is(err, session.ErrEnded) {
			t.Fatalf("Send after the end: %v, want %v", err, session.ErrEnded)
		}
	case <-time.After(wait):
		t.Fatal("handler did not send")
	}
	if end := srv.sessions.end(t, 1); end.Reason != session.ReasonRemote || end.Data != 3 {
		t.Fatalf("end %v, want remote with data 3", end)
	}
	if err := srv.stop(); err != nil { // every handler has returned
		t.Fatal(err)
	}
	if st, mst := srv.Stats(), mux.Stats(); st.HandlerErrors != 0 || mst.Failed != 0 || mst.Handled != 1 {
		t.Fatalf("stats %+v, mux %+v: want no failure", st, mst)
	}
}

func TestNewMuxRejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]dispatch.Option{
		"zero max size":         dispatch.WithMaxSize(0),
		"max size above ENet's": dispatch.WithMaxSize(netloop.MaxMessageSize + 1),
		"unknown reject policy": dispatch.WithRejectPolicy(dispatch.RejectPolicy(7)),
	} {
		if _, err := dispatch.NewMux(opt); !errors.Is(err, dispatch.ErrOption) {
			t.Errorf("%s: NewMux returned %v, want %v", name, err, dispatch.ErrOption)
		}
	}
	if _, err := dispatch.NewMux(dispatch.WithMaxSize(netloop.MaxMessageSize)); err != nil {
		t.Errorf("largest max size: %v", err)
	}
}

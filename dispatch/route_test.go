package dispatch_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

type move struct{ X, Y int }

var (
	routeMove  = dispatch.NewRoute[move](20, dispatch.JSON, 1, netloop.Unreliable)
	routeShout = dispatch.NewRoute[*wrapperspb.StringValue](21, dispatch.Proto, 0, netloop.Reliable)
	routeRaw   = dispatch.NewRoute[[]byte](22, dispatch.Raw, 0, netloop.Reliable)
)

func TestRouteEncodeDecode(t *testing.T) {
	b, err := routeMove.Encode(move{X: 1, Y: -2})
	if err != nil {
		t.Fatal(err)
	}
	if typ, _, err := dispatch.ParseMessage(b); err != nil || typ != 20 {
		t.Fatalf("ParseMessage: %d %v", typ, err)
	}
	v, err := routeMove.Decode(b)
	if err != nil || v != (move{1, -2}) {
		t.Fatalf("Decode: %+v %v", v, err)
	}
	// The same bytes through the old positional API.
	old, err := dispatch.Encode(dispatch.JSON, 20, move{X: 1, Y: -2})
	if err != nil || string(old) != string(b) {
		t.Fatalf("Encode differs: %q vs %q (%v)", old, b, err)
	}
	if _, err := routeShout.Decode(b); !errors.Is(err, dispatch.ErrRoute) {
		t.Fatalf("Decode of another type: %v, want ErrRoute", err)
	}
	bad := dispatch.AppendMessage(nil, 20, []byte("{not json"))
	if _, err := routeMove.Decode(bad); !errors.Is(err, dispatch.ErrDecode) {
		t.Fatalf("Decode of garbage: %v, want ErrDecode", err)
	}
	if _, err := routeMove.Decode([]byte{0x80}); !errors.Is(err, dispatch.ErrMalformed) {
		t.Fatalf("Decode of a bad prefix: %v, want ErrMalformed", err)
	}
	if _, err := dispatch.NewRoute[int](1, dispatch.Raw, 0, netloop.Reliable).Encode(42); err == nil {
		t.Fatal("Encode of an int with Raw: no error")
	}
	var zero dispatch.Route[move]
	if _, err := zero.Encode(move{}); !errors.Is(err, dispatch.ErrRoute) {
		t.Fatalf("zero Route Encode: %v", err)
	}
	if _, err := zero.Unmarshal(nil); !errors.Is(err, dispatch.ErrRoute) {
		t.Fatalf("zero Route Unmarshal: %v", err)
	}
	prefix := []byte("keep")
	out, err := routeRaw.Append(prefix, []byte("x"))
	if err != nil || string(out[:4]) != "keep" {
		t.Fatalf("Append: %q %v", out, err)
	}
	if got := routeMove.String(); got != "route 20 (json, channel 1, unreliable)" {
		t.Fatalf("String: %q", got)
	}
	if routeMove.Type() != 20 || routeMove.Codec() != dispatch.JSON || routeMove.Channel() != 1 || routeMove.Flag() != netloop.Unreliable {
		t.Fatal("accessors")
	}
}

func TestRouteDeclarationPanics(t *testing.T) {
	mux, err := dispatch.NewMux()
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"nil codec":   func() { dispatch.NewRoute[move](1, nil, 0, netloop.Reliable) },
		"bad flag":    func() { dispatch.NewRoute[move](1, dispatch.JSON, 0, netloop.Flag(9)) },
		"zero Handle": func() { dispatch.Route[move]{}.Handle(mux, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

// A route registers the handler and sends the reply, on its own channel
// and flag, to one session and to a group.
func TestRouteHandleSendBroadcast(t *testing.T) {
	mux, err := dispatch.NewMux()
	if err != nil {
		t.Fatal(err)
	}
	var grp atomic.Pointer[session.Group]
	routeMove.Handle(mux, func(ctx context.Context, s *session.Session, m move) error {
		if err := grp.Load().Add(s); err != nil {
			return err
		}
		return routeMove.Send(ctx, s, move{X: m.X + 1, Y: m.Y + 1})
	})
	routeShout.Handle(mux, func(ctx context.Context, s *session.Session, v *wrapperspb.StringValue) error {
		return routeShout.Broadcast(ctx, grp.Load(), wrapperspb.String(v.GetValue()+"!"))
	})
	srv := serve(t, mux)
	grp.Store(srv.NewGroup())
	var cs []*client
	for i := range 2 {
		c := connect(t, srv, uint32(i))
		b, err := routeMove.Encode(move{X: i})
		if err != nil {
			t.Fatal(err)
		}
		c.send(t, 0, b)
		ev := c.expect(t, netloop.EventReceive)
		got, err := routeMove.Decode(ev.Payload)
		if err != nil || got != (move{X: i + 1, Y: 1}) || ev.Channel != 1 || ev.Flag != netloop.Unreliable {
			t.Fatalf("reply %+v on %d/%s: %v", got, ev.Channel, ev.Flag, err)
		}
		cs = append(cs, c)
	}
	b, err := routeShout.Encode(wrapperspb.String("hi"))
	if err != nil {
		t.Fatal(err)
	}
	cs[0].send(t, 0, b)
	for _, c := range cs {
		ev := c.expect(t, netloop.EventReceive)
		v, err := routeShout.Decode(ev.Payload)
		if err != nil || v.GetValue() != "hi!" || ev.Channel != 0 || ev.Flag != netloop.Reliable {
			t.Fatalf("broadcast %v on %d: %v", v, ev.Channel, err)
		}
	}
	// An undecodable payload is a bad message, as with Handle: dropped,
	// counted, and the session goes on (its next message is answered).
	cs[1].send(t, 0, dispatch.AppendMessage(nil, 20, []byte("{")))
	b, err = routeMove.Encode(move{X: 5})
	if err != nil {
		t.Fatal(err)
	}
	cs[1].send(t, 0, b)
	if ev := cs[1].expect(t, netloop.EventReceive); ev.Channel != 1 {
		t.Fatalf("reply on %d", ev.Channel)
	}
	if st := mux.Stats(); st.Undecodable != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// BenchmarkRouteEncode compares a route's encoding with the positional
// Encode it replaces: the same work, the same allocations.
func BenchmarkRouteEncode(b *testing.B) {
	v := move{X: 1, Y: 2}
	b.Run("route", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := routeMove.Encode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("positional", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := dispatch.Encode(dispatch.JSON, 20, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

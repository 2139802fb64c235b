package dispatch_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

// FuzzJSONDecode sends any payload, as a JSON-typed and as a proto-typed
// message, through a Mux over loopback: the typed decode path (Handle[T])
// either hands the handler a value or rejects the message with ErrDecode
// (ErrTooLarge past the size limit); it never panics and never ends the
// session.
func FuzzJSONDecode(f *testing.F) {
	for _, s := range []string{
		"", "{}", "null", `{"name":"x","X":1,"Y":-1,"tags":["a",null],"sub":{"F":1e308}}`, `{"name":`, `[1,2]`,
		`{"X":1e400}`, `{"name":"\ud800"}`, "\xff\xfe", "\x0a\x05hello", "\x0a\x02\xff\xfe", `{"sub":{"F":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	obs := newMsgLog()
	mux, err := dispatch.NewMux(dispatch.WithObserver(obs))
	if err != nil {
		f.Fatal(err)
	}
	// A panic becomes a handler error the observer sees, not a silent end.
	mux.Use(dispatch.Recover(netlooptest.Logger(f)))
	dispatch.Handle(mux, typeJSON, dispatch.JSON, func(ctx context.Context, s *session.Session, p point) error { return nil })
	dispatch.Handle(mux, typeProto, dispatch.Proto, func(ctx context.Context, s *session.Session, v *wrapperspb.StringValue) error {
		if v == nil {
			return errors.New("decoded a nil message")
		}
		return nil
	})
	srv := serve(f, mux)
	c := connect(f, srv, 1)

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range []uint32{typeJSON, typeProto} {
			h0, r0 := obs.snapshot()
			c.send(t, 0, dispatch.AppendMessage(nil, typ, data))
			obs.waitCount(t, len(h0)+len(r0)+1)
			h, r := obs.snapshot()
			switch {
			case len(h) > len(h0):
				if got := h[len(h)-1]; got.typ != typ || got.err != nil {
					t.Fatalf("type %d, payload %q: handled %+v", typ, data, got)
				}
			case len(r) > len(r0):
				got := r[len(r)-1]
				if !errors.Is(got.reason, dispatch.ErrDecode) && !errors.Is(got.reason, dispatch.ErrTooLarge) {
					t.Fatalf("type %d, payload %q: rejected %+v", typ, data, got)
				}
			}
			if end, ok := srv.sessions.ended(1); ok {
				t.Fatalf("session ended: %v", end)
			}
		}
	})
}

package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// ErrRoute: a message of another type than the route's, or a route that
// was not declared with NewRoute.
var ErrRoute = errors.New("dispatch: message not of this route")

// Route declares one kind of message once: its type, its codec, the ENet
// channel and flag it travels with, and its Go type T. The same value
// registers the handler (Handle), sends (Send, Broadcast) and, for code
// that is not a session handler (a client, a room), encodes and decodes
// (Encode, Decode). Declare routes as package variables shared by server
// and client:
//
//	var Move = dispatch.NewRoute[MoveMsg](7, dispatch.Proto, 0, netloop.Unreliable)
//
// A Route is an immutable value, safe for concurrent use.
type Route[T any] struct {
	typ   uint32
	codec Codec
	ch    uint8
	flag  netloop.Flag
}

// NewRoute declares a route. It panics if c is nil or flag is not one of
// netloop's flags: routes are declared once, at start-up, like
// Mux.Handle's registrations.
func NewRoute[T any](typ uint32, c Codec, ch uint8, flag netloop.Flag) Route[T] {
	if c == nil {
		panic("dispatch: route with a nil codec")
	}
	if flag > netloop.Unreliable {
		panic(fmt.Sprintf("dispatch: route with unknown flag %d", flag))
	}
	return Route[T]{typ: typ, codec: c, ch: ch, flag: flag}
}

// Type returns the route's message type.
func (r Route[T]) Type() uint32 { return r.typ }

// Codec returns the route's codec.
func (r Route[T]) Codec() Codec { return r.codec }

// Channel returns the ENet channel the route's messages are sent on.
func (r Route[T]) Channel() uint8 { return r.ch }

// Flag returns the flag the route's messages are sent with.
func (r Route[T]) Flag() netloop.Flag { return r.flag }

// String describes the route, e.g. "route 7 (proto, channel 0, unreliable)".
func (r Route[T]) String() string {
	name := "no codec"
	if r.codec != nil {
		name = r.codec.Name()
	}
	return fmt.Sprintf("route %d (%s, channel %d, %s)", r.typ, name, r.ch, r.flag)
}

func (r Route[T]) check() error {
	if r.codec == nil {
		return fmt.Errorf("%w: the zero Route", ErrRoute)
	}
	return nil
}

// Handle registers fn on m for the route's messages (see the package
// function Handle). It panics as Mux.Handle does, and on the zero Route.
func (r Route[T]) Handle(m *Mux, fn func(ctx context.Context, s *session.Session, v T) error) {
	if r.codec == nil {
		panic("dispatch: Handle with the zero Route")
	}
	Handle(m, r.typ, r.codec, fn)
}

// Append appends the wire form of v (type prefix, then payload) to dst.
func (r Route[T]) Append(dst []byte, v T) ([]byte, error) {
	if err := r.check(); err != nil {
		return dst, err
	}
	n := len(dst)
	dst = AppendMessage(dst, r.typ, nil)
	out, err := r.codec.Append(dst, v)
	if err != nil {
		return dst[:n], fmt.Errorf("dispatch: encode %s: %w", r, err)
	}
	return out, nil
}

// Encode returns the wire form of v in a new buffer (as the package
// function Encode does).
func (r Route[T]) Encode(v T) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	return Encode(r.codec, r.typ, v)
}

// Decode parses a whole message b of this route and returns its value.
// A message of another type is an error wrapping ErrRoute; a payload
// that does not decode, one wrapping ErrDecode.
func (r Route[T]) Decode(b []byte) (T, error) {
	var v T
	typ, payload, err := ParseMessage(b)
	if err != nil {
		return v, err
	}
	if typ != r.typ {
		return v, fmt.Errorf("%w: type %d, want %d", ErrRoute, typ, r.typ)
	}
	return r.Unmarshal(payload)
}

// Unmarshal decodes a payload of this route, without its type prefix
// (as ParseMessage returns it). An error wraps ErrDecode.
func (r Route[T]) Unmarshal(payload []byte) (T, error) {
	var v T
	if err := r.check(); err != nil {
		return v, err
	}
	if err := r.codec.Unmarshal(payload, &v); err != nil {
		return v, fmt.Errorf("%w: type %d, %s: %v", ErrDecode, r.typ, r.codec.Name(), err)
	}
	return v, nil
}

// A Sender sends one encoded message to one peer: *session.Session is
// one; so are a room's members and the room client. Send must not retain
// data past its return unless its own contract says so.
type Sender interface {
	Send(ctx context.Context, ch uint8, data []byte, flag netloop.Flag) error
}

// A Broadcaster sends one encoded message to a set of peers:
// *session.Group is one, and so is a room.
type Broadcaster interface {
	Broadcast(ctx context.Context, ch uint8, data []byte, flag netloop.Flag) error
}

// Sender and Broadcaster are what sessions and groups already are.
var (
	_ Sender      = (*session.Session)(nil)
	_ Broadcaster = (*session.Group)(nil)
)

// Send encodes v and sends it to s on the route's channel with its flag.
// The encoded buffer is new for each call and never reused, so s may keep
// it.
func (r Route[T]) Send(ctx context.Context, s Sender, v T) error {
	b, err := r.Encode(v)
	if err != nil {
		return err
	}
	return s.Send(ctx, r.ch, b, r.flag)
}

// Broadcast encodes v once and sends it to every peer of g (for a
// session.Group, as one ENet packet they share). The encoded buffer is
// new and never reused.
func (r Route[T]) Broadcast(ctx context.Context, g Broadcaster, v T) error {
	b, err := r.Encode(v)
	if err != nil {
		return err
	}
	return g.Broadcast(ctx, r.ch, b, r.flag)
}

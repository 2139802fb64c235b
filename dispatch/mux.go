package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// Message is one routed message. It is valid only during the handler call:
// a handler that keeps Payload must keep the slice, not the *Message.
type Message struct {
	Session *session.Session
	Type    uint32 // 0 for messages routed by channel
	Channel uint8
	Flag    netloop.Flag
	Payload []byte // without the type prefix; owned by the handler
}

// A Handler handles one message. An error it returns ends the message's
// session (session.ReasonHandlerError), except errors wrapping ErrDecode or
// ErrRateLimited, which the Mux's RejectPolicy handles.
type Handler interface {
	ServeMessage(ctx context.Context, m *Message) error
}

// HandlerFunc adapts an ordinary function to a Handler.
type HandlerFunc func(ctx context.Context, m *Message) error

// ServeMessage calls f(ctx, m).
func (f HandlerFunc) ServeMessage(ctx context.Context, m *Message) error { return f(ctx, m) }

// Middleware wraps a Handler.
type Middleware func(Handler) Handler

// Observer is told about each message (package metrics implements it). Its
// methods are called from session goroutines and must not block.
type Observer interface {
	MessageHandled(typ uint32, d time.Duration, err error)
	MessageRejected(typ uint32, reason RejectReason, err error)
}

// Mux routes each message of a session to the handler registered for its
// type or, for channels registered with HandleChannel, for its channel. It
// is a session.Handler: it serves a session's messages one at a time, in
// order, in the session's goroutine. Register handlers and middleware
// before the first session starts; the Mux is then read-only and safe for
// concurrent use.
//
// A handler's ctx is its session's Context. It is cancelled the moment the
// session ends (the peer leaves, times out, or the server shuts down),
// and the messages that arrived before the end are still handled after
// that: a handler that must finish work for them (a reply, a write to a
// store) uses context.WithoutCancel(ctx), with a timeout of its own,
// rather than ctx. A send to the ended session itself fails with an error
// for which errors.Is(err, netloop.ErrGone) holds, which the Mux does not
// count as a failure.
type Mux struct {
	types    map[uint32]Handler
	channels map[uint8]Handler
	mw       []Middleware
	connect  []func(ctx context.Context, s *session.Session) error
	end      []func(ctx context.Context, s *session.Session, err error)
	maxSize  int
	policy   RejectPolicy
	log      *zap.Logger
	obs      Observer

	freeze sync.Once
	frozen atomic.Bool
	stats  muxCounters
}

type muxCounters struct {
	handled, failed, unknown, malformed, undecodable, tooLarge, rateLimited atomic.Int64
}

// Stats are a Mux's counters.
type Stats struct {
	Handled     int64 // messages handled, with or without error (bad messages not included)
	Failed      int64 // handler errors that ended a session
	Unknown     int64
	Malformed   int64
	Undecodable int64
	TooLarge    int64
	RateLimited int64
}

// NewMux returns an empty Mux, or an error wrapping ErrOption if an
// option is out of range.
func NewMux(opts ...Option) (*Mux, error) {
	m := &Mux{
		types:    make(map[uint32]Handler),
		channels: make(map[uint8]Handler),
		maxSize:  64 << 10,
		log:      zap.NewNop(),
	}
	for _, o := range opts {
		o(m)
	}
	switch {
	case m.maxSize < 1 || m.maxSize > netloop.MaxMessageSize:
		return nil, fmt.Errorf("%w: max size %d, want 1..%d", ErrOption, m.maxSize, netloop.MaxMessageSize)
	case m.policy > RejectDisconnect:
		return nil, fmt.Errorf("%w: reject policy %d", ErrOption, m.policy)
	}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	m.log = m.log.Named("dispatch")
	return m, nil
}

// Stats returns the Mux's counters.
func (m *Mux) Stats() Stats {
	c := &m.stats
	return Stats{
		Handled: c.handled.Load(), Failed: c.failed.Load(), Unknown: c.unknown.Load(),
		Malformed: c.malformed.Load(), Undecodable: c.undecodable.Load(),
		TooLarge: c.tooLarge.Load(), RateLimited: c.rateLimited.Load(),
	}
}

func (m *Mux) mustConfigure(what string) {
	if m.frozen.Load() {
		panic("dispatch: " + what + " after the Mux started serving")
	}
}

// Handle registers h for messages of type typ. It panics if h is nil, typ
// is taken, or the Mux is already serving.
func (m *Mux) Handle(typ uint32, h Handler) {
	m.mustConfigure("Handle")
	if h == nil {
		panic("dispatch: nil handler")
	}
	if _, dup := m.types[typ]; dup {
		panic(fmt.Sprintf("dispatch: multiple registrations for type %d", typ))
	}
	m.types[typ] = h
}

// HandleFunc registers f for messages of type typ.
func (m *Mux) HandleFunc(typ uint32, f func(ctx context.Context, m *Message) error) {
	m.Handle(typ, HandlerFunc(f))
}

// HandleChannel routes every message on ENet channel ch to h, whole: such
// messages have no type prefix (Type is 0). It panics like Handle.
func (m *Mux) HandleChannel(ch uint8, h Handler) {
	m.mustConfigure("HandleChannel")
	if h == nil {
		panic("dispatch: nil handler")
	}
	if _, dup := m.channels[ch]; dup {
		panic(fmt.Sprintf("dispatch: multiple registrations for channel %d", ch))
	}
	m.channels[ch] = h
}

// OnConnect adds fn to what runs, in the session's goroutine, when a
// session starts, before its first message is handled: set up per-session
// state there (Session.Set). Hooks run in the order they were added. An
// error from fn ends the session as a handler error does
// (session.ReasonHandlerError), with no message handled. It panics if the
// Mux is already serving.
func (m *Mux) OnConnect(fn func(ctx context.Context, s *session.Session) error) {
	m.mustConfigure("OnConnect")
	if fn == nil {
		panic("dispatch: nil OnConnect hook")
	}
	m.connect = append(m.connect, fn)
}

// OnDisconnect adds fn to what runs, in the session's goroutine, once the
// Mux is done with a session: it has ended and its last message has been
// handled, or a handler or connect hook failed (the session then ends with
// that error). err is the *session.EndError, or the error that ends the
// session. ctx is the session's Context without its cancellation, so fn
// may still use it for clean-up calls (bounded by a timeout of fn's own);
// the server's Run waits for fn. Hooks run in the reverse order of
// OnDisconnect calls, as deferred calls do, and even if a connect hook
// failed. It panics if the Mux is already serving.
func (m *Mux) OnDisconnect(fn func(ctx context.Context, s *session.Session, err error)) {
	m.mustConfigure("OnDisconnect")
	if fn == nil {
		panic("dispatch: nil OnDisconnect hook")
	}
	m.end = append(m.end, fn)
}

// Use adds middleware around every handler; the first added is the
// outermost. It panics if the Mux is already serving.
func (m *Mux) Use(mw ...Middleware) {
	m.mustConfigure("Use")
	m.mw = append(m.mw, mw...)
}

// Handle registers fn for messages of type typ whose payload c decodes
// into a T. A payload that does not decode is a bad message (ErrDecode).
func Handle[T any](m *Mux, typ uint32, c Codec, fn func(ctx context.Context, s *session.Session, v T) error) {
	if raw, ok := any(fn).(func(context.Context, *session.Session, []byte) error); ok && c == Raw {
		// Raw bytes need no decoding: hand the payload over as it is.
		m.Handle(typ, HandlerFunc(func(ctx context.Context, msg *Message) error {
			return raw(ctx, msg.Session, msg.Payload)
		}))
		return
	}
	m.Handle(typ, HandlerFunc(func(ctx context.Context, msg *Message) error {
		var v T
		if err := c.Unmarshal(msg.Payload, &v); err != nil {
			return fmt.Errorf("%w: type %d, %s: %v", ErrDecode, msg.Type, c.Name(), err)
		}
		return fn(ctx, msg.Session, v)
	}))
}

// wrap applies the middleware to every handler, once.
func (m *Mux) wrap() {
	m.frozen.Store(true)
	chain := func(h Handler) Handler {
		for i := len(m.mw) - 1; i >= 0; i-- {
			h = m.mw[i](h)
		}
		return h
	}
	for t, h := range m.types {
		m.types[t] = chain(h)
	}
	for c, h := range m.channels {
		m.channels[c] = chain(h)
	}
}

// ServeSession serves s's messages in order until the session ends or a
// handler fails.
func (m *Mux) ServeSession(ctx context.Context, s *session.Session) (err error) {
	m.freeze.Do(m.wrap)
	if len(m.end) > 0 {
		defer func() {
			why := err
			if why == nil {
				why = s.Err()
			}
			for i := len(m.end) - 1; i >= 0; i-- {
				m.end[i](context.WithoutCancel(ctx), s, why)
			}
		}()
	}
	for _, fn := range m.connect {
		if err := fn(ctx, s); err != nil {
			if ctx.Err() != nil {
				return nil // the session ended meanwhile: nothing failed
			}
			return fmt.Errorf("dispatch: connect hook: %w", err)
		}
	}
	msg := &Message{Session: s} // reused: valid only during a handler call
	for {
		in, err := s.Receive(ctx)
		if err != nil {
			if errors.Is(err, session.ErrEnded) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := m.serve(ctx, msg, in); err != nil {
			return err
		}
	}
}

func (m *Mux) serve(ctx context.Context, msg *Message, in session.Message) error {
	msg.Channel, msg.Flag, msg.Type, msg.Payload = in.Channel, in.Flag, 0, in.Data
	if len(in.Data) > m.maxSize {
		return m.reject(msg, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(in.Data), m.maxSize))
	}
	h, ok := m.channels[in.Channel]
	if !ok {
		typ, payload, err := ParseMessage(in.Data)
		if err != nil {
			return m.reject(msg, err)
		}
		msg.Type, msg.Payload = typ, payload
		if h, ok = m.types[typ]; !ok {
			return m.reject(msg, fmt.Errorf("%w: %d", ErrUnknownType, typ))
		}
	}
	var start time.Time
	if m.obs != nil {
		start = time.Now()
	}
	err := h.ServeMessage(ctx, msg)
	if errors.Is(err, ErrDecode) || errors.Is(err, ErrRateLimited) {
		return m.reject(msg, err)
	}
	m.stats.handled.Add(1)
	if m.obs != nil {
		m.obs.MessageHandled(msg.Type, time.Since(start), err)
	}
	if errors.Is(err, session.ErrEnded) {
		return nil // the session is ending: Receive will say so
	}
	if err != nil {
		m.stats.failed.Add(1)
		return fmt.Errorf("dispatch: type %d: %w", msg.Type, err)
	}
	return nil
}

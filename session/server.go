package session

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/enetkit/enetkit/netloop"
)

// A Handler serves one session, in the session's own goroutine, from just
// after its connect. It reads the session's messages with Receive. When it
// returns nil the session is closed gracefully; when it returns an error or
// panics, that session alone ends (ReasonHandlerError, ReasonHandlerPanic),
// and the server goes on. ctx is the session's Context: a handler must
// return soon after it is done, since the server's Run waits for every
// handler.
//
// ctx is cancelled the moment the session ends, while Receive still
// returns the messages that arrived before the end: work a handler must
// finish for those last messages takes context.WithoutCancel(ctx), with a
// timeout of its own, not ctx.
type Handler interface {
	ServeSession(ctx context.Context, s *Session) error
}

// HandlerFunc adapts an ordinary function to a Handler.
type HandlerFunc func(ctx context.Context, s *Session) error

// ServeSession calls f(ctx, s).
func (f HandlerFunc) ServeSession(ctx context.Context, s *Session) error { return f(ctx, s) }

// SlowPolicy is what the server does with a message for a session whose
// inbox is full. Whatever it does, it does not wait for the slow handler:
// one slow handler must not stall the host or other sessions. A drop is
// immediate; a disconnect is a command queued to the host, which waits
// only while the host's own command queue is full (netloop's
// WithCommandBuffer). Every drop is counted (Stats) and reported to the
// Observer, and the first per session is logged.
type SlowPolicy uint8

const (
	// SlowDropUnreliable drops unreliable and unsequenced messages; a reliable
	// message that does not fit disconnects the session (ReasonSlow), so a
	// handler never sees a gap in a reliable stream. The default.
	SlowDropUnreliable SlowPolicy = iota
	// SlowDisconnect disconnects the session on the first message that does not fit.
	SlowDisconnect
	// SlowDropAll drops any message that does not fit, reliable or not.
	SlowDropAll
)

// Observer is told what happens to sessions (package metrics implements it).
// Its methods are called from the server's goroutines, the hosts' loop
// goroutines among them (see Run), and must not block: while one runs on
// a loop, that host serves no peer.
type Observer interface {
	SessionStarted(s *Session)
	SessionEnded(s *Session, end *EndError, lifetime time.Duration)
	MessageDropped(s *Session, m Message)
	HandlerFailed(s *Session, err error, panicked bool)
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(s *Server) { s.log = l } }

// WithInbox sets each session's inbox capacity, in messages: at least 1
// (default 256).
func WithInbox(n int) Option { return func(s *Server) { s.inboxSize = n } }

// WithInboxBytes bounds the payload bytes waiting in each session's inbox
// (default 4 MiB, at least 1): a message that would take the inbox past it is handled
// by the slow-consumer policy, as one that finds the inbox full is. A
// message larger than the bound is delivered to an empty inbox.
func WithInboxBytes(n int) Option { return func(s *Server) { s.inboxBytes = n } }

// WithSlowPolicy sets the slow-consumer policy (default SlowDropUnreliable).
func WithSlowPolicy(p SlowPolicy) Option { return func(s *Server) { s.policy = p } }

// WithObserver sets an observer of sessions.
func WithObserver(o Observer) Option { return func(s *Server) { s.obs = o } }

var (
	// ErrForeignSession: a session of another server.
	ErrForeignSession = errors.New("session: session of another server")
	// ErrOption: New was given an option out of range.
	ErrOption = errors.New("session: option out of range")
)

// Server runs a goroutine per connected peer of a netloop host, each
// serving one Session with the Handler. Create it with New and run it with
// Run.
type Server struct {
	host       *netloop.Host
	hosts      []*netloop.Host // host first; more with NewForGroup
	group      *netloop.Group  // with NewForGroup
	handler    Handler
	log        *zap.Logger
	inboxSize  int
	inboxBytes int
	policy     SlowPolicy
	obs        Observer

	wg    sync.WaitGroup // session goroutines
	stats counters
}

type counters struct {
	started, ended, live, dropped, slowClosed, handlerErrors, handlerPanics atomic.Int64
}

// Stats are a server's counters.
type Stats struct {
	Started, Ended, Live int64
	Dropped              int64 // messages dropped by the slow-consumer policy or after the handler returned
	SlowDisconnects      int64 // sessions ended by the slow-consumer policy
	HandlerErrors        int64
	HandlerPanics        int64
}

// New returns a server for host's sessions; it starts nothing. It returns
// an error wrapping ErrOption if an option is out of range.
func New(host *netloop.Host, h Handler, opts ...Option) (*Server, error) {
	srv := &Server{
		host:       host,
		hosts:      []*netloop.Host{host},
		handler:    h,
		log:        zap.NewNop(),
		inboxSize:  256,
		inboxBytes: 4 << 20,
	}
	for _, o := range opts {
		o(srv)
	}
	switch {
	case host == nil || h == nil:
		return nil, fmt.Errorf("%w: nil host or handler", ErrOption)
	case srv.inboxSize < 1:
		return nil, fmt.Errorf("%w: inbox of %d messages, want at least 1", ErrOption, srv.inboxSize)
	case srv.inboxBytes < 1:
		return nil, fmt.Errorf("%w: inbox of %d bytes, want at least 1", ErrOption, srv.inboxBytes)
	case srv.policy > SlowDropAll:
		return nil, fmt.Errorf("%w: slow-consumer policy %d", ErrOption, srv.policy)
	}
	if srv.log == nil {
		srv.log = zap.NewNop()
	}
	srv.log = srv.log.Named("session")
	return srv, nil
}

// Host returns the server's host (with NewForGroup, the group's first).
func (srv *Server) Host() *netloop.Host { return srv.host }

// Stats returns the server's counters; safe for concurrent use.
func (srv *Server) Stats() Stats {
	c := &srv.stats
	return Stats{
		Started: c.started.Load(), Ended: c.ended.Load(), Live: c.live.Load(),
		Dropped: c.dropped.Load(), SlowDisconnects: c.slowClosed.Load(),
		HandlerErrors: c.handlerErrors.Load(), HandlerPanics: c.handlerPanics.Load(),
	}
}

// Run runs the host and the sessions until ctx is cancelled or the host
// fails. On cancel it drains: the host stops accepting connections,
// disconnects every peer after delivering what was queued for it (bounded by
// the host's drain timeout), every session ends with Shutdown, and Run
// returns nil once every handler has returned. To run services of your own
// beside it, put Run in the same errgroup:
//
//	g, ctx := errgroup.WithContext(ctx)
//	g.Go(func() error { return srv.Run(ctx) })
//	g.Go(func() error { return myService(ctx) })
//	return g.Wait()
//
// Run routes each host's events to the sessions' inboxes from the host's
// loop goroutine, as the host's inline handler (netloop.Host.SetInline,
// which Run sets, replacing any other): routing never waits, so a message
// goes from the loop to its session's goroutine with no goroutine between.
// Observer calls and the server's log calls then run on the loop goroutine
// too, and must be as quick as the Observer's contract says. Run returns
// the host's error (netloop.ErrRunning, netloop.ErrClosed) if a host has
// already been run or closed.
func (srv *Server) Run(ctx context.Context) error {
	routers := make([]*router, len(srv.hosts))
	for i, h := range srv.hosts { // a router per host: see NewForGroup
		routers[i] = srv.newRouter()
		if err := h.SetInline(routers[i].route); err != nil {
			return err
		}
	}
	var err error
	if srv.group != nil {
		err = srv.group.Run(ctx)
	} else {
		err = srv.host.Run(ctx)
	}
	// Run has returned: the loops are done with the routers.
	for _, r := range routers {
		r.end()
	}
	srv.wg.Wait()
	return err
}

// Serve consumes a host's events until the channel closes and waits for
// every session's handler to return. Call it only to run the host in
// another way than Run does (Run routes events itself), once per host.
func (srv *Server) Serve(events <-chan netloop.Event) {
	r := srv.newRouter()
	for ev := range events {
		r.route(nil, ev)
	}
	r.end()
	srv.wg.Wait()
}

// router routes one host's events to its sessions: on the host's loop
// goroutine, as its inline handler (Run), or on a consumer goroutine
// (Serve). Either way one goroutine at a time, in the host's order.
type router struct {
	srv      *Server
	sessions map[netloop.Peer]*Session // this host's
}

func (srv *Server) newRouter() *router {
	return &router{srv: srv, sessions: make(map[netloop.Peer]*Session)}
}

// route handles one event. in is the loop's Inline when route runs as the
// inline handler, nil in Serve.
func (r *router) route(in *netloop.Inline, ev netloop.Event) {
	srv := r.srv
	switch ev.Kind {
	case netloop.EventConnect:
		r.sessions[ev.Peer] = srv.start(ev)
	case netloop.EventReceive:
		if s := r.sessions[ev.Peer]; s != nil {
			srv.deliver(in, s, Message{Channel: ev.Channel, Flag: ev.Flag, Data: ev.Payload})
		}
		if in != nil {
			in.Yield() // the session's goroutine answers in this batch, on the loop's processor
		}
	case netloop.EventDisconnect:
		if s := r.sessions[ev.Peer]; s != nil {
			delete(r.sessions, ev.Peer)
			srv.finish(s, ev)
		}
	}
}

// end ends the sessions left once the host's events are over. The host
// delivers every Disconnect before it stops unless a consumer of Events
// stalled past the drain timeout.
func (r *router) end() {
	for p, s := range r.sessions {
		delete(r.sessions, p)
		r.srv.finish(s, netloop.Event{Kind: netloop.EventDisconnect, Peer: p, Reason: netloop.ReasonShutdown})
	}
}

func (srv *Server) start(ev netloop.Event) *Session {
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &Session{
		srv: srv, peer: ev.Peer, addr: ev.Addr, data: ev.Data, started: time.Now(),
		inbox: make(chan Message, srv.inboxSize),
		ctx:   ctx, cancel: cancel,
	}
	srv.stats.started.Add(1)
	srv.stats.live.Add(1)
	srv.log.Info("session started", zap.Uint64("session", s.ID()), zap.Stringer("addr", s.addr))
	if srv.obs != nil {
		srv.obs.SessionStarted(s)
	}
	srv.wg.Go(func() { srv.serveSession(s) })
	return s
}

// deliver puts m in s's inbox, or applies the slow-consumer policy; in is
// the loop's Inline when deliver runs on the loop goroutine, or nil.
func (srv *Server) deliver(in *netloop.Inline, s *Session, m Message) {
	if s.dropping || s.returned.Load() {
		srv.drop(s, m)
		return
	}
	if n := s.inboxBytes.Load(); n == 0 || n+int64(len(m.Data)) <= int64(srv.inboxBytes) {
		s.inboxBytes.Add(int64(len(m.Data))) // before the send: the handler subtracts after its receive
		select {
		case s.inbox <- m:
			return
		default:
			s.inboxBytes.Add(-int64(len(m.Data)))
		}
	}
	srv.drop(s, m)
	if srv.policy == SlowDropAll || (srv.policy == SlowDropUnreliable && m.Flag != netloop.Reliable) {
		return
	}
	s.dropping = true
	srv.stats.slowClosed.Add(1)
	srv.log.Warn("session too slow: disconnecting", zap.Uint64("session", s.ID()), zap.Stringer("addr", s.addr), zap.Int("inbox", cap(s.inbox)))
	if err := s.closeIn(in, ReasonSlow, 0); err != nil {
		srv.log.Warn("disconnect slow session", zap.Uint64("session", s.ID()), zap.Error(err))
	}
}

func (srv *Server) drop(s *Session, m Message) {
	if srv.stats.dropped.Add(1) == 1 || !s.dropping {
		srv.log.Debug("message dropped", zap.Uint64("session", s.ID()), zap.Uint8("channel", m.Channel), zap.Stringer("flag", m.Flag))
	}
	if srv.obs != nil {
		srv.obs.MessageDropped(s, m)
	}
}

// finish ends s on its Disconnect event: the inbox closes after the last
// message, then the context is cancelled with the reason.
func (srv *Server) finish(s *Session, ev netloop.Event) {
	end := &EndError{Reason: ReasonRemote, Data: ev.Data}
	switch ev.Reason {
	case netloop.ReasonTimeout:
		end.Reason = ReasonTimeout
	case netloop.ReasonShutdown:
		end.Reason = ReasonShutdown
	case netloop.ReasonSlow:
		end.Reason = ReasonSlow
	case netloop.ReasonLocal, netloop.ReasonConnectFailed:
		end.Reason, end.Data = s.endReason(), s.sentData.Load()
	}
	if r := Reason(s.local.Load()); r == ReasonHandlerError || r == ReasonHandlerPanic {
		end.Reason = r
		end.Err = s.handlerErr
	}
	s.end = end
	s.leaveAll() // before the handler can see the end
	close(s.inbox)
	s.cancel(end)
	srv.stats.ended.Add(1)
	srv.stats.live.Add(-1)
	life := time.Since(s.started)
	lvl := zap.InfoLevel
	if end.Reason == ReasonHandlerError || end.Reason == ReasonHandlerPanic || end.Reason == ReasonSlow {
		lvl = zap.WarnLevel
	}
	srv.log.Log(lvl, "session ended", zap.Uint64("session", s.ID()), zap.Stringer("addr", s.addr),
		zap.Stringer("reason", end.Reason), zap.Uint32("data", end.Data), zap.Duration("lifetime", life), zap.Error(end.Err))
	if srv.obs != nil {
		srv.obs.SessionEnded(s, end, life)
	}
}

// endReason is the reason this side recorded, or Closed.
func (s *Session) endReason() Reason {
	if r := Reason(s.local.Load()); r != 0 {
		return r
	}
	return ReasonClosed
}

func (srv *Server) serveSession(s *Session) {
	var err error
	panicked := false
	func() {
		defer func() {
			if r := recover(); r != nil {
				panicked = true
				if e, ok := r.(error); ok {
					err = fmt.Errorf("panic: %w", e)
				} else {
					err = fmt.Errorf("panic: %v", r)
				}
				srv.log.Error("handler panicked", zap.Uint64("session", s.ID()), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			}
		}()
		err = srv.handler.ServeSession(s.ctx, s)
	}()
	s.returned.Store(true)
	defer srv.unread(s)
	if s.ctx.Err() != nil || (!panicked && errors.Is(err, ErrEnded)) {
		return // ended, or ending: an error that says so is not a failure
	}
	if err == nil {
		s.Close()
		return
	}
	if panicked {
		srv.stats.handlerPanics.Add(1)
	} else {
		srv.stats.handlerErrors.Add(1)
		srv.log.Warn("handler failed", zap.Uint64("session", s.ID()), zap.Error(err))
	}
	if srv.obs != nil {
		srv.obs.HandlerFailed(s, err, panicked) // before the end it causes
	}
	if panicked {
		s.fail(ReasonHandlerPanic, err)
	} else {
		s.fail(ReasonHandlerError, err)
	}
}

// unread counts the messages a returned handler left in its inbox as
// dropped; later ones are dropped by deliver.
func (srv *Server) unread(s *Session) {
	for {
		select {
		case m, ok := <-s.inbox:
			if !ok {
				return
			}
			srv.stats.dropped.Add(1)
			if srv.obs != nil {
				srv.obs.MessageDropped(s, m)
			}
		default:
			return
		}
	}
}

package session

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/enetkit/enetkit/netloop"
)

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

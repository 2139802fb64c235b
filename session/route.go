package session

import (
	"context"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"go.uber.org/zap"
)

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

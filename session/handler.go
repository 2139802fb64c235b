package session

import (
	"context"
	"time"
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

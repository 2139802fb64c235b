package dispatch

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Logging logs every message at debug level: session, type, channel, size,
// duration and error.
func Logging(log *zap.Logger) Middleware {
	log = log.Named("dispatch")
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) error {
			start := time.Now()
			err := next.ServeMessage(ctx, m)
			if ce := log.Check(zap.DebugLevel, "message"); ce != nil {
				ce.Write(zap.Uint64("session", m.Session.ID()), zap.Uint32("type", m.Type),
					zap.Uint8("channel", m.Channel), zap.Int("bytes", len(m.Payload)),
					zap.Duration("took", time.Since(start)), zap.Error(err))
			}
			return err
		})
	}
}

// Recover turns a handler's panic into an error, logged with its stack,
// which ends only that session (the session server would recover it too,
// but without the message type).
func Recover(log *zap.Logger) Middleware {
	log = log.Named("dispatch")
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) (err error) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("handler panicked", zap.Uint64("session", m.Session.ID()), zap.Uint32("type", m.Type),
						zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
					err = fmt.Errorf("dispatch: handler for type %d panicked: %v", m.Type, r)
				}
			}()
			return next.ServeMessage(ctx, m)
		})
	}
}

// limiterKey keys each session's limiter among its values.
type limiterKey struct{ _ byte } // not zero-size: each new one is distinct

// RateLimit allows each session r messages per second with bursts of
// burst (a token bucket per session, golang.org/x/time/rate). A message
// over the limit is a bad message (ErrRateLimited): the Mux's Policy drops
// it or disconnects the session.
func RateLimit(r rate.Limit, burst int) Middleware {
	key := new(limiterKey)
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) error {
			v, ok := m.Session.Get(key)
			if !ok {
				v = rate.NewLimiter(r, burst)
				m.Session.Set(key, v)
			}
			if !v.(*rate.Limiter).Allow() {
				return fmt.Errorf("%w: %v/s, burst %d", ErrRateLimited, float64(r), burst)
			}
			return next.ServeMessage(ctx, m)
		})
	}
}

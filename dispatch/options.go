package dispatch

import (
	"errors"

	"go.uber.org/zap"
)

// Option configures a Mux.
type Option func(*Mux)

// ErrOption: NewMux was given an option out of range.
var ErrOption = errors.New("dispatch: option out of range")

// WithMaxSize sets the largest message accepted, in bytes: 1 to
// netloop.MaxMessageSize (default 64 KiB).
func WithMaxSize(n int) Option { return func(m *Mux) { m.maxSize = n } }

// WithRejectPolicy sets the bad-message policy (default RejectDrop).
func WithRejectPolicy(p RejectPolicy) Option { return func(m *Mux) { m.policy = p } }

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(m *Mux) { m.log = l } }

// WithObserver sets an observer of messages.
func WithObserver(o Observer) Option { return func(m *Mux) { m.obs = o } }

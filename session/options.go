package session

import "go.uber.org/zap"

// SlowPolicy is what the server does with a message for a session whose
// inbox is full. Whatever it does, it does not wait for the slow handler:
// one slow handler must not stall the host or other sessions. A drop is
// immediate; so is a disconnect under Run, which routes on the host's loop
// goroutine and disconnects there. Under Serve a disconnect is a command
// queued to the host, which waits only while the host's own command queue
// is full (netloop's WithCommandBuffer). Every drop is counted (Stats) and
// reported to the Observer, and the first per session is logged.
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

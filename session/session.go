package session

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// Message is one message received by a session.
type Message struct {
	Channel uint8
	Flag    netloop.Flag
	Data    []byte // owned by the receiver
}

// Reason says why a session ended.
type Reason uint8

const (
	// ReasonRemote: the peer disconnected; EndError.Data is the data it sent.
	ReasonRemote Reason = iota + 1
	// ReasonTimeout: the peer stopped answering.
	ReasonTimeout
	// ReasonClosed: this side called Close or CloseWith, or the handler returned nil.
	ReasonClosed
	// ReasonKicked: this side called Kick.
	ReasonKicked
	// ReasonShutdown: the server shut down.
	ReasonShutdown
	// ReasonSlow: the session's inbox overflowed and the policy disconnected it.
	ReasonSlow
	// ReasonHandlerError: the handler returned an error (EndError.Err).
	ReasonHandlerError
	// ReasonHandlerPanic: the handler panicked (EndError.Err holds the panic value).
	ReasonHandlerPanic
)

var reasonNames = [...]string{"", "remote", "timeout", "closed", "kicked", "shutdown", "slow_consumer", "handler_error", "handler_panic"}

// String names the reason; metrics use it as a label value.
func (r Reason) String() string {
	if r > 0 && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// ErrEnded matches (with errors.Is) every *EndError. An EndError is also a
// netloop.ErrGone, so that one check covers a send to a session that has
// ended and one to a peer that has gone.
var ErrEnded = errors.New("session: ended")

// EndError is how a session ended: the cause of its Context and what
// Receive returns once the session's messages are exhausted.
type EndError struct {
	Reason Reason
	Data   uint32 // Remote: the peer's disconnect data; Closed: the data sent
	Err    error  // ReasonHandlerError, ReasonHandlerPanic: what the handler returned or panicked with
}

// Error describes the end.
func (e *EndError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("session: ended: %v: %v", e.Reason, e.Err)
	}
	return fmt.Sprintf("session: ended: %v (data %d)", e.Reason, e.Data)
}

// Is makes errors.Is(err, ErrEnded) and errors.Is(err, netloop.ErrGone) true.
func (e *EndError) Is(target error) bool { return target == ErrEnded || target == netloop.ErrGone }

// Unwrap returns the handler's error, if any.
func (e *EndError) Unwrap() error { return e.Err }

// Session is one connected peer. Its methods are safe for concurrent use.
type Session struct {
	srv     *Server
	peer    netloop.Peer
	addr    netip.AddrPort
	data    uint32
	started time.Time

	inbox      chan Message // router -> handler; closed after the last message
	inboxBytes atomic.Int64 // payload bytes in inbox
	ctx        context.Context
	cancel     context.CancelCauseFunc

	local    atomic.Uint32 // Reason this side asked for, 0 if none
	sentData atomic.Uint32 // the data this side disconnected with
	returned atomic.Bool   // the handler has returned
	dropping bool          // the router only: drop the rest of the messages
	end      *EndError     // the router writes before cancel; readers after ctx.Done

	handlerErr error // set by the session goroutine before it disconnects

	values sync.Map

	mu     sync.Mutex // guards groups and ended; taken before any Group's mu
	groups map[*Group]struct{}
	ended  bool
}

// ID identifies the session: it is its peer's ID (Peer().ID()), never
// reused while the process lives, however ENet reuses its peer slots.
func (s *Session) ID() uint64 { return s.peer.ID() }

// Peer returns the session's netloop peer handle.
func (s *Session) Peer() netloop.Peer { return s.peer }

// Addr returns the peer's address.
func (s *Session) Addr() netip.AddrPort { return s.addr }

// ConnectData returns the data the peer sent with its connect.
func (s *Session) ConnectData() uint32 { return s.data }

// Started returns when the session began.
func (s *Session) Started() time.Time { return s.started }

// Context is cancelled when the session ends: the peer disconnects or times
// out, it is closed or kicked, or the server shuts down. context.Cause of it
// is the *EndError.
func (s *Session) Context() context.Context { return s.ctx }

// Err returns nil while the session lives, then its *EndError.
func (s *Session) Err() error {
	if s.ctx.Err() == nil {
		return nil
	}
	return s.end
}

// Receive returns the session's next message, in the order they arrived.
// After the last message of an ended session it returns the *EndError
// (errors.Is(err, ErrEnded)); messages received before the end are always
// returned first. It returns ctx.Err() if ctx is done first.
func (s *Session) Receive(ctx context.Context) (Message, error) {
	select {
	case m, ok := <-s.inbox:
		return s.received(m, ok)
	default:
	}
	select {
	case m, ok := <-s.inbox:
		return s.received(m, ok)
	case <-ctx.Done():
		// The inbox closes before the session's context is cancelled: if
		// this ctx is the session's, drain what is left first.
		select {
		case m, ok := <-s.inbox:
			return s.received(m, ok)
		default:
		}
		return Message{}, ctx.Err()
	}
}

// TryReceive returns the next message if one is waiting (lua-enet's
// peer:receive). ok is false if none is.
func (s *Session) TryReceive() (m Message, ok bool) {
	select {
	case m, ok = <-s.inbox:
		s.inboxBytes.Add(-int64(len(m.Data)))
		return m, ok
	default:
		return Message{}, false
	}
}

func (s *Session) received(m Message, ok bool) (Message, error) {
	s.inboxBytes.Add(-int64(len(m.Data)))
	if !ok {
		// The server closes the inbox, then cancels the context at once:
		// wait for it, so that Err and Context agree with this answer.
		<-s.ctx.Done()
		return Message{}, s.end
	}
	return m, nil
}

// Send queues data for the peer; see netloop.Host.Send. It retains
// nothing: the caller may reuse data once it returns. If the session has ended or is ending, the error
// matches ErrEnded (and the netloop error: ErrStalePeer, ErrNotConnected or
// ErrClosed).
func (s *Session) Send(ctx context.Context, ch uint8, data []byte, flag netloop.Flag) error {
	err := s.peer.Host().Send(ctx, s.peer, ch, data, flag)
	if err != nil && s.gone(err) == nil {
		return fmt.Errorf("%w: %w", ErrEnded, err)
	}
	return err
}

// Server returns the server the session belongs to.
func (s *Session) Server() *Server { return s.srv }

// Close disconnects the peer gracefully: everything queued is delivered first.
func (s *Session) Close() error { return s.CloseWith(0) }

// CloseWith is Close with disconnect data for the peer.
func (s *Session) CloseWith(data uint32) error { return s.closeAs(ReasonClosed, data) }

// Kick disconnects the peer at once; queued messages are dropped.
func (s *Session) Kick() error {
	s.local.CompareAndSwap(0, uint32(ReasonKicked))
	err := s.peer.Host().DisconnectNow(context.Background(), s.peer, 0)
	return s.gone(err)
}

// fail records the handler's failure and disconnects gracefully.
func (s *Session) fail(r Reason, err error) {
	s.handlerErr = err
	s.local.Store(uint32(r))
	s.closeAs(r, 0)
}

func (s *Session) closeAs(r Reason, data uint32) error { return s.closeIn(nil, r, data) }

// closeIn is closeAs through in, the loop's Inline, when the caller runs on
// the loop goroutine (in != nil), where a Host call could wait for the loop.
func (s *Session) closeIn(in *netloop.Inline, r Reason, data uint32) error {
	if s.local.CompareAndSwap(0, uint32(r)) {
		s.sentData.Store(data)
	}
	if in != nil {
		return s.gone(in.DisconnectLater(s.peer, data))
	}
	return s.gone(s.peer.Host().DisconnectLater(context.Background(), s.peer, data))
}

// gone turns "the peer is already gone" into nil: ending twice is fine.
func (s *Session) gone(err error) error {
	if errors.Is(err, netloop.ErrGone) {
		return nil
	}
	return err
}

// Info returns the connection's state, RTT, loss and counters.
func (s *Session) Info(ctx context.Context) (netloop.PeerInfo, error) {
	return s.peer.Host().PeerInfo(ctx, s.peer)
}

// Set stores a value under key, like context values but mutable.
func (s *Session) Set(key, value any) { s.values.Store(key, value) }

// Get returns the value stored under key.
func (s *Session) Get(key any) (any, bool) { return s.values.Load(key) }

// Delete removes the value stored under key.
func (s *Session) Delete(key any) { s.values.Delete(key) }

// String formats the session as "session/<id>".
func (s *Session) String() string { return fmt.Sprintf("session/%d", s.ID()) }

// leaveAll removes the session from its groups, once, at its end.
func (s *Session) leaveAll() {
	s.mu.Lock()
	s.ended = true
	groups := s.groups
	s.groups = nil
	s.mu.Unlock()
	for g := range groups {
		g.remove(s)
	}
}

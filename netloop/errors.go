package netloop

import "errors"

// Errors returned by Host. Check them with errors.Is.
var (
	// ErrGone is what ErrClosed, ErrStalePeer and ErrNotConnected have in
	// common: the connection a call addresses is over, or about to be, so
	// there is no one to send to. errors.Is(err, ErrGone) holds for each of
	// them (and for session.ErrEnded), which is the one check a sender needs
	// to tell "the peer has left" from a bad call.
	ErrGone = errors.New("netloop: peer gone")
	// ErrClosed: the host has stopped, or is stopping, and takes no more
	// work. It is an ErrGone.
	ErrClosed error = &goneError{"netloop: host closed"}
	// ErrStalePeer: the peer handle's connection has ended; its slot may
	// already serve another connection, which the handle never addresses.
	// It is an ErrGone.
	ErrStalePeer error = &goneError{"netloop: stale peer"}
	// ErrForeignPeer: the peer handle belongs to another host, or is the zero Peer.
	ErrForeignPeer = errors.New("netloop: peer of another host")
	// ErrNotConnected: the peer exists but is not connected: an outgoing
	// connection still in progress, or one this side is disconnecting.
	// It is an ErrGone.
	ErrNotConnected error = &goneError{"netloop: peer not connected"}
	// ErrChannel: the channel is not below the peer's (or host's) channel count.
	ErrChannel = errors.New("netloop: channel out of range")
	// ErrFlag: not one of Reliable, Unsequenced, Unreliable.
	ErrFlag = errors.New("netloop: unknown packet flag")
	// ErrEmpty: a message has no data.
	ErrEmpty = errors.New("netloop: empty message")
	// ErrTooLarge: a message is larger than ENet's maximum packet size (MaxMessageSize).
	ErrTooLarge = errors.New("netloop: message too large")
	// ErrNoSlot: every peer slot of the host is in use.
	ErrNoSlot = errors.New("netloop: no free peer slot")
	// ErrAddress: an address string is malformed, unresolvable or not IPv4.
	ErrAddress = errors.New("netloop: bad address")
	// ErrRange: a numeric argument is outside what ENet accepts.
	ErrRange = errors.New("netloop: argument out of range")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("netloop: host already running")
	// ErrInlineDone: an Inline was used after the call it was handed to
	// returned.
	ErrInlineDone = errors.New("netloop: Inline used after its handler returned")
	// ErrLoopGoroutine: a Host method that waits for the loop was called
	// from the loop's own goroutine, by an inline handler, where it would
	// wait forever. Use the Inline's methods instead.
	ErrLoopGoroutine = errors.New("netloop: blocking Host call from the loop goroutine (inline handler)")
)

// goneError is an error that is an ErrGone.
type goneError struct{ msg string }

func (e *goneError) Error() string { return e.msg }

// Is reports whether target is ErrGone.
func (e *goneError) Is(target error) bool { return target == ErrGone }

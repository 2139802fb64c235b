package dispatch

import (
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// RejectPolicy is what a Mux does with a bad message: an unknown type, a
// malformed prefix, a payload its codec cannot decode, a message over the
// size limit, or one over the rate limit. Every bad message is counted
// (Stats) and reported to the Observer.
type RejectPolicy uint8

const (
	// RejectDrop drops the message and goes on. The default.
	RejectDrop RejectPolicy = iota
	// RejectDisconnect ends the session, with an error wrapping the reason
	// (session.ReasonHandlerError).
	RejectDisconnect
)

// RejectReason says why a Mux rejected a message: the kind of bad message
// it is. Each reason has its sentinel error (Err) and its count in Stats.
type RejectReason uint8

const (
	// RejectUnknownType: no handler for the message's type (ErrUnknownType).
	RejectUnknownType RejectReason = iota + 1
	// RejectMalformed: the type prefix is malformed (ErrMalformed, ErrTypeRange).
	RejectMalformed
	// RejectUndecodable: the codec could not decode the payload (ErrDecode).
	RejectUndecodable
	// RejectTooLarge: the message is over the Mux's size limit (ErrTooLarge).
	RejectTooLarge
	// RejectRateLimited: the session sends faster than RateLimit allows
	// (ErrRateLimited).
	RejectRateLimited
)

// RejectReasons lists every RejectReason, in order.
var RejectReasons = [...]RejectReason{RejectUnknownType, RejectMalformed, RejectUndecodable, RejectTooLarge, RejectRateLimited}

var rejectNames = [...]string{"", "unknown_type", "malformed", "undecodable", "too_large", "rate_limited"}

// String names the reason; metrics use it as a label value.
func (r RejectReason) String() string {
	if int(r) < len(rejectNames) && r != 0 {
		return rejectNames[r]
	}
	return fmt.Sprintf("RejectReason(%d)", uint8(r))
}

// Err returns the reason's sentinel error (for RejectMalformed,
// ErrMalformed; a type prefix out of range is an ErrTypeRange).
func (r RejectReason) Err() error {
	switch r {
	case RejectUnknownType:
		return ErrUnknownType
	case RejectUndecodable:
		return ErrDecode
	case RejectTooLarge:
		return ErrTooLarge
	case RejectRateLimited:
		return ErrRateLimited
	}
	return ErrMalformed
}

// rejectReasonOf classifies the error of a bad message.
func rejectReasonOf(err error) RejectReason {
	for _, r := range RejectReasons {
		if errors.Is(err, r.Err()) {
			return r
		}
	}
	return RejectMalformed
}

// Errors for bad messages, besides ErrMalformed.
var (
	// ErrUnknownType: no handler for the message's type.
	ErrUnknownType = errors.New("dispatch: unknown message type")
	// ErrDecode: the payload could not be decoded.
	ErrDecode = errors.New("dispatch: undecodable payload")
	// ErrTooLarge: the message is over the Mux's size limit.
	ErrTooLarge = errors.New("dispatch: message too large")
	// ErrRateLimited: the session sends faster than RateLimit allows.
	ErrRateLimited = errors.New("dispatch: rate limit exceeded")
)

// reject applies the policy to a bad message.
func (m *Mux) reject(msg *Message, why error) error {
	c := &m.stats
	reason := rejectReasonOf(why)
	switch reason {
	case RejectUnknownType:
		c.unknown.Add(1)
	case RejectUndecodable:
		c.undecodable.Add(1)
	case RejectTooLarge:
		c.tooLarge.Add(1)
	case RejectRateLimited:
		c.rateLimited.Add(1)
	default:
		c.malformed.Add(1)
	}
	if m.obs != nil {
		m.obs.MessageRejected(msg.Type, reason, why)
	}
	m.log.Debug("bad message", zap.Uint64("session", msg.Session.ID()), zap.Uint32("type", msg.Type), zap.Error(why))
	if m.policy == RejectDisconnect {
		return why
	}
	return nil
}

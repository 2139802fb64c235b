package load

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Broadcast protocol, shared by every server that supports Broadcast mode.
//
// A client sends one reliable packet on BroadcastChannel whose whole content
// is the ASCII text
//
//	bcast <rate_hz> <size> <duration_ms>
//
// (single spaces, unsigned decimal integers, nothing else; see
// AppendBroadcastRequest). The server then sends, to every connected peer,
// Rate packets per second of Size bytes for Duration, reliable, on
// BroadcastChannel. Bytes 0..8 of each packet hold the server's
// time.Now().UnixNano() (wall clock, little endian); the rest is padding.
// A new request replaces the current one. Servers echo anything that is
// not a request, and ignore malformed requests.
const (
	// BroadcastChannel is the channel of the request and of the broadcast packets.
	BroadcastChannel = 0
	// BroadcastStampSize is the size of the wall-clock stamp that starts every
	// broadcast packet, and so the smallest valid BroadcastRequest.Size.
	BroadcastStampSize = 8
	// MaxBroadcastRate is the largest valid BroadcastRequest.Rate, in Hz.
	MaxBroadcastRate = 1_000_000
	// MaxBroadcastSize is the largest valid BroadcastRequest.Size, in bytes.
	MaxBroadcastSize = 1 << 20
	// MaxBroadcastDuration is the longest valid BroadcastRequest.Duration.
	MaxBroadcastDuration = time.Hour
)

const broadcastPrefix = "bcast "

// ErrBadBroadcastRequest is returned (wrapped) by ParseBroadcastRequest.
var ErrBadBroadcastRequest = errors.New("load: bad broadcast request")

// BroadcastRequest asks a server to broadcast Size-byte packets to all its
// connected peers, Rate times per second, for Duration.
type BroadcastRequest struct {
	Rate     int           // packets per second, 1..MaxBroadcastRate
	Size     int           // bytes per packet, BroadcastStampSize..MaxBroadcastSize
	Duration time.Duration // whole milliseconds, 1ms..MaxBroadcastDuration
}

// Validate reports whether r is within the limits above.
func (r BroadcastRequest) Validate() error {
	switch {
	case r.Rate < 1 || r.Rate > MaxBroadcastRate:
		return fmt.Errorf("%w: rate %d Hz out of range 1..%d", ErrBadBroadcastRequest, r.Rate, MaxBroadcastRate)
	case r.Size < BroadcastStampSize || r.Size > MaxBroadcastSize:
		return fmt.Errorf("%w: size %d out of range %d..%d", ErrBadBroadcastRequest, r.Size, BroadcastStampSize, MaxBroadcastSize)
	case r.Duration < time.Millisecond || r.Duration > MaxBroadcastDuration:
		return fmt.Errorf("%w: duration %v out of range 1ms..%v", ErrBadBroadcastRequest, r.Duration, MaxBroadcastDuration)
	case r.Duration%time.Millisecond != 0:
		return fmt.Errorf("%w: duration %v is not whole milliseconds", ErrBadBroadcastRequest, r.Duration)
	}
	return nil
}

// AppendBroadcastRequest appends the wire form of r to dst. It does not
// validate r.
func AppendBroadcastRequest(dst []byte, r BroadcastRequest) []byte {
	dst = append(dst, broadcastPrefix...)
	dst = strconv.AppendInt(dst, int64(r.Rate), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(r.Size), 10)
	dst = append(dst, ' ')
	return strconv.AppendInt(dst, r.Duration.Milliseconds(), 10)
}

// IsBroadcastRequest reports whether b starts like a request. It is cheap
// and does not allocate, so servers can call it on every packet received on
// BroadcastChannel before ParseBroadcastRequest.
func IsBroadcastRequest(b []byte) bool {
	return len(b) >= len(broadcastPrefix) && string(b[:len(broadcastPrefix)]) == broadcastPrefix
}

// ParseBroadcastRequest parses and validates the wire form of a request.
// Errors wrap ErrBadBroadcastRequest.
func ParseBroadcastRequest(b []byte) (BroadcastRequest, error) {
	if !IsBroadcastRequest(b) {
		return BroadcastRequest{}, fmt.Errorf("%w: missing %q prefix", ErrBadBroadcastRequest, broadcastPrefix)
	}
	var n [3]int64
	rest := b[len(broadcastPrefix):]
	for i := range n {
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		// 9 digits fit an int32 and exceed every limit.
		if j == 0 || j > 9 {
			return BroadcastRequest{}, fmt.Errorf("%w: field %d is not a decimal number: %q", ErrBadBroadcastRequest, i+1, b)
		}
		n[i], _ = strconv.ParseInt(string(rest[:j]), 10, 64)
		rest = rest[j:]
		if i < len(n)-1 {
			if len(rest) == 0 || rest[0] != ' ' {
				return BroadcastRequest{}, fmt.Errorf("%w: want 3 fields: %q", ErrBadBroadcastRequest, b)
			}
			rest = rest[1:]
		}
	}
	if len(rest) != 0 {
		return BroadcastRequest{}, fmt.Errorf("%w: trailing bytes: %q", ErrBadBroadcastRequest, b)
	}
	r := BroadcastRequest{Rate: int(n[0]), Size: int(n[1]), Duration: time.Duration(n[2]) * time.Millisecond}
	return r, r.Validate()
}

package dispatch

import (
	"encoding/binary"
	"errors"
)

// The wire format of a routed message is its type as an unsigned varint
// (encoding/binary's Uvarint: 1 byte for types below 128, 2 below 16384),
// then the payload, which the type's codec encodes:
//
//	+----------------+-------------------------+
//	| type (uvarint) | payload (rest of bytes) |
//	+----------------+-------------------------+
//
// ENet frames messages already, so there is no length field. Messages on a
// channel routed with HandleChannel carry no type prefix at all.

// MaxType is the largest message type; the varint takes at most 5 bytes.
const MaxType = 1<<32 - 1

// Errors of the wire format.
var (
	// ErrMalformed: the message has no valid type prefix.
	ErrMalformed = errors.New("dispatch: malformed message")
	// ErrTypeRange: a type above MaxType.
	ErrTypeRange = errors.New("dispatch: message type out of range")
)

// AppendMessage appends the wire form of a message of type typ with the
// given payload to dst.
func AppendMessage(dst []byte, typ uint32, payload []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(typ))
	return append(dst, payload...)
}

// ParseMessage splits a message into its type and payload. The payload
// aliases b.
func ParseMessage(b []byte) (typ uint32, payload []byte, err error) {
	v, n := binary.Uvarint(b)
	switch {
	case n <= 0:
		return 0, nil, ErrMalformed
	case v > MaxType:
		return 0, nil, ErrTypeRange
	case n > 1 && b[n-1] == 0:
		return 0, nil, ErrMalformed // not the shortest form: one type, one encoding
	}
	return uint32(v), b[n:], nil
}

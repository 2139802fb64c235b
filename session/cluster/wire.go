package cluster

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/enetkit/enetkit/netloop"
)

// MaxName is the longest user id, group name, service name or node id, in bytes.
const MaxName = 128

// checkName validates a user id, group, service or node name: 1 to MaxName
// bytes of UTF-8 without control characters.
func checkName(what, s string) error {
	if s == "" || len(s) > MaxName || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q: want 1 to %d bytes of UTF-8", ErrBadName, what, s, MaxName)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s %q: control character %U", ErrBadName, what, s, r)
		}
	}
	return nil
}

// token turns a name into one NATS subject token and key-value key part:
// letters, digits, '-' and '_' stay, every other byte becomes =XX. The
// result has no '.', '*', '>' or space, and token is one-to-one.
func token(s string) string {
	keep := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !keep(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keep(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// untoken reverses token.
func untoken(t string) (string, error) {
	if !strings.Contains(t, "=") {
		return t, nil
	}
	b := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		if t[i] != '=' {
			b = append(b, t[i])
			continue
		}
		if i+2 >= len(t) {
			return "", fmt.Errorf("%w: token %q", ErrMalformed, t)
		}
		hi, ok1 := unhex(t[i+1])
		lo, ok2 := unhex(t[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: token %q", ErrMalformed, t)
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// A packet is what a node sends its local sessions for a push or a group
// broadcast: an ENet channel, a flag and the data. On the wire (the body of
// a NATS message) it is
//
//	channel (1 byte) | flag (1 byte) | user count (uvarint) | users (uvarint length + bytes each) | data
//
// Group broadcasts carry no users (count 0).
type packet struct {
	ch    uint8
	flag  netloop.Flag
	users []string
	data  []byte
}

// appendPacket appends p's wire form to dst.
func appendPacket(dst []byte, p packet) []byte {
	dst = append(dst, p.ch, byte(p.flag))
	dst = binary.AppendUvarint(dst, uint64(len(p.users)))
	for _, u := range p.users {
		dst = binary.AppendUvarint(dst, uint64(len(u)))
		dst = append(dst, u...)
	}
	return append(dst, p.data...)
}

// parsePacket parses a packet; data aliases b.
func parsePacket(b []byte) (packet, error) {
	var p packet
	if len(b) < 3 {
		return p, fmt.Errorf("%w: packet of %d bytes", ErrMalformed, len(b))
	}
	p.ch, p.flag = b[0], netloop.Flag(b[1])
	if p.flag > netloop.Unreliable {
		return p, fmt.Errorf("%w: flag %d", ErrMalformed, b[1])
	}
	b = b[2:]
	n, k := binary.Uvarint(b)
	// Each user takes at least two bytes: a count beyond that is a lie.
	if k <= 0 || n > uint64(len(b)-k)/2 {
		return p, fmt.Errorf("%w: user count", ErrMalformed)
	}
	b = b[k:]
	p.users = make([]string, 0, n)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l == 0 || l > MaxName || l > uint64(len(b)-k) {
			return p, fmt.Errorf("%w: user length", ErrMalformed)
		}
		p.users = append(p.users, string(b[k:k+int(l)]))
		b = b[k+int(l):]
	}
	if len(b) == 0 {
		return p, fmt.Errorf("%w: no data", ErrMalformed)
	}
	p.data = b
	return p, nil
}

package dispatch_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/enetkit/enetkit/dispatch"
)

func TestWireRoundTrip(t *testing.T) {
	tests := []struct {
		typ  uint32
		size int // bytes of the varint
	}{
		{0, 1}, {1, 1}, {127, 1}, {128, 2}, {16383, 2}, {16384, 3}, {1<<21 - 1, 3}, {1 << 21, 4}, {1<<28 - 1, 4}, {1 << 28, 5}, {dispatch.MaxType, 5},
	}
	for _, tt := range tests {
		for _, payload := range [][]byte{nil, {0}, []byte("payload"), {0x80, 0xff}} {
			prefix := []byte("prefix")
			b := dispatch.AppendMessage(bytes.Clone(prefix), tt.typ, payload)
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("AppendMessage overwrote dst: %x", b)
			}
			b = b[len(prefix):]
			if len(b) != tt.size+len(payload) {
				t.Fatalf("type %d: %d bytes, want %d-byte prefix and %d payload bytes", tt.typ, len(b), tt.size, len(payload))
			}
			typ, got, err := dispatch.ParseMessage(b)
			if err != nil || typ != tt.typ || !bytes.Equal(got, payload) {
				t.Fatalf("ParseMessage(%x) = %d, %x, %v; want %d, %x", b, typ, got, err, tt.typ, payload)
			}
			if len(got) > 0 && &got[0] != &b[tt.size] {
				t.Fatalf("payload does not alias the message")
			}
		}
	}
}

func TestWireMalformed(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, dispatch.ErrMalformed},
		{"empty non-nil", []byte{}, dispatch.ErrMalformed},
		{"lone continuation", []byte{0x80}, dispatch.ErrMalformed},
		{"unterminated", []byte{0xff, 0xff, 0xff}, dispatch.ErrMalformed},
		{"ten 0xff", bytes.Repeat([]byte{0xff}, 10), dispatch.ErrMalformed},
		{"eleven 0xff", bytes.Repeat([]byte{0xff}, 11), dispatch.ErrMalformed},
		{"uint64 overflow", append(bytes.Repeat([]byte{0xff}, 9), 0x02), dispatch.ErrMalformed},
		{"MaxType+1", binary.AppendUvarint(nil, dispatch.MaxType+1), dispatch.ErrTypeRange},
		{"MaxType+1 with payload", append(binary.AppendUvarint(nil, dispatch.MaxType+1), "payload"...), dispatch.ErrTypeRange},
		{"max uint64", binary.AppendUvarint(nil, 1<<64-1), dispatch.ErrTypeRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, payload, err := dispatch.ParseMessage(tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseMessage(%x) error %v, want %v", tt.b, err, tt.want)
			}
			if typ != 0 || payload != nil {
				t.Fatalf("ParseMessage(%x) = %d, %x with an error", tt.b, typ, payload)
			}
		})
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, b := range [][]byte{
		nil, {0}, {1, 'x'}, {0x7f}, {0x80}, {0x80, 0x01}, {0x80, 0x00}, // non-canonical 0
		{0xff, 0x7f}, {0x80, 0x80, 0x01}, {0xff, 0xff, 0xff, 0xff, 0x0f}, {0xff, 0xff, 0xff, 0xff, 0x10},
		bytes.Repeat([]byte{0xff}, 10), append(bytes.Repeat([]byte{0xff}, 9), 0x01),
		dispatch.AppendMessage(nil, 16384, []byte("payload")),
	} {
		f.Add(b, uint32(len(b)))
	}
	f.Fuzz(func(t *testing.T, b []byte, typ uint32) {
		// Whatever the input, ParseMessage fails cleanly or splits it.
		got, payload, err := dispatch.ParseMessage(b)
		if err != nil {
			if !errors.Is(err, dispatch.ErrMalformed) && !errors.Is(err, dispatch.ErrTypeRange) {
				t.Fatalf("ParseMessage(%x): unexpected error %v", b, err)
			}
		} else {
			n := len(b) - len(payload)
			// (n may exceed MaxVarintLen32: binary.Uvarint accepts
			// overlong encodings such as 0x80 0x80 0x00 for type 0.)
			if n < 1 || n > binary.MaxVarintLen64 || !bytes.Equal(b[n:], payload) {
				t.Fatalf("ParseMessage(%x) = %d, %x: not a prefix and the rest", b, got, payload)
			}
			// Re-encoding parses back to the same; it is the input itself
			// unless the input's varint was not in shortest form.
			re := dispatch.AppendMessage(nil, got, payload)
			typ2, payload2, err := dispatch.ParseMessage(re)
			if err != nil || typ2 != got || !bytes.Equal(payload2, payload) {
				t.Fatalf("re-encoded %x parses as %d, %x, %v; want %d, %x", re, typ2, payload2, err, got, payload)
			}
			if n == len(re)-len(payload) && !bytes.Equal(re, b) {
				t.Fatalf("re-encoding of %x is %x", b, re)
			}
		}
		// Any type and payload survive a round trip.
		m := dispatch.AppendMessage(nil, typ, b)
		typ2, payload2, err := dispatch.ParseMessage(m)
		if err != nil || typ2 != typ || !bytes.Equal(payload2, b) {
			t.Fatalf("round trip of %d, %x: %d, %x, %v", typ, b, typ2, payload2, err)
		}
	})
}

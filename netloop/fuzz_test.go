package netloop_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

// parseAddrSeeds are the documented address forms (lua-enet's, and the
// "*" forms for binding) and many malformed ones.
var parseAddrSeeds = []string{
	// Documented forms.
	"127.0.0.1:8888", "localhost:2232", "*:6767", "127.0.0.1:*", "*:*", "localhost:*",
	"0.0.0.0:0", "10.1.2.3:65535", "255.255.255.255:9", "127.0.0.1:00080",
	// Missing or empty parts.
	"", ":", "::", ":80", "*", "*:", "127.0.0.1", "127.0.0.1:", "localhost", "nohost",
	// Bad ports.
	"127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:+80",
	"127.0.0.1:-0", "127.0.0.1:0x50", "127.0.0.1:80x", "127.0.0.1: 80", "127.0.0.1:80 ",
	"127.0.0.1:80\n", "127.0.0.1:８０", "127.0.0.1:18446744073709551616", "127.0.0.1:**",
	"127.0.0.1:80:90",
	// Bad hosts.
	"**:80", "*.*:80", " 127.0.0.1:80", "127.0.0.1 :80", "01.2.3.4:80", "1.2.3:80",
	"1.2.3.4.5:80", "256.1.1.1:80", "4294967296:80", "0x7f.0.0.1:80", "1.2.3.4%eth0:80",
	"\x00:80", "a\x00b:80", "ｌｏｃａｌｈｏｓｔ:80", "bad host name.invalid:80",
	strings.Repeat("a", 253) + ":80", strings.Repeat("a", 254) + ":80",
	strings.Repeat("a.", 200) + ":80",
	// IPv6, which ENet 1.3 cannot speak.
	"[::1]:80", "::1:80", "[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1:80", "[127.0.0.1]:80",
	"[::1]:*", "[]:80", "[:80",
}

// FuzzParseAddr checks ParseAddr on arbitrary strings, for binding and for
// connecting: it never panics; an error wraps ErrAddress and comes with the
// zero AddrPort; a result is an IPv4 address (with a port, when connecting)
// that parses back to itself from its own string; and whatever can be
// connected to can be bound to.
//
// Host names are resolved with a context that is already cancelled, so the
// fuzzer sends no DNS queries: a name fails to resolve, quickly, and the
// checks are about parsing.
func FuzzParseAddr(f *testing.F) {
	for _, s := range parseAddrSeeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, bind bool) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		got, err := netloop.ParseAddr(ctx, s, bind)
		if err != nil {
			if !errors.Is(err, netloop.ErrAddress) {
				t.Fatalf("ParseAddr(%q, %v): error %v does not wrap ErrAddress", s, bind, err)
			}
			if got != (netip.AddrPort{}) {
				t.Fatalf("ParseAddr(%q, %v) = %v with error %v, want the zero AddrPort", s, bind, got, err)
			}
			return
		}
		if !got.Addr().Is4() {
			t.Fatalf("ParseAddr(%q, %v) = %v: not IPv4", s, bind, got)
		}
		if !bind && got.Port() == 0 {
			t.Fatalf("ParseAddr(%q, false) = %v: port 0 cannot be connected to", s, got)
		}
		again, err := netloop.ParseAddr(ctx, got.String(), bind)
		if err != nil || again != got {
			t.Fatalf("ParseAddr(%q, %v) = %v, but ParseAddr(%q) = %v, %v", s, bind, got, got.String(), again, err)
		}
		// A literal address that can be connected to can be bound to. (A
		// name is resolved each time, so it is left out.)
		if i := strings.LastIndexByte(s, ':'); !bind && i >= 0 {
			if _, lerr := netip.ParseAddr(s[:i]); lerr == nil {
				if b, err := netloop.ParseAddr(ctx, s, true); err != nil || b != got {
					t.Fatalf("ParseAddr(%q, false) = %v, but for binding %v, %v", s, got, b, err)
				}
			}
		}
	})
}

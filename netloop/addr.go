package netloop

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ParseAddr parses an address in lua-enet's forms, "<ip>:<port>",
// "<hostname>:<port>" or, when bind is true, "*:<port>" (any interface) and
// "<host>:*" (any port). Hostnames are resolved with the context's resolver
// to an IPv4 address: ENet 1.3 speaks IPv4 only. Errors wrap ErrAddress.
//
// Unlike lua-enet, which truncates bad ports to 0 and silently binds
// unresolvable names to 0.0.0.0, every malformed address is an error.
func ParseAddr(ctx context.Context, s string, bind bool) (netip.AddrPort, error) {
	bad := func(why string) (netip.AddrPort, error) {
		return netip.AddrPort{}, fmt.Errorf("%w %q: %s", ErrAddress, s, why)
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return bad("missing port")
	}
	host, port := s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") || strings.Contains(host, ":") {
		return bad("IPv6 is not supported by ENet 1.3")
	}
	if host == "" {
		return bad("missing host")
	}
	var p uint16
	switch {
	case port == "*" && bind:
	case port == "":
		return bad("missing port")
	default:
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return bad("port must be a number from 0 to 65535")
		}
		if n == 0 && !bind {
			return bad("port 0 cannot be connected to")
		}
		p = uint16(n)
	}
	if host == "*" {
		if !bind {
			return bad("'*' is only valid for binding")
		}
		return netip.AddrPortFrom(netip.IPv4Unspecified(), p), nil
	}
	if len(host) > 253 {
		return bad("host name too long")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.Is4() && !ip.Is4In6() {
			return bad("IPv6 is not supported by ENet 1.3")
		}
		return netip.AddrPortFrom(ip.Unmap(), p), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return bad("cannot resolve host name")
	}
	return netip.AddrPortFrom(ips[0].Unmap(), p), nil
}

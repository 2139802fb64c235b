package netloop_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// TestBadInput feeds every call bad arguments on a live connection, then
// checks that the host still works and that nothing bad reached the loop.
func TestBadInput(t *testing.T) {
	srv, cli, sp, cp := pair(t, 2)
	huge := make([]byte, netloop.MaxMessageSize+1)
	connect := func(addr string, channels int) func(c context.Context) error {
		return func(c context.Context) error {
			_, err := cli.Connect(c, addr, channels, 0)
			return err
		}
	}
	for _, tc := range []struct {
		name string
		call func(c context.Context) error
		want error
	}{
		{"Send channel 2 of 2", func(c context.Context) error { return cli.Send(c, cp, 2, []byte("x"), netloop.Reliable) }, netloop.ErrChannel},
		{"Send channel 255", func(c context.Context) error { return srv.Send(c, sp, 255, []byte("x"), netloop.Reliable) }, netloop.ErrChannel},
		{"Send Flag(3)", func(c context.Context) error { return cli.Send(c, cp, 0, []byte("x"), netloop.Flag(3)) }, netloop.ErrFlag},
		{"Send Flag(9)", func(c context.Context) error { return cli.Send(c, cp, 0, []byte("x"), netloop.Flag(9)) }, netloop.ErrFlag},
		{"Send empty", func(c context.Context) error { return cli.Send(c, cp, 0, []byte{}, netloop.Reliable) }, netloop.ErrEmpty},
		{"Send nil", func(c context.Context) error { return cli.Send(c, cp, 0, nil, netloop.Unreliable) }, netloop.ErrEmpty},
		{"Send too large", func(c context.Context) error { return cli.Send(c, cp, 0, huge, netloop.Reliable) }, netloop.ErrTooLarge},
		{"Broadcast channel 255", func(c context.Context) error { return srv.Broadcast(c, 255, []byte("x"), netloop.Reliable) }, netloop.ErrChannel},
		{"Broadcast Flag(9)", func(c context.Context) error { return srv.Broadcast(c, 0, []byte("x"), netloop.Flag(9)) }, netloop.ErrFlag},
		{"Broadcast empty", func(c context.Context) error { return srv.Broadcast(c, 0, nil, netloop.Reliable) }, netloop.ErrEmpty},
		{"Broadcast too large", func(c context.Context) error { return srv.Broadcast(c, 0, huge, netloop.Reliable) }, netloop.ErrTooLarge},
		{"ParseFlag bogus", func(context.Context) error { _, err := netloop.ParseFlag("bogus"); return err }, netloop.ErrFlag},
		{"ParseFlag empty", func(context.Context) error { _, err := netloop.ParseFlag(""); return err }, netloop.ErrFlag},
		{"ParseFlag Reliable", func(context.Context) error { _, err := netloop.ParseFlag("Reliable"); return err }, netloop.ErrFlag},
		{"Connect 0 channels", connect(loopback(srv), 0), netloop.ErrRange},
		{"Connect 256 channels", connect(loopback(srv), 256), netloop.ErrRange},
		{"Connect -1 channels", connect(loopback(srv), -1), netloop.ErrRange},
		{"Connect nohost", connect("nohost", 1), netloop.ErrAddress},
		{"Connect empty port", connect("127.0.0.1:", 1), netloop.ErrAddress},
		{"Connect port 99999", connect("127.0.0.1:99999", 1), netloop.ErrAddress},
		{"Connect port 0", connect("127.0.0.1:0", 1), netloop.ErrAddress},
		{"Connect any port", connect("127.0.0.1:*", 1), netloop.ErrAddress},
		{"Connect any host", connect("*:1234", 1), netloop.ErrAddress},
		{"Connect IPv6", connect("[::1]:80", 1), netloop.ErrAddress},
		{"Connect unresolvable", connect("bad host name.invalid:80", 1), netloop.ErrAddress},
		{"Connect empty", connect("", 1), netloop.ErrAddress},
		{"SetTimeout min above max", func(c context.Context) error {
			return cli.SetTimeout(c, cp, netloop.Timeout{Limit: 4, Minimum: 2 * time.Second, Maximum: time.Second})
		}, netloop.ErrRange},
		{"SetTimeout negative minimum", func(c context.Context) error {
			return cli.SetTimeout(c, cp, netloop.Timeout{Minimum: -time.Millisecond})
		}, netloop.ErrRange},
		{"SetTimeout negative maximum", func(c context.Context) error {
			return cli.SetTimeout(c, cp, netloop.Timeout{Maximum: -time.Millisecond})
		}, netloop.ErrRange},
		{"SetPingInterval negative", func(c context.Context) error { return cli.SetPingInterval(c, cp, -time.Second) }, netloop.ErrRange},
		{"SetPingInterval 2^32 ms", func(c context.Context) error {
			return cli.SetPingInterval(c, cp, (1<<32)*time.Millisecond)
		}, netloop.ErrRange},
		{"SetRTT negative", func(c context.Context) error { return cli.SetRTT(c, cp, -time.Second) }, netloop.ErrRange},
		{"SetLastRTT negative", func(c context.Context) error { return cli.SetLastRTT(c, cp, -time.Second) }, netloop.ErrRange},
		{"ConfigureThrottle negative interval", func(c context.Context) error {
			return cli.ConfigureThrottle(c, cp, netloop.Throttle{Interval: -time.Second, Acceleration: 2, Deceleration: 2})
		}, netloop.ErrRange},
		{"SetChannelLimit 300", func(c context.Context) error { return srv.SetChannelLimit(c, 300) }, netloop.ErrRange},
		{"SetChannelLimit -1", func(c context.Context) error { return srv.SetChannelLimit(c, -1) }, netloop.ErrRange},
		{"PeerAt -1", func(c context.Context) error { _, err := srv.PeerAt(c, -1); return err }, netloop.ErrRange},
		{"PeerAt PeerCount", func(c context.Context) error { _, err := srv.PeerAt(c, srv.PeerCount()); return err }, netloop.ErrRange},
	} {
		t.Run(tc.name, func(t *testing.T) { is(t, tc.call(ctx(t)), tc.want) })
	}

	// The host still works, and none of that reached ENet.
	roundTrip(t, cli, srv, cp, sp)
	for _, h := range []*netloop.Host{srv, cli} {
		s := stats(t, h)
		if s.SendsRejected != 0 || s.Broadcasts != 0 || s.SentByFlag != [3]uint64{1, 0, 0} {
			t.Errorf("stats after bad input: rejected %d broadcasts %d sent %v; want 0 0 [1 0 0]", s.SendsRejected, s.Broadcasts, s.SentByFlag)
		}
	}
	if peers, err := cli.Peers(ctx(t)); err != nil || len(peers) != 1 {
		t.Fatalf("client has %d connections (%v) after bad Connects, want 1", len(peers), err)
	}
}

func TestParseAddr(t *testing.T) {
	long := strings.Repeat("a", 254) + ":80"
	for _, tc := range []struct {
		in   string
		bind bool
		want string // "" for an error
	}{
		// lua-enet's examples, and its "*" forms for binding.
		{"127.0.0.1:8888", false, "127.0.0.1:8888"},
		{"localhost:2232", false, "127.0.0.1:2232"},
		{"*:6767", true, "0.0.0.0:6767"},
		{"127.0.0.1:*", true, "127.0.0.1:0"},
		{"*:*", true, "0.0.0.0:0"},
		{"localhost:*", true, "127.0.0.1:0"},
		{"127.0.0.1:0", true, "127.0.0.1:0"},
		{"10.1.2.3:65535", false, "10.1.2.3:65535"},
		{"127.0.0.1:00080", false, "127.0.0.1:80"},
		{"255.255.255.255:9", false, "255.255.255.255:9"},

		{"", false, ""},
		{"", true, ""},
		{"nohost", false, ""},
		{"127.0.0.1", true, ""},
		{"127.0.0.1:", false, ""},
		{":80", true, ""},
		{":", true, ""},
		{"127.0.0.1:99999", false, ""},
		{"127.0.0.1:65536", true, ""},
		{"127.0.0.1:-1", false, ""},
		{"127.0.0.1:+80", false, ""},
		{"127.0.0.1:80x", false, ""},
		{"127.0.0.1: 80", false, ""},
		{"127.0.0.1:0", false, ""},
		{"127.0.0.1:*", false, ""},
		{"*:1234", false, ""},
		{"*:*", false, ""},
		{"[::1]:80", false, ""},
		{"[::1]:80", true, ""},
		{"::1:80", false, ""},
		{"[::ffff:127.0.0.1]:80", false, ""},
		{"127.0.0.1:80:90", false, ""},
		{"bad host name.invalid:80", false, ""},
		{long, false, ""},
	} {
		got, err := netloop.ParseAddr(ctx(t), tc.in, tc.bind)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParseAddr(%q, %v) = %v, want an error", tc.in, tc.bind, got)
			} else {
				is(t, err, netloop.ErrAddress)
			}
			continue
		}
		if err != nil || got != netip.MustParseAddrPort(tc.want) {
			t.Errorf("ParseAddr(%q, %v) = %v, %v; want %s", tc.in, tc.bind, got, err, tc.want)
		}
	}
}

// TestClosedHost calls everything on a host that has stopped: ErrClosed.
func TestClosedHost(t *testing.T) {
	srv, stop := launch(t, "127.0.0.1:0")
	cli := start(t, "")
	cp := dial(t, cli, srv, 1, 0)
	sp := expect(t, srv, netloop.EventConnect).Peer
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
	disconnected(t, cli, cp, netloop.ReasonRemote)
	// Stats reads the final counters of a host that ran; one that never ran
	// has none.
	if st, err := srv.Stats(ctx(t)); err != nil || st.Connects != 1 || st.Disconnects != 1 {
		t.Errorf("Stats after the host stopped: %+v, %v; want its final counters", st, err)
	}
	never := mustClose(t)
	if _, err := never.Stats(ctx(t)); !errors.Is(err, netloop.ErrClosed) {
		t.Errorf("Stats of a host closed without running: %v, want ErrClosed", err)
	}
	for _, h := range []*netloop.Host{srv, never} {
		for _, tc := range []struct {
			name string
			call func(c context.Context) error
		}{
			{"Connect", func(c context.Context) error { _, err := h.Connect(c, loopback(cli), 1, 0); return err }},
			{"Broadcast", func(c context.Context) error { return h.Broadcast(c, 0, []byte("x"), netloop.Reliable) }},
			{"Multicast", func(c context.Context) error {
				return h.Multicast(c, []netloop.Peer{sp}, 0, []byte("x"), netloop.Reliable)
			}},
			{"Flush", func(c context.Context) error { return h.Flush(c) }},
			{"Peers", func(c context.Context) error { _, err := h.Peers(c); return err }},
			{"PeerAt", func(c context.Context) error { _, err := h.PeerAt(c, 0); return err }},
			{"SetChannelLimit", func(c context.Context) error { return h.SetChannelLimit(c, 1) }},
			{"SetBandwidthLimit", func(c context.Context) error { return h.SetBandwidthLimit(c, 1, 1) }},
			{"CompressWithRangeCoder", func(c context.Context) error { return h.CompressWithRangeCoder(c) }},
			{"Run", func(c context.Context) error { return h.Run(c) }},
		} {
			if err := tc.call(ctx(t)); !errors.Is(err, netloop.ErrClosed) {
				t.Errorf("%s after the host stopped: %v, want ErrClosed", tc.name, err)
			}
		}
	}
	// Calls with a peer of the stopped host: the host, not the peer, is the
	// reason they fail.
	for _, pc := range peerCalls {
		if err := pc.call(ctx(t), srv, sp); !errors.Is(err, netloop.ErrClosed) {
			t.Errorf("%s after the host stopped: %v, want ErrClosed", pc.name, err)
		}
	}
	if s, err := cli.Stats(ctx(t)); err != nil || s.ConnectedPeers != 0 {
		t.Fatalf("client after the server stopped: %+v, %v", s, err)
	}
}

// mustClose returns a host that was closed without running.
func mustClose(t *testing.T) *netloop.Host {
	t.Helper()
	h, err := netloop.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	return h
}

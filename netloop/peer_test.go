package netloop_test

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// Tests of the Go equivalents of lua-enet's peer:* functions, named after
// the Go call; the comment of each names the lua-enet function.
// peer:receive has no equivalent here: messages come on Host.Events.

// fast is a timeout that declares a silent peer lost within about a second.
var fast = netloop.Timeout{Limit: 4, Minimum: 200 * time.Millisecond, Maximum: time.Second}

// lua-enet: peer:connect_id().
func TestPeerConnectID(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	roundTrip(t, cli, srv, cp, sp)
	s, c := info(t, srv, sp), info(t, cli, cp)
	if s.ConnectID == 0 || s.ConnectID != c.ConnectID {
		t.Fatalf("connect IDs: server %d, client %d; want equal and non-zero", s.ConnectID, c.ConnectID)
	}
}

func TestPeerInfo(t *testing.T) {
	srv, cli, sp, cp := pair(t, 2)
	for range 5 {
		roundTrip(t, cli, srv, cp, sp)
	}
	for _, tc := range []struct {
		name string
		h    *netloop.Host
		p    netloop.Peer
		port uint16 // of the remote end
	}{
		{"server", srv, sp, cli.Addr().Port()},
		{"client", cli, cp, srv.Addr().Port()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pi := info(t, tc.h, tc.p)
			switch {
			case pi.Peer != tc.p:
				t.Errorf("Peer %v, want %v", pi.Peer, tc.p)
			case pi.Index != tc.p.Index():
				t.Errorf("Index %d, want Peer.Index() %d", pi.Index, tc.p.Index())
			case pi.State != netloop.StateConnected:
				t.Errorf("State %v, want connected", pi.State)
			case pi.Channels != 2:
				t.Errorf("Channels %d, want 2", pi.Channels)
			case pi.Addr.Port() != tc.port || !pi.Addr.Addr().IsLoopback():
				t.Errorf("Addr %v, want 127.0.0.1:%d", pi.Addr, tc.port)
			case pi.RTT <= 0:
				t.Errorf("RTT %v after traffic, want > 0", pi.RTT)
			case pi.MTU <= 0:
				t.Errorf("MTU %d", pi.MTU)
			case pi.MessagesSent != 5 || pi.MessagesReceived != 5 || pi.BytesSent != 20 || pi.BytesReceived != 20:
				t.Errorf("totals sent %d/%dB received %d/%dB, want 5/20B each way",
					pi.MessagesSent, pi.BytesSent, pi.MessagesReceived, pi.BytesReceived)
			}
		})
	}
	peers, err := srv.Peers(ctx(t))
	if err != nil || len(peers) != 1 || peers[0].Peer != sp {
		t.Fatalf("Peers() = %+v, %v; want the one connection", peers, err)
	}
}

// lua-enet: peer:disconnect(data).
func TestDisconnect(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	if err := cli.Disconnect(ctx(t), cp, 42); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	noSends(t, cli, cp)
	if ev := disconnected(t, srv, sp, netloop.ReasonRemote); ev.Data != 42 {
		t.Fatalf("disconnect data %d, want 42", ev.Data)
	}
	disconnected(t, cli, cp, netloop.ReasonLocal)
	is(t, cli.Send(ctx(t), cp, 0, []byte("x"), netloop.Reliable), netloop.ErrStalePeer)
	is(t, srv.Send(ctx(t), sp, 0, []byte("x"), netloop.Reliable), netloop.ErrStalePeer)
}

// noSends checks that once the loop has taken a disconnection of p (a
// Disconnect call returns when it is queued; Flush waits for the loop),
// Send refuses p: the connection is on its way out, or gone.
func noSends(t *testing.T, h *netloop.Host, p netloop.Peer) {
	t.Helper()
	if err := h.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	err := h.Send(ctx(t), p, 0, []byte("too late"), netloop.Reliable)
	if !errors.Is(err, netloop.ErrNotConnected) && !errors.Is(err, netloop.ErrStalePeer) {
		t.Fatalf("Send after a disconnection: %v, want ErrNotConnected or ErrStalePeer", err)
	}
}

// lua-enet: peer:disconnect_now(data).
func TestDisconnectNow(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	if err := cli.DisconnectNow(ctx(t), cp, 43); err != nil {
		t.Fatalf("DisconnectNow: %v", err)
	}
	// The local Disconnect is emitted at once: after a loop round trip it
	// is already waiting on Events.
	if err := cli.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	ev, ok := cli.CheckEvents()
	if !ok || ev.Kind != netloop.EventDisconnect || ev.Peer != cp || ev.Reason != netloop.ReasonLocal || ev.Data != 43 {
		t.Fatalf("after DisconnectNow: %+v, %v; want Disconnect (local, 43)", ev, ok)
	}
	if ev := disconnected(t, srv, sp, netloop.ReasonRemote); ev.Data != 43 {
		t.Fatalf("remote disconnect data %d, want 43", ev.Data)
	}
	is(t, cli.DisconnectNow(ctx(t), cp, 0), netloop.ErrStalePeer)
}

// lua-enet: peer:disconnect_later(data).
func TestDisconnectLater(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	const n = 100
	for i := range n {
		send(t, cli, cp, 0, seqMsg(1, uint32(i), 200), netloop.Reliable)
	}
	if err := cli.DisconnectLater(ctx(t), cp, 44); err != nil {
		t.Fatalf("DisconnectLater: %v", err)
	}
	noSends(t, cli, cp)
	for i := range n {
		if _, seq := parseSeq(t, receive(t, srv, sp).Payload); seq != uint32(i) {
			t.Fatalf("message %d, want %d", seq, i)
		}
	}
	if ev := disconnected(t, srv, sp, netloop.ReasonRemote); ev.Data != 44 {
		t.Fatalf("disconnect data %d, want 44", ev.Data)
	}
	disconnected(t, cli, cp, netloop.ReasonLocal)
}

// lua-enet: peer:index().
func TestPeerIndex(t *testing.T) {
	srv := start(t, "127.0.0.1:0", netloop.WithPeers(4))
	seen := map[int]netloop.Peer{}
	for range 3 {
		cli := start(t, "")
		cp := dial(t, cli, srv, 1, 0)
		if cp.Index() != 0 {
			t.Fatalf("a client's first connection has index %d, want 0", cp.Index())
		}
		sp := expect(t, srv, netloop.EventConnect).Peer
		i := sp.Index()
		if i < 0 || i >= srv.PeerCount() {
			t.Fatalf("index %d outside 0..%d", i, srv.PeerCount()-1)
		}
		if _, dup := seen[i]; dup {
			t.Fatalf("two connections in slot %d", i)
		}
		seen[i] = sp
		if pi := info(t, srv, sp); pi.Index != i {
			t.Fatalf("PeerInfo.Index %d, want %d", pi.Index, i)
		}
		if p, err := srv.PeerAt(ctx(t), i); err != nil || p != sp {
			t.Fatalf("PeerAt(%d) = %v, %v; want %v", i, p, err, sp)
		}
	}
}

// lua-enet: tostring(peer) gives "ip:port"; in Go that is PeerInfo.Addr,
// and Peer.String names the handle.
func TestPeerString(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	if a := info(t, cli, cp).Addr.String(); a != loopback(srv) {
		t.Fatalf("client's peer at %q, want %q", a, loopback(srv))
	}
	if a := info(t, srv, sp).Addr.String(); a != loopback(cli) {
		t.Fatalf("server's peer at %q, want %q", a, loopback(cli))
	}
	for _, p := range []netloop.Peer{sp, cp} {
		if s := p.String(); s != "peer/"+strconv.FormatUint(p.ID(), 10) {
			t.Fatalf("String() = %q for ID %d", s, p.ID())
		}
	}
	if sp.ID() == cp.ID() {
		t.Fatalf("both ends' handles have ID %d", sp.ID())
	}
}

// lua-enet: peer:ping().
func TestPing(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	before := info(t, cli, cp).PacketsSent
	if err := cli.Ping(ctx(t), cp); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := cli.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// A ping is a reliable command: it counts as a sent packet.
	if after := info(t, cli, cp).PacketsSent; after <= before {
		t.Fatalf("PacketsSent %d -> %d after Ping", before, after)
	}
	roundTrip(t, cli, srv, cp, sp)
	if err := cli.DisconnectNow(ctx(t), cp, 0); err != nil {
		t.Fatal(err)
	}
	disconnected(t, cli, cp, netloop.ReasonLocal)
	is(t, cli.Ping(ctx(t), cp), netloop.ErrStalePeer)
}

// lua-enet: peer:ping_interval(ms).
func TestSetPingInterval(t *testing.T) {
	_, cli, _, cp := pair(t, 1)
	for _, tc := range []struct{ set, want time.Duration }{
		{100 * time.Millisecond, 100 * time.Millisecond},
		{1234 * time.Millisecond, 1234 * time.Millisecond},
		{0, 500 * time.Millisecond}, // ENet's default
	} {
		if err := cli.SetPingInterval(ctx(t), cp, tc.set); err != nil {
			t.Fatalf("SetPingInterval(%v): %v", tc.set, err)
		}
		if got := info(t, cli, cp).PingInterval; got != tc.want {
			t.Fatalf("PingInterval %v after setting %v, want %v", got, tc.set, tc.want)
		}
	}
	is(t, cli.SetPingInterval(ctx(t), cp, -time.Millisecond), netloop.ErrRange)
}

// lua-enet: peer:reset().
func TestReset(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	// The server will notice the silence quickly.
	if err := srv.SetTimeout(ctx(t), sp, fast); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetPingInterval(ctx(t), sp, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := cli.Reset(ctx(t), cp); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if err := cli.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if ev, ok := cli.CheckEvents(); !ok || ev.Kind != netloop.EventDisconnect || ev.Peer != cp || ev.Reason != netloop.ReasonLocal {
		t.Fatalf("after Reset: %+v, %v; want Disconnect (local)", ev, ok)
	}
	// The server was not told: it times out.
	disconnected(t, srv, sp, netloop.ReasonTimeout)
	is(t, cli.Reset(ctx(t), cp), netloop.ErrStalePeer)
}

// lua-enet: peer:send(data, channel, flag).
func TestSend(t *testing.T) {
	srv, cli, sp, cp := pair(t, 3)
	for _, tc := range []struct {
		flag netloop.Flag
		ch   uint8
		size int
	}{
		{netloop.Reliable, 0, 1},
		{netloop.Reliable, 2, 100_000}, // fragmented
		{netloop.Unsequenced, 1, 100},
		{netloop.Unreliable, 2, 100},
	} {
		t.Run(tc.flag.String(), func(t *testing.T) {
			payload := bytes.Repeat([]byte{byte(tc.size)}, tc.size)
			send(t, cli, cp, tc.ch, payload, tc.flag)
			ev := receive(t, srv, sp)
			if ev.Flag != tc.flag || ev.Channel != tc.ch || !bytes.Equal(ev.Payload, payload) {
				t.Fatalf("got flag %v channel %d %d bytes, want %v %d %d", ev.Flag, ev.Channel, len(ev.Payload), tc.flag, tc.ch, tc.size)
			}
			// And back.
			send(t, srv, sp, tc.ch, payload, tc.flag)
			if ev := receive(t, cli, cp); ev.Flag != tc.flag || ev.Channel != tc.ch || !bytes.Equal(ev.Payload, payload) {
				t.Fatalf("reply: flag %v channel %d %d bytes", ev.Flag, ev.Channel, len(ev.Payload))
			}
		})
	}
	t.Run("flag names", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			flag netloop.Flag
		}{{"reliable", netloop.Reliable}, {"unsequenced", netloop.Unsequenced}, {"unreliable", netloop.Unreliable}} {
			f, err := netloop.ParseFlag(tc.name)
			if err != nil || f != tc.flag || f.String() != tc.name {
				t.Fatalf("ParseFlag(%q) = %v, %v; want %v", tc.name, f, err, tc.flag)
			}
		}
		if netloop.Flag(0) != netloop.Reliable {
			t.Fatal("the zero Flag is not Reliable, lua-enet's default")
		}
		if s := netloop.Flag(9).String(); s != "Flag(9)" {
			t.Fatalf("Flag(9).String() = %q", s)
		}
	})
}

// lua-enet: peer:state().
func TestPeerState(t *testing.T) {
	names := []string{
		"disconnected", "connecting", "acknowledging_connect", "connection_pending",
		"connection_succeeded", "connected", "disconnect_later", "disconnecting",
		"acknowledging_disconnect", "zombie", "unknown",
	}
	for i, want := range names {
		if got := netloop.State(i).String(); got != want {
			t.Errorf("State(%d) = %q, want %q", i, got, want)
		}
	}
	if netloop.StateUnknown.String() != "unknown" || netloop.StateConnected.String() != "connected" {
		t.Error("named states do not match lua-enet's names")
	}
	for _, s := range []netloop.State{11, 12, 255} {
		if got := s.String(); got != "unknown" {
			t.Errorf("State(%d) = %q, want unknown", s, got)
		}
	}

	// A connection's states, as PeerInfo reports them.
	srv := start(t, "127.0.0.1:0")
	cli := start(t, "")
	cp, err := cli.Connect(ctx(t), loopback(srv), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Connecting until the handshake finishes (the answer may already be in).
	if pi, err := cli.PeerInfo(ctx(t), cp); err != nil || (pi.State != netloop.StateConnecting && pi.State != netloop.StateConnected) {
		t.Fatalf("PeerInfo right after Connect: %v, %v", pi.State, err)
	}
	expect(t, cli, netloop.EventConnect)
	sp := expect(t, srv, netloop.EventConnect).Peer
	if st := info(t, cli, cp).State; st != netloop.StateConnected {
		t.Fatalf("state %v after Connect event, want connected", st)
	}
	if err := cli.DisconnectLater(ctx(t), cp, 0); err != nil {
		t.Fatal(err)
	}
	// Until the server acknowledges, the handle still shows the connection
	// going away; after, it is stale.
	if pi, err := cli.PeerInfo(ctx(t), cp); err == nil {
		switch pi.State {
		case netloop.StateDisconnectLater, netloop.StateDisconnecting, netloop.StateZombie:
		default:
			t.Fatalf("state %v after DisconnectLater", pi.State)
		}
	} else {
		is(t, err, netloop.ErrStalePeer)
	}
	disconnected(t, srv, sp, netloop.ReasonRemote)
	disconnected(t, cli, cp, netloop.ReasonLocal)
}

func TestEventStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{netloop.EventConnect.String(), "connect"},
		{netloop.EventReceive.String(), "receive"},
		{netloop.EventDisconnect.String(), "disconnect"},
		{netloop.Kind(0).String(), "Kind(0)"},
		{netloop.ReasonRemote.String(), "remote"},
		{netloop.ReasonTimeout.String(), "timeout"},
		{netloop.ReasonLocal.String(), "local"},
		{netloop.ReasonShutdown.String(), "shutdown"},
		{netloop.ReasonConnectFailed.String(), "connect_failed"},
		{netloop.ReasonSlow.String(), "overflow"},
		{netloop.Reason(0).String(), "Reason(0)"},
		{netloop.Reason(99).String(), "Reason(99)"},
	} {
		if tc.got != tc.want {
			t.Errorf("String() = %q, want %q", tc.got, tc.want)
		}
	}
}

// lua-enet: peer:round_trip_time(value).
func TestSetRTT(t *testing.T) {
	_, cli, _, cp := pair(t, 1)
	quiet(t, cli, cp)
	for _, d := range []time.Duration{123 * time.Millisecond, 7 * time.Millisecond} {
		if err := cli.SetRTT(ctx(t), cp, d); err != nil {
			t.Fatalf("SetRTT(%v): %v", d, err)
		}
		if got := info(t, cli, cp).RTT; got != d {
			t.Fatalf("RTT %v after SetRTT(%v)", got, d)
		}
	}
	is(t, cli.SetRTT(ctx(t), cp, -time.Millisecond), netloop.ErrRange)
}

// lua-enet: peer:last_round_trip_time(value).
func TestSetLastRTT(t *testing.T) {
	_, cli, _, cp := pair(t, 1)
	quiet(t, cli, cp)
	for _, d := range []time.Duration{77 * time.Millisecond, 3 * time.Millisecond} {
		if err := cli.SetLastRTT(ctx(t), cp, d); err != nil {
			t.Fatalf("SetLastRTT(%v): %v", d, err)
		}
		if got := info(t, cli, cp).LastRTT; got != d {
			t.Fatalf("LastRTT %v after SetLastRTT(%v)", got, d)
		}
	}
	is(t, cli.SetLastRTT(ctx(t), cp, -time.Millisecond), netloop.ErrRange)
}

// quiet stops p's pings, so that no acknowledgement updates its round trip
// times behind the test's back: only acknowledgements of this side's
// reliable commands do, and an idle connection has none but pings. It
// waits for every reliable command to be acknowledged, pings included
// (ReliableDataInTransit counts payload bytes only: a ping in flight has
// none, and its acknowledgement once changed the RTT after SetRTT).
func quiet(t *testing.T, h *netloop.Host, p netloop.Peer) {
	t.Helper()
	if err := h.SetPingInterval(ctx(t), p, time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every reliable command to be acknowledged", func() bool {
		pi := info(t, h, p)
		return pi.UnackedCommands == 0 && pi.QueuedCommands == 0
	})
}

// lua-enet: peer:throttle_configure(interval, acceleration, deceleration).
func TestConfigureThrottle(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	want := netloop.Throttle{Interval: 2500 * time.Millisecond, Acceleration: 3, Deceleration: 4}
	if err := cli.ConfigureThrottle(ctx(t), cp, want); err != nil {
		t.Fatalf("ConfigureThrottle: %v", err)
	}
	if got := info(t, cli, cp).Throttle; got != want {
		t.Fatalf("Throttle %+v, want %+v", got, want)
	}
	// ENet tells the other end, which adopts the same configuration.
	eventually(t, "the server to adopt the throttle", func() bool { return info(t, srv, sp).Throttle == want })
	is(t, cli.ConfigureThrottle(ctx(t), cp, netloop.Throttle{Interval: -time.Second}), netloop.ErrRange)
	roundTrip(t, cli, srv, cp, sp)
}

// lua-enet: peer:timeout(limit, minimum, maximum).
func TestSetTimeout(t *testing.T) {
	t.Run("settings", func(t *testing.T) {
		_, cli, _, cp := pair(t, 1)
		for _, tc := range []struct{ set, want netloop.Timeout }{
			{fast, fast},
			{netloop.Timeout{Limit: 8, Minimum: time.Second, Maximum: time.Second}, netloop.Timeout{Limit: 8, Minimum: time.Second, Maximum: time.Second}},
			{netloop.Timeout{}, netloop.Timeout{Limit: 32, Minimum: 5 * time.Second, Maximum: 30 * time.Second}}, // ENet's defaults
		} {
			if err := cli.SetTimeout(ctx(t), cp, tc.set); err != nil {
				t.Fatalf("SetTimeout(%+v): %v", tc.set, err)
			}
			if got := info(t, cli, cp).Timeout; got != tc.want {
				t.Fatalf("Timeout %+v after setting %+v, want %+v", got, tc.set, tc.want)
			}
		}
	})
	t.Run("vanished peer", func(t *testing.T) {
		// A peer vanishes when its host forgets it without a word: Reset.
		// (Closing its host is not silent: shutdown says goodbye.)
		srv, cli, sp, cp := pair(t, 1)
		const ping = 100 * time.Millisecond
		if err := srv.SetTimeout(ctx(t), sp, fast); err != nil {
			t.Fatal(err)
		}
		if err := srv.SetPingInterval(ctx(t), sp, ping); err != nil {
			t.Fatal(err)
		}
		roundTrip(t, cli, srv, cp, sp)
		t0 := time.Now()
		if err := cli.Reset(ctx(t), cp); err != nil {
			t.Fatal(err)
		}
		disconnected(t, srv, sp, netloop.ReasonTimeout)
		// The server pings after ping of silence, and gives up at most
		// Maximum after that; allow a second for scheduling under -race.
		if d, limit := time.Since(t0), ping+fast.Maximum+time.Second; d > limit {
			t.Fatalf("timeout after %v, want under %v", d, limit)
		}
	})
}

// TestWithPingInterval: the host option applies to every connection as it
// connects, incoming and outgoing.
func TestWithPingInterval(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1, netloop.WithPingInterval(2*time.Second))
	for _, c := range []struct {
		h *netloop.Host
		p netloop.Peer
	}{{srv, sp}, {cli, cp}} {
		info, err := c.h.PeerInfo(ctx(t), c.p)
		if err != nil {
			t.Fatal(err)
		}
		if info.PingInterval != 2*time.Second {
			t.Errorf("ping interval %v, want 2s", info.PingInterval)
		}
	}
}

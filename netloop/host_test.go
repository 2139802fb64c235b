package netloop_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
)

// Tests of the Go equivalents of lua-enet's enet.* and host:* functions,
// one per row of the README's reference table, named after the Go call;
// the comment of each names the lua-enet function.

// lua-enet: enet.host_create(address).
func TestNew(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ip   netip.Addr // the address Addr reports
	}{
		{"127.0.0.1:0", netip.MustParseAddr("127.0.0.1")},
		{"localhost:0", netip.MustParseAddr("127.0.0.1")},
		{"*:0", netip.IPv4Unspecified()},
		{"", netip.IPv4Unspecified()}, // a client host, bound to an ephemeral port
	} {
		t.Run(tc.addr, func(t *testing.T) {
			h := start(t, tc.addr)
			if a := h.Addr(); a.Addr() != tc.ip || a.Port() == 0 {
				t.Fatalf("Addr() = %v, want %v:<port>", a, tc.ip)
			}
			// Whatever it is bound to, a client reaches it on 127.0.0.1:<port>.
			cli := start(t, "")
			cp := dial(t, cli, h, 1, 99)
			ev := expect(t, h, netloop.EventConnect)
			if ev.Data != 99 {
				t.Fatalf("connect data %d, want 99", ev.Data)
			}
			roundTrip(t, cli, h, cp, ev.Peer)
		})
	}
}

// lua-enet: enet.host_create(address, peer_count, channel_count, in_bandwidth, out_bandwidth).
func TestNewOptions(t *testing.T) {
	t.Run("peers", func(t *testing.T) {
		for _, n := range []int{1, 3, netloop.MaxPeers} {
			h := start(t, "127.0.0.1:0", netloop.WithPeers(n))
			if h.PeerCount() != n {
				t.Fatalf("PeerCount() = %d, want %d", h.PeerCount(), n)
			}
			if s := stats(t, h); s.PeerCount != n {
				t.Fatalf("Stats.PeerCount = %d, want %d", s.PeerCount, n)
			}
		}
	})
	t.Run("default peers", func(t *testing.T) {
		if h := start(t, ""); h.PeerCount() != 64 {
			t.Fatalf("PeerCount() = %d, want lua-enet's default 64", h.PeerCount())
		}
	})
	t.Run("channels", func(t *testing.T) {
		// The host's channel count limits incoming connections.
		srv := start(t, "127.0.0.1:0", netloop.WithChannels(3))
		cli := start(t, "", netloop.WithChannels(netloop.MaxChannels))
		cp := dial(t, cli, srv, netloop.MaxChannels, 0)
		sp := expect(t, srv, netloop.EventConnect).Peer
		if got := info(t, srv, sp).Channels; got != 3 {
			t.Fatalf("server side channels %d, want 3", got)
		}
		if got := info(t, cli, cp).Channels; got != 3 {
			t.Fatalf("client side channels %d, want 3 (the server's)", got)
		}
		send(t, cli, cp, 2, []byte("x"), netloop.Reliable)
		if ev := receive(t, srv, sp); ev.Channel != 2 {
			t.Fatalf("channel %d, want 2", ev.Channel)
		}
		is(t, cli.Send(ctx(t), cp, 3, []byte("x"), netloop.Reliable), netloop.ErrChannel)
	})
	t.Run("bandwidth", func(t *testing.T) {
		const in, out = 500_000, 300_000
		srv := start(t, "127.0.0.1:0", netloop.WithBandwidth(in, out))
		cli := start(t, "")
		cp := dial(t, cli, srv, 1, 0)
		sp := expect(t, srv, netloop.EventConnect).Peer
		// The client learns the server's bandwidth in the connect handshake.
		pi := info(t, cli, cp)
		if pi.IncomingBandwidth != in || pi.OutgoingBandwidth != out {
			t.Fatalf("client sees bandwidth in %d out %d, want %d %d", pi.IncomingBandwidth, pi.OutgoingBandwidth, in, out)
		}
		roundTrip(t, cli, srv, cp, sp)
	})
}

// lua-enet: enet.host_create with bad arguments.
func TestNewErrors(t *testing.T) {
	busy := start(t, "127.0.0.1:0")
	for _, tc := range []struct {
		name string
		addr string
		opts []netloop.Option
		want error // nil: any error
	}{
		{"peers 0", "", []netloop.Option{netloop.WithPeers(0)}, netloop.ErrRange},
		{"peers 4096", "", []netloop.Option{netloop.WithPeers(netloop.MaxPeers + 1)}, netloop.ErrRange},
		{"channels 0", "", []netloop.Option{netloop.WithChannels(0)}, netloop.ErrRange},
		{"channels 256", "", []netloop.Option{netloop.WithChannels(netloop.MaxChannels + 1)}, netloop.ErrRange},
		{"negative event buffer", "", []netloop.Option{netloop.WithEventBuffer(-1)}, netloop.ErrRange},
		{"negative command buffer", "", []netloop.Option{netloop.WithCommandBuffer(-1)}, netloop.ErrRange},
		{"negative max pending", "", []netloop.Option{netloop.WithMaxPending(-1), netloop.WithSlowPolicy(netloop.SlowDropAll)}, netloop.ErrRange},
		{"unknown slow-consumer policy", "", []netloop.Option{netloop.WithMaxPending(8), netloop.WithSlowPolicy(netloop.SlowPolicy(7))}, netloop.ErrRange},
		{"negative pending bytes", "", []netloop.Option{netloop.WithMaxPendingBytes(-1)}, netloop.ErrRange},
		{"outbound limit below 64 KiB", "", []netloop.Option{netloop.WithOutboundLimit(1000), netloop.WithOutboundPolicy(netloop.OutboundDropUnreliable)}, netloop.ErrRange},
		{"unknown outbound policy", "", []netloop.Option{netloop.WithOutboundLimit(1 << 20), netloop.WithOutboundPolicy(netloop.OutboundPolicy(9))}, netloop.ErrRange},
		{"per-address limit 0", "", []netloop.Option{netloop.WithPerAddressLimit(0)}, netloop.ErrRange},
		{"negative ping interval", "", []netloop.Option{netloop.WithPingInterval(-time.Second)}, netloop.ErrRange},
		{"ping interval above an hour", "", []netloop.Option{netloop.WithPingInterval(2 * time.Hour)}, netloop.ErrRange},
		{"negative connect timeout", "", []netloop.Option{netloop.WithConnectTimeout(-time.Second)}, netloop.ErrRange},
		{"per-address limit above MaxPeers", "", []netloop.Option{netloop.WithPerAddressLimit(netloop.MaxPeers + 1)}, netloop.ErrRange},
		{"park 0", "", []netloop.Option{netloop.WithParkInterval(0)}, netloop.ErrRange},
		{"park 2s", "", []netloop.Option{netloop.WithParkInterval(2 * time.Second)}, netloop.ErrRange},
		{"negative drain", "", []netloop.Option{netloop.WithDrainTimeout(-time.Second)}, netloop.ErrRange},
		{"no port", "127.0.0.1", nil, netloop.ErrAddress},
		{"empty port", "127.0.0.1:", nil, netloop.ErrAddress},
		{"no host", ":1234", nil, netloop.ErrAddress},
		{"port too big", "127.0.0.1:65536", nil, netloop.ErrAddress},
		{"port not a number", "127.0.0.1:http", nil, netloop.ErrAddress},
		{"IPv6", "[::1]:0", nil, netloop.ErrAddress},
		{"unresolvable", "bad host name.invalid:0", nil, netloop.ErrAddress},
		{"busy port", busy.Addr().String(), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := netloop.New(tc.addr, tc.opts...)
			if err == nil {
				h.Close()
				t.Fatalf("New(%q) succeeded", tc.addr)
			}
			if tc.want != nil {
				is(t, err, tc.want)
			}
		})
	}
	// The busy host is unharmed.
	cli := start(t, "")
	cp := dial(t, cli, busy, 1, 0)
	roundTrip(t, cli, busy, cp, expect(t, busy, netloop.EventConnect).Peer)
}

// lua-enet: enet.linked_version().
func TestLinkedVersion(t *testing.T) {
	v := netloop.LinkedVersion()
	if !regexp.MustCompile(`^1\.3\.[0-9]+$`).MatchString(v) {
		t.Fatalf("LinkedVersion() = %q, want 1.3.<patch>", v)
	}
}

// lua-enet: host:service(timeout).
func TestRun(t *testing.T) {
	// Run drives the host; Events carries what service would return, in
	// order, and is closed once Run has returned nil after cancellation.
	srv, stop := launch(t, "127.0.0.1:0")
	cli := start(t, "")
	cp := dial(t, cli, srv, 1, 5)
	ev := expect(t, srv, netloop.EventConnect)
	if ev.Data != 5 || ev.Addr.Port() != cli.Addr().Port() || ev.Addr.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("connect event %+v", ev)
	}
	sp := ev.Peer
	for _, m := range []string{"a", "b", "c"} {
		send(t, cli, cp, 0, []byte(m), netloop.Reliable)
	}
	for _, m := range []string{"a", "b", "c"} {
		if ev := receive(t, srv, sp); string(ev.Payload) != m || ev.Channel != 0 || ev.Flag != netloop.Reliable {
			t.Fatalf("receive event %+v, want %q", ev, m)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	evs := closed(t, srv)
	if len(evs) != 1 || evs[0].Kind != netloop.EventDisconnect || evs[0].Peer != sp || evs[0].Reason != netloop.ReasonShutdown {
		t.Fatalf("events after stop %+v, want one Disconnect (shutdown)", evs)
	}
}

// lua-enet: host:check_events().
func TestCheckEvents(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	if ev, ok := srv.CheckEvents(); ok {
		t.Fatalf("CheckEvents on an idle host returned %+v", ev)
	}
	send(t, cli, cp, 0, []byte("x"), netloop.Reliable)
	// Wait, without reading Events, until the loop has delivered the message.
	eventually(t, "the message to be delivered", func() bool { return stats(t, srv).Receives == 1 })
	ev, ok := srv.CheckEvents()
	if !ok || ev.Kind != netloop.EventReceive || ev.Peer != sp || string(ev.Payload) != "x" {
		t.Fatalf("CheckEvents = %+v, %v; want the message", ev, ok)
	}
	if ev, ok := srv.CheckEvents(); ok {
		t.Fatalf("second CheckEvents returned %+v", ev)
	}
	// A closed Events gives ok == false, not a zero event forever.
	h, err := netloop.New("")
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if ev, ok := h.CheckEvents(); ok {
		t.Fatalf("CheckEvents on a closed host returned %+v", ev)
	}
}

// lua-enet: host:compress_with_range_coder().
func TestCompressWithRangeCoder(t *testing.T) {
	srv := start(t, "127.0.0.1:0")
	cli := start(t, "")
	for _, h := range []*netloop.Host{srv, cli} {
		if err := h.CompressWithRangeCoder(ctx(t)); err != nil {
			t.Fatalf("CompressWithRangeCoder: %v", err)
		}
	}
	cp := dial(t, cli, srv, 1, 0)
	sp := expect(t, srv, netloop.EventConnect).Peer
	before := stats(t, cli).SentBytes
	const n, size = 20, 1000
	payload := bytes.Repeat([]byte("compressible "), size/13+1)[:size]
	for range n {
		send(t, cli, cp, 0, payload, netloop.Reliable)
	}
	for range n {
		if ev := receive(t, srv, sp); !bytes.Equal(ev.Payload, payload) {
			t.Fatalf("payload differs after compression: %q", ev.Payload)
		}
	}
	roundTrip(t, cli, srv, cp, sp)
	// The range coder shrank what went on the wire below the payload bytes.
	if sent := stats(t, cli).SentBytes - before; sent >= n*size {
		t.Fatalf("sent %d bytes for %d bytes of repetitive payload: not compressed", sent, n*size)
	}
}

// lua-enet: host:connect(address, channel_count, data).
func TestConnect(t *testing.T) {
	srv := start(t, "127.0.0.1:0", netloop.WithChannels(8))
	cli := start(t, "", netloop.WithChannels(8), netloop.WithPeers(2))
	const data = 0xDEADBEEF
	cp, err := cli.Connect(ctx(t), loopback(srv), 5, data)
	if err != nil {
		t.Fatal(err)
	}
	if cp.ID() == 0 || cp.Index() != 0 {
		t.Fatalf("Connect returned %v (index %d)", cp, cp.Index())
	}
	cev := expect(t, cli, netloop.EventConnect)
	if cev.Peer != cp || cev.Addr != netip.MustParseAddrPort(loopback(srv)) {
		t.Fatalf("client connect event %+v", cev)
	}
	sev := expect(t, srv, netloop.EventConnect)
	if sev.Data != data {
		t.Fatalf("server connect data %#x, want %#x", sev.Data, uint32(data))
	}
	if sev.Addr.Port() != cli.Addr().Port() {
		t.Fatalf("server sees the client at %v, want port %d", sev.Addr, cli.Addr().Port())
	}
	if c := info(t, srv, sev.Peer).Channels; c != 5 {
		t.Fatalf("server side channels %d, want 5", c)
	}
	if c := info(t, cli, cp).Channels; c != 5 {
		t.Fatalf("client side channels %d, want 5", c)
	}
	send(t, cli, cp, 4, []byte("last channel"), netloop.Reliable)
	if ev := receive(t, srv, sev.Peer); ev.Channel != 4 {
		t.Fatalf("channel %d, want 4", ev.Channel)
	}

	// Every slot in use: lua-enet's "Failed to create peer".
	if _, err := cli.Connect(ctx(t), loopback(srv), 1, 0); err != nil {
		t.Fatal(err)
	}
	_, err = cli.Connect(ctx(t), loopback(srv), 1, 0)
	is(t, err, netloop.ErrNoSlot)
}

func TestConnectFailed(t *testing.T) {
	// A vanished server answers nothing.
	dead := netlooptest.Silent(t).String()

	cli := start(t, "")
	t.Run("timeout", func(t *testing.T) {
		p, err := cli.Connect(ctx(t), dead, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Before the handshake ends the peer exists but takes no messages.
		is(t, cli.Send(ctx(t), p, 0, []byte("early"), netloop.Reliable), netloop.ErrNotConnected)
		if pi := info(t, cli, p); pi.State != netloop.StateConnecting {
			t.Fatalf("state %v, want connecting", pi.State)
		}
		// A connecting peer takes settings: give up quickly.
		if err := cli.SetTimeout(ctx(t), p, netloop.Timeout{Limit: 4, Minimum: 200 * time.Millisecond, Maximum: time.Second}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		disconnected(t, cli, p, netloop.ReasonConnectFailed)
		if d := time.Since(t0); d > 3*time.Second {
			t.Fatalf("connect failure after %v, want about 1s", d)
		}
		is(t, cli.Send(ctx(t), p, 0, []byte("x"), netloop.Reliable), netloop.ErrStalePeer)
	})
	t.Run("cancelled", func(t *testing.T) {
		p, err := cli.Connect(ctx(t), dead, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.Disconnect(ctx(t), p, 0); err != nil {
			t.Fatal(err)
		}
		disconnected(t, cli, p, netloop.ReasonConnectFailed)
	})
}

// lua-enet: host:flush().
func TestFlush(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	before := info(t, cli, cp).PacketsSent
	for i := range 5 {
		send(t, cli, cp, 0, seqMsg(0, uint32(i), 10), netloop.Reliable)
	}
	if err := cli.Flush(ctx(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	// Flush returned: the 5 reliable commands have gone out.
	if sent := info(t, cli, cp).PacketsSent - before; sent < 5 {
		t.Fatalf("%d reliable commands sent after Flush, want at least 5", sent)
	}
	for i := range 5 {
		if _, seq := parseSeq(t, receive(t, srv, sp).Payload); seq != uint32(i) {
			t.Fatalf("message %d, want %d", seq, i)
		}
	}
}

// lua-enet: host:broadcast(data, channel, flag).
func TestBroadcast(t *testing.T) {
	srv := start(t, "127.0.0.1:0", netloop.WithChannels(2))
	var clis []*netloop.Host
	var cps []netloop.Peer
	for i := range 4 {
		ch := 2
		if i == 3 {
			ch = 1 // too few channels for a broadcast on channel 1
		}
		c := start(t, "", netloop.WithChannels(ch))
		clis = append(clis, c)
		cps = append(cps, dial(t, c, srv, ch, uint32(i)))
		expect(t, srv, netloop.EventConnect)
	}
	s0 := stats(t, srv)
	if err := srv.Broadcast(ctx(t), 1, []byte("one"), netloop.Reliable); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	for i := range 3 {
		if ev := receive(t, clis[i], cps[i]); string(ev.Payload) != "one" || ev.Channel != 1 {
			t.Fatalf("client %d got %+v", i, ev)
		}
	}
	s1 := stats(t, srv)
	if n := s1.SentByFlag[netloop.Reliable] - s0.SentByFlag[netloop.Reliable]; n != 3 {
		t.Fatalf("broadcast on channel 1 reached %d peers, want 3 (the 1-channel peer skipped)", n)
	}
	if s1.Broadcasts-s0.Broadcasts != 1 {
		t.Fatalf("Broadcasts %d, want 1", s1.Broadcasts-s0.Broadcasts)
	}
	if err := srv.Broadcast(ctx(t), 0, []byte("zero"), netloop.Unsequenced); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if ev := receive(t, clis[i], cps[i]); string(ev.Payload) != "zero" || ev.Channel != 0 || ev.Flag != netloop.Unsequenced {
			t.Fatalf("client %d got %+v", i, ev)
		}
	}
	if n := stats(t, srv).SentByFlag[netloop.Unsequenced] - s1.SentByFlag[netloop.Unsequenced]; n != 4 {
		t.Fatalf("broadcast on channel 0 reached %d peers, want 4", n)
	}
	is(t, srv.Broadcast(ctx(t), 255, []byte("x"), netloop.Reliable), netloop.ErrChannel)
}

// lua-enet: host:channel_limit(limit).
func TestSetChannelLimit(t *testing.T) {
	srv := start(t, "127.0.0.1:0", netloop.WithChannels(8))
	if err := srv.SetChannelLimit(ctx(t), 2); err != nil {
		t.Fatalf("SetChannelLimit: %v", err)
	}
	cli := start(t, "", netloop.WithChannels(8))
	cp := dial(t, cli, srv, 6, 0)
	sp := expect(t, srv, netloop.EventConnect).Peer
	if c := info(t, srv, sp).Channels; c != 2 {
		t.Fatalf("server side channels %d, want the limit 2", c)
	}
	if c := info(t, cli, cp).Channels; c != 2 {
		t.Fatalf("client side channels %d, want the limit 2", c)
	}
	is(t, cli.Send(ctx(t), cp, 2, []byte("x"), netloop.Reliable), netloop.ErrChannel)
	is(t, srv.Send(ctx(t), sp, 2, []byte("x"), netloop.Reliable), netloop.ErrChannel)

	// 0 means ENet's maximum: later connections get what they ask for.
	if err := srv.SetChannelLimit(ctx(t), 0); err != nil {
		t.Fatal(err)
	}
	cli2 := start(t, "", netloop.WithChannels(8))
	dial(t, cli2, srv, 7, 0)
	sp2 := expect(t, srv, netloop.EventConnect).Peer
	if c := info(t, srv, sp2).Channels; c != 7 {
		t.Fatalf("channels %d after SetChannelLimit(0), want 7", c)
	}
	if c := info(t, srv, sp).Channels; c != 2 {
		t.Fatalf("existing connection's channels changed to %d", c)
	}
}

// lua-enet: host:bandwidth_limit(incoming, outgoing).
func TestSetBandwidthLimit(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	const in, out = 400_000, 200_000
	if err := srv.SetBandwidthLimit(ctx(t), in, out); err != nil {
		t.Fatalf("SetBandwidthLimit: %v", err)
	}
	roundTrip(t, cli, srv, cp, sp)
	// ENet tells its peers at its next bandwidth throttle (once a second).
	// Unlike lua-enet, the outgoing limit is not the incoming one.
	eventually(t, "the client to learn the server's bandwidth", func() bool {
		return info(t, cli, cp).OutgoingBandwidth == out
	})
	payload := bytes.Repeat([]byte{7}, 4000)
	for range 10 {
		send(t, srv, sp, 0, payload, netloop.Reliable)
	}
	for range 10 {
		if ev := receive(t, cli, cp); !bytes.Equal(ev.Payload, payload) {
			t.Fatal("payload differs")
		}
	}
	if err := srv.SetBandwidthLimit(ctx(t), 0, 0); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cli, srv, cp, sp)
}

// TestStatsTotals covers Stats, lua-enet's host:total_sent_data(),
// total_received_data() and service_time().
func TestStatsTotals(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	c0, s0 := stats(t, cli), stats(t, srv)
	const n, size = 10, 1000
	for i := range n {
		send(t, cli, cp, 0, seqMsg(0, uint32(i), size), netloop.Reliable)
	}
	for range n {
		receive(t, srv, sp)
	}
	c1, s1 := stats(t, cli), stats(t, srv)
	if d := c1.SentBytes - c0.SentBytes; d < n*size {
		t.Errorf("client SentBytes grew by %d, want at least %d", d, n*size)
	}
	if d := s1.ReceivedBytes - s0.ReceivedBytes; d < n*size {
		t.Errorf("server ReceivedBytes grew by %d, want at least %d", d, n*size)
	}
	if c1.SentDatagrams <= c0.SentDatagrams || s1.ReceivedDatagrams <= s0.ReceivedDatagrams {
		t.Errorf("datagram counts did not grow: client sent %d->%d, server received %d->%d",
			c0.SentDatagrams, c1.SentDatagrams, s0.ReceivedDatagrams, s1.ReceivedDatagrams)
	}
	if c1.SentByFlag[netloop.Reliable]-c0.SentByFlag[netloop.Reliable] != n {
		t.Errorf("client SentByFlag[Reliable] grew by %d, want %d", c1.SentByFlag[netloop.Reliable]-c0.SentByFlag[netloop.Reliable], n)
	}
	if s1.Receives-s0.Receives != n {
		t.Errorf("server Receives grew by %d, want %d", s1.Receives-s0.Receives, n)
	}
	if c1.ServiceTime == 0 || s1.ServiceTime == 0 {
		t.Errorf("ServiceTime client %d server %d, want non-zero", c1.ServiceTime, s1.ServiceTime)
	}
	if s1.PeerCount != srv.PeerCount() || s1.ConnectedPeers != 1 || s1.Connects != 1 {
		t.Errorf("server PeerCount %d ConnectedPeers %d Connects %d, want %d 1 1", s1.PeerCount, s1.ConnectedPeers, s1.Connects, srv.PeerCount())
	}
	if s1.Iterations == 0 {
		t.Errorf("Iterations 0")
	}
	// The per-connection totals count payload bytes exactly.
	if pi := info(t, cli, cp); pi.BytesSent != n*size || pi.MessagesSent != n {
		t.Errorf("client PeerInfo sent %d bytes %d messages, want %d %d", pi.BytesSent, pi.MessagesSent, n*size, n)
	}
	if pi := info(t, srv, sp); pi.BytesReceived != n*size || pi.MessagesReceived != n {
		t.Errorf("server PeerInfo received %d bytes %d messages, want %d %d", pi.BytesReceived, pi.MessagesReceived, n*size, n)
	}
}

// lua-enet: host:peer_count().
func TestPeerCount(t *testing.T) {
	srv := start(t, "127.0.0.1:0", netloop.WithPeers(2))
	if srv.PeerCount() != 2 {
		t.Fatalf("PeerCount() = %d, want 2", srv.PeerCount())
	}
	// It is the capacity: connections do not change it, and a third is refused.
	for range 2 {
		dial(t, start(t, ""), srv, 1, 0)
		expect(t, srv, netloop.EventConnect)
	}
	if srv.PeerCount() != 2 {
		t.Fatalf("PeerCount() = %d with 2 connections, want 2", srv.PeerCount())
	}
	if s := stats(t, srv); s.ConnectedPeers != 2 {
		t.Fatalf("ConnectedPeers %d, want 2", s.ConnectedPeers)
	}
	// A full server refuses a third connection at once, and says why.
	third := start(t, "")
	p, err := third.Connect(ctx(t), loopback(srv), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := disconnected(t, third, p, netloop.ReasonRefused); ev.Data != netloop.RefusedFull {
		t.Fatalf("refusal data %#x, want RefusedFull", ev.Data)
	}
	if s := stats(t, srv); s.ConnectsRefused != 1 {
		t.Fatalf("ConnectsRefused %d, want 1", s.ConnectsRefused)
	}
}

// lua-enet: host:get_peer(index).
func TestPeerAt(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	for _, tc := range []struct {
		h    *netloop.Host
		want netloop.Peer
	}{{srv, sp}, {cli, cp}} {
		p, err := tc.h.PeerAt(ctx(t), tc.want.Index())
		if err != nil || p != tc.want {
			t.Fatalf("PeerAt(%d) = %v, %v; want %v", tc.want.Index(), p, err, tc.want)
		}
	}
	free := (sp.Index() + 1) % srv.PeerCount()
	_, err := srv.PeerAt(ctx(t), free)
	is(t, err, netloop.ErrStalePeer)
	for _, i := range []int{-1, srv.PeerCount(), 1 << 20} {
		_, err := srv.PeerAt(ctx(t), i)
		is(t, err, netloop.ErrRange)
	}
	// A connecting peer is in its slot too.
	p, err := cli.Connect(ctx(t), netlooptest.Silent(t).String(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cli.PeerAt(ctx(t), p.Index()); err != nil || got != p {
		t.Fatalf("PeerAt(%d) of a connecting peer = %v, %v; want %v", p.Index(), got, err, p)
	}
}

// lua-enet: host:get_socket_address().
func TestAddr(t *testing.T) {
	srv, cli, _, _ := pair(t, 1)
	if a := srv.Addr(); a.Addr() != netip.MustParseAddr("127.0.0.1") || a.Port() == 0 {
		t.Fatalf("server Addr() = %v", a)
	}
	if a := cli.Addr(); !a.Addr().IsUnspecified() || a.Port() == 0 {
		t.Fatalf("client Addr() = %v, want 0.0.0.0:<port>", a)
	}
	if srv.Addr().Port() == cli.Addr().Port() {
		t.Fatalf("server and client on the same port %d", srv.Addr().Port())
	}
}

// TestClose covers Close, Run and their orders (lua-enet: host:destroy()).
func TestClose(t *testing.T) {
	t.Run("close before run", func(t *testing.T) {
		h, err := netloop.New("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := h.Addr().String()
		if err := h.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := h.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		select {
		case <-h.Done():
		default:
			t.Fatal("Done not closed after Close")
		}
		if evs := closed(t, h); len(evs) != 0 {
			t.Fatalf("events from a host never run: %+v", evs)
		}
		is(t, h.Run(context.Background()), netloop.ErrClosed)
		_, err = h.Stats(ctx(t))
		is(t, err, netloop.ErrClosed)
		// The port is released.
		h2, err := netloop.New(addr)
		if err != nil {
			t.Fatalf("New on the port of a closed host: %v", err)
		}
		h2.Close()
	})
	t.Run("close while running", func(t *testing.T) {
		h, err := netloop.New("127.0.0.1:0", netloop.WithDrainTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		addr := h.Addr().String()
		errc := make(chan error, 1)
		go func() { errc <- h.Run(context.Background()) }()
		stats(t, h) // the loop runs
		is(t, h.Run(context.Background()), netloop.ErrRunning)
		if err := h.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case <-h.Done():
		default:
			t.Fatal("Close returned before the host stopped")
		}
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("Run returned %v after Close, want nil", err)
			}
		case <-time.After(wait):
			t.Fatal("Run did not return after Close")
		}
		closed(t, h)
		if err := h.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if s, err := h.Stats(ctx(t)); err != nil || s.Iterations == 0 {
			t.Fatalf("Stats after Run returned: %+v, %v; want the final counters", s, err)
		}
		is(t, h.Run(context.Background()), netloop.ErrClosed)
		h2, err := netloop.New(addr)
		if err != nil {
			t.Fatalf("New on the port of a closed host: %v", err)
		}
		h2.Close()
	})
	t.Run("run after cancel", func(t *testing.T) {
		h, err := netloop.New("")
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithCancel(context.Background())
		cancel()
		if err := h.Run(c); err != nil {
			t.Fatalf("Run with a cancelled context: %v", err)
		}
		closed(t, h)
		is(t, h.Run(context.Background()), netloop.ErrClosed)
		h.Close()
	})
	t.Run("close concurrently", func(t *testing.T) {
		h, err := netloop.New("")
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- h.Run(context.Background()) }()
		done := make(chan struct{})
		for range 4 {
			go func() { h.Close(); done <- struct{}{} }()
		}
		for range 4 {
			select {
			case <-done:
			case <-time.After(wait):
				t.Fatal("Close did not return")
			}
		}
		// Run either ran and stopped, or found the host closed.
		if err := <-errc; err != nil && !errors.Is(err, netloop.ErrClosed) {
			t.Fatalf("Run: %v", err)
		}
	})
}

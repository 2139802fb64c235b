package netloop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// peerCalls are the Host methods that take a Peer, each called with p.
var peerCalls = []struct {
	name string
	call func(c context.Context, h *netloop.Host, p netloop.Peer) error
}{
	{"Send", func(c context.Context, h *netloop.Host, p netloop.Peer) error {
		return h.Send(c, p, 0, []byte("x"), netloop.Reliable)
	}},
	{"PeerInfo", func(c context.Context, h *netloop.Host, p netloop.Peer) error {
		_, err := h.PeerInfo(c, p)
		return err
	}},
	{"Disconnect", func(c context.Context, h *netloop.Host, p netloop.Peer) error { return h.Disconnect(c, p, 0) }},
	{"DisconnectLater", func(c context.Context, h *netloop.Host, p netloop.Peer) error { return h.DisconnectLater(c, p, 0) }},
	{"DisconnectNow", func(c context.Context, h *netloop.Host, p netloop.Peer) error { return h.DisconnectNow(c, p, 0) }},
	{"Reset", func(c context.Context, h *netloop.Host, p netloop.Peer) error { return h.Reset(c, p) }},
	{"Ping", func(c context.Context, h *netloop.Host, p netloop.Peer) error { return h.Ping(c, p) }},
	{"SetPingInterval", func(c context.Context, h *netloop.Host, p netloop.Peer) error {
		return h.SetPingInterval(c, p, time.Second)
	}},
	{"SetRTT", func(c context.Context, h *netloop.Host, p netloop.Peer) error { return h.SetRTT(c, p, time.Second) }},
	{"SetLastRTT", func(c context.Context, h *netloop.Host, p netloop.Peer) error { return h.SetLastRTT(c, p, time.Second) }},
	{"ConfigureThrottle", func(c context.Context, h *netloop.Host, p netloop.Peer) error {
		return h.ConfigureThrottle(c, p, netloop.Throttle{Interval: time.Second, Acceleration: 2, Deceleration: 2})
	}},
	{"SetTimeout", func(c context.Context, h *netloop.Host, p netloop.Peer) error {
		return h.SetTimeout(c, p, netloop.Timeout{})
	}},
}

// allRefuse checks that every peer call with p returns want.
func allRefuse(t *testing.T, h *netloop.Host, p netloop.Peer, want error) {
	t.Helper()
	for _, pc := range peerCalls {
		if err := pc.call(ctx(t), h, p); !errors.Is(err, want) {
			t.Errorf("%s(%v): %v, want %v", pc.name, p, err, want)
		}
	}
}

func TestStalePeer(t *testing.T) {
	srv := start(t, "127.0.0.1:0", netloop.WithPeers(4))
	cli := start(t, "")
	cp := dial(t, cli, srv, 1, 0)
	old := expect(t, srv, netloop.EventConnect).Peer
	roundTrip(t, cli, srv, cp, old)

	if err := cli.Disconnect(ctx(t), cp, 0); err != nil {
		t.Fatal(err)
	}
	disconnected(t, srv, old, netloop.ReasonRemote)
	disconnected(t, cli, cp, netloop.ReasonLocal)
	allRefuse(t, srv, old, netloop.ErrStalePeer)
	allRefuse(t, cli, cp, netloop.ErrStalePeer)

	// A new connection takes the freed slot: the same index, another handle.
	cli2 := start(t, "")
	cp2 := dial(t, cli2, srv, 1, 0)
	cur := expect(t, srv, netloop.EventConnect).Peer
	if cur.Index() != old.Index() {
		t.Fatalf("new connection in slot %d, want the freed slot %d", cur.Index(), old.Index())
	}
	if cur == old || cur.ID() == old.ID() {
		t.Fatalf("new handle %v equals the old %v", cur, old)
	}
	if p, err := srv.PeerAt(ctx(t), old.Index()); err != nil || p != cur {
		t.Fatalf("PeerAt(%d) = %v, %v; want the new handle %v", old.Index(), p, err, cur)
	}
	allRefuse(t, srv, old, netloop.ErrStalePeer)
	if pi := info(t, srv, cur); pi.Peer != cur {
		t.Fatalf("PeerInfo of the new handle names %v", pi.Peer)
	}
	roundTrip(t, cli2, srv, cp2, cur)
	// Nothing sent with the old handle reached the new connection.
	if s := stats(t, cli2); s.Receives != 1 {
		t.Fatalf("new client received %d messages, want 1", s.Receives)
	}
}

func TestForeignPeer(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	other := start(t, "")
	for _, tc := range []struct {
		name string
		h    *netloop.Host
		p    netloop.Peer
	}{
		{"client's peer on server", srv, cp},
		{"server's peer on client", cli, sp},
		{"peer on a third host", other, sp},
		{"zero peer", srv, netloop.Peer{}},
	} {
		t.Run(tc.name, func(t *testing.T) { allRefuse(t, tc.h, tc.p, netloop.ErrForeignPeer) })
	}
	var zero netloop.Peer
	if zero.ID() != 0 || zero.Index() != 0 {
		t.Fatalf("zero Peer has ID %d index %d", zero.ID(), zero.Index())
	}
	roundTrip(t, cli, srv, cp, sp)
}

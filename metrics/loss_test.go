package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/enetkit/enetkit/integration/linkproxy"
	"github.com/enetkit/enetkit/metrics"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
)

// TestPacketLossBehindLossyLink sends reliable messages from a server to a
// client behind a proxy that drops 30% of the server's datagrams: the
// server's figures for that peer must show loss. ENet recomputes a peer's
// packet loss every 10 seconds, so this takes that long.
func TestPacketLossBehindLossyLink(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ENet's 10s packet loss interval")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	srv := netlooptest.Start(t, "127.0.0.1:0")
	cli := netlooptest.Start(t, "")
	proxy, err := linkproxy.New("127.0.0.1:0", srv.Addr().String(), linkproxy.Config{Down: linkproxy.Link{Loss: 0.3}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	pdone := make(chan error, 1)
	go func() { pdone <- proxy.Run(ctx) }()
	defer func() { cancel(); <-pdone }()

	m, err := metrics.New(metrics.WithPeerMetrics())
	if err != nil {
		t.Fatal(err)
	}
	m.AddHost("srv", srv)
	if _, err := cli.Connect(ctx, proxy.Addr().String(), 1, 0); err != nil {
		t.Fatal(err)
	}
	var peer netloop.Peer
	select {
	case ev := <-srv.Events():
		peer = ev.Peer
	case <-ctx.Done():
		t.Fatal("no connect")
	}
	go func() { // the client drains what arrives, until it stops
		for range cli.Events() {
		}
	}()
	msg := make([]byte, 200)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("no packet loss reported; proxy %+v", proxy.Stats())
		case <-tick.C:
		}
		if err := srv.Send(ctx, peer, 0, msg, netloop.Reliable); err != nil {
			t.Fatal(err)
		}
		s := m.Snapshot(ctx)
		if len(s.Hosts) == 1 && len(s.Hosts[0].Peers) == 1 && s.Hosts[0].Peers[0].PacketLoss > 0 {
			p := s.Hosts[0].Peers[0]
			t.Logf("packet loss %.3f (variance %.3f), RTT %v, proxy dropped %d of %d", p.PacketLoss, p.PacketLossVariance, p.RTT, proxy.Stats().Down.Lost, proxy.Stats().Down.Received)
			return
		}
	}
}

package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/enetkit/enetkit/metrics"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

// TestGroupHosts collects a host group's figures per host, under name/i,
// until the group is removed.
func TestGroupHosts(t *testing.T) {
	m, err := metrics.New(metrics.WithRegisterer(prometheus.NewPedanticRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	g, err := netloop.NewGroup("127.0.0.1:0", 2, netloop.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	m.AddGroup("game", g)
	started := make(chan netloop.Peer, 64)
	srv, err := session.NewForGroup(g, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		started <- s.Peer()
		<-ctx.Done()
		return nil
	}), session.WithObserver(m))
	if err != nil {
		t.Fatal(err)
	}
	netlooptest.Go(t, srv.Run)

	served := map[*netloop.Host]int{}
	clients := 0
	for len(served) < 2 {
		if clients == 64 {
			t.Fatalf("64 client hosts all on one host")
		}
		netlooptest.Dial(t, netlooptest.Start(t, ""), g.Addr().String(), 1, 0)
		clients++
		select {
		case p := <-started:
			served[p.Host()]++
		case <-time.After(wait):
			t.Fatal("no session")
		}
	}
	snap := m.Snapshot(context.Background())
	if len(snap.Hosts) != 2 {
		t.Fatalf("%d hosts in the snapshot, want 2", len(snap.Hosts))
	}
	for i, h := range g.Hosts() {
		var found bool
		for _, hs := range snap.Hosts {
			if hs.Name == []string{"game/0", "game/1"}[i] {
				found = true
				if hs.Stats.ConnectedPeers != served[h] {
					t.Errorf("%s: %d connected, want %d", hs.Name, hs.Stats.ConnectedPeers, served[h])
				}
			}
		}
		if !found {
			t.Errorf("host %d missing from %+v", i, snap.Hosts)
		}
	}
	if snap.Sessions.Live != int64(clients) {
		t.Errorf("%d live sessions, want %d", snap.Sessions.Live, clients)
	}
	m.RemoveGroup("game", 2)
	if n := len(m.Snapshot(context.Background()).Hosts); n != 0 {
		t.Fatalf("%d hosts after RemoveGroup", n)
	}
}

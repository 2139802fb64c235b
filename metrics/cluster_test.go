package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
	"github.com/enetkit/enetkit/session/cluster"
)

func TestClusterMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cm, err := NewCluster(WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	host, err := netloop.New("127.0.0.1:0", netloop.WithPeers(4))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := session.New(host, session.HandlerFunc(func(context.Context, *session.Session) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	joined := make(chan struct{}, 1)
	node, err := cluster.New(srv, cluster.WithServer(""), cluster.WithObserver(cm),
		cluster.WithWatch(func(cluster.NodeEvent) { joined <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	cm.SetNode(node)
	node.Handle("echo", func(_ context.Context, b []byte) ([]byte, error) { return b, nil })
	node.Handle("fail", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("no") })
	netlooptest.Go(t, node.Run)
	select {
	case <-joined: // the node's own join: it is live
	case <-time.After(netlooptest.Timeout):
		t.Fatal("node did not join")
	}
	ctx := context.Background()
	for range 3 {
		if _, err := node.Request(ctx, "echo", "", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := node.Request(ctx, "fail", "", nil); !errors.Is(err, cluster.ErrRemote) {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"enetkit_cluster_connected":       1,
		"enetkit_cluster_nodes":           1,
		"enetkit_cluster_published_total": 8, // 4 requests, 4 replies
		"enetkit_cluster_received_total":  8,
		"enetkit_cluster_refused_total":   0,
	} {
		if got := gather(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "enetkit_cluster_request_duration_seconds"); err != nil || n != 2 {
		t.Errorf("request histograms: %d, %v; want 2 (echo, fail)", n, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP enetkit_cluster_request_errors_total Failed requests, by service.
# TYPE enetkit_cluster_request_errors_total counter
enetkit_cluster_request_errors_total{service="echo"} 0
enetkit_cluster_request_errors_total{service="fail"} 1
`), "enetkit_cluster_request_errors_total"); err != nil {
		t.Error(err)
	}
}

// gather returns the value of the single-series metric name.
func gather(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

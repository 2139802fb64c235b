package metrics_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/metrics"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = netlooptest.Timeout

// server runs a session server with a mux that handles type 1 (raw) and
// fails type 2, instrumented with m; it returns the server's address.
func server(t *testing.T, m *metrics.Metrics, handled chan<- struct{}) string {
	t.Helper()
	host, err := netloop.New("127.0.0.1:0", netloop.WithTiming(), netloop.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	m.AddHost("srv", host)
	mux, err := dispatch.NewMux(dispatch.WithObserver(m))
	if err != nil {
		t.Fatal(err)
	}
	dispatch.Handle(mux, 1, dispatch.Raw, func(ctx context.Context, s *session.Session, b []byte) error {
		handled <- struct{}{}
		return nil
	})
	mux.HandleFunc(2, func(ctx context.Context, msg *dispatch.Message) error { return errors.New("no") })
	srv, err := session.New(host, mux, session.WithObserver(m))
	if err != nil {
		t.Fatal(err)
	}
	netlooptest.Go(t, srv.Run)
	return host.Addr().String()
}

// client connects a client host to addr and returns it with its peer.
func client(t *testing.T, addr string) (*netloop.Host, netloop.Peer) {
	t.Helper()
	h := netlooptest.Start(t, "")
	return h, netlooptest.Dial(t, h, addr, 1, 0)
}

func TestCountersMatchTraffic(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.New(metrics.WithRegisterer(reg), metrics.WithPeerMetrics())
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{}, 100)
	addr := server(t, m, handled)
	cli, p := client(t, addr)

	const n, size = 50, 100
	payload := dispatch.AppendMessage(nil, 1, make([]byte, size-1)) // 1-byte prefix: size bytes in all
	for i := 0; i < n; i++ {
		if err := cli.Send(context.Background(), p, 0, payload, netloop.Reliable); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		select {
		case <-handled:
		case <-time.After(wait):
			t.Fatalf("handled %d of %d", i, n)
		}
	}
	s := m.Snapshot(context.Background())
	if len(s.Hosts) != 1 {
		t.Fatalf("hosts %d", len(s.Hosts))
	}
	st := s.Hosts[0].Stats
	if st.Receives != n || st.Connects != 1 {
		t.Errorf("receives %d connects %d, want %d, 1", st.Receives, st.Connects, n)
	}
	if st.ReceivedBytes < n*size {
		t.Errorf("received bytes %d < %d", st.ReceivedBytes, n*size)
	}
	if len(s.Hosts[0].Peers) != 1 || s.Hosts[0].Peers[0].BytesReceived != n*size || s.Hosts[0].Peers[0].MessagesReceived != n {
		t.Errorf("peer figures %+v", s.Hosts[0].Peers)
	}
	if got := s.Dispatch.Types[1]; got.Handled != n || got.Latency.Count != n || got.Errors != 0 {
		t.Errorf("type 1: %+v", got)
	}
	if s.Sessions.Started != 1 || s.Sessions.Live != 1 {
		t.Errorf("sessions %+v", s.Sessions)
	}
	// The same figures through Prometheus.
	if got := sample(t, reg, "enetkit_dispatch_messages_total", "1"); got != n {
		t.Errorf("dispatch_messages_total{type=1} = %v", got)
	}

	// A bad message and a failing handler are counted, and end the session.
	if err := cli.Send(context.Background(), p, 0, []byte{9}, netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	if err := cli.Send(context.Background(), p, 0, []byte{2}, netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	netlooptest.Eventually(t, "the metrics", func() bool {
		s := m.Snapshot(context.Background())
		return s.Dispatch.Rejected["unknown_type"] == 1 && s.Sessions.HandlerErrors == 1 && s.Sessions.Ended["handler_error"] == 1
	})
	if s := m.Snapshot(context.Background()); s.Sessions.Live != 0 || s.Sessions.Lifetime.Count != 1 {
		t.Errorf("after end: %+v", s.Sessions)
	}
}

// sample returns the value of the sample of name whose label has the given
// value, gathered from reg.
func sample(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetValue() == label {
					if mt.Counter != nil {
						return mt.GetCounter().GetValue()
					}
					return mt.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return 0
}

func TestHistogramCountsMatchIterations(t *testing.T) {
	h := netlooptest.Start(t, "127.0.0.1:0", netloop.WithTiming())
	ctx := context.Background()
	for i := 0; i < 20; i++ { // each Stats call is a command: more iterations
		if _, err := h.Stats(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st, err := h.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Iterations == 0 || st.Iteration.Count != st.Iterations || st.Service.Count != st.Iterations {
		t.Fatalf("iterations %d, iteration histogram %d, service histogram %d", st.Iterations, st.Iteration.Count, st.Service.Count)
	}
	var sum uint64
	for _, c := range st.Iteration.Counts {
		sum += c
	}
	if sum != st.Iteration.Count {
		t.Fatalf("bucket counts add to %d, count %d", sum, st.Iteration.Count)
	}
}

func TestScrapeOverHTTP(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.New(metrics.WithRegisterer(reg), metrics.WithPeerMetrics())
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{}, 10)
	addr := server(t, m, handled)
	cli, p := client(t, addr)
	if err := cli.Send(context.Background(), p, 0, []byte{1, 'x'}, netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	select {
	case <-handled:
	case <-time.After(wait):
		t.Fatal("not handled")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})}
	go hs.Serve(ln)
	defer hs.Close()

	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v: %s", resp.StatusCode, err, body)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("invalid Prometheus text: %v\n%s", err, body)
	}
	want := map[string]dto.MetricType{
		"enetkit_host_received_bytes_total":            dto.MetricType_COUNTER,
		"enetkit_host_connected_peers":                 dto.MetricType_GAUGE,
		"enetkit_host_loop_iteration_duration_seconds": dto.MetricType_HISTOGRAM,
		"enetkit_peer_rtt_seconds":                     dto.MetricType_GAUGE,
		"enetkit_sessions_live":                        dto.MetricType_GAUGE,
		"enetkit_dispatch_handler_duration_seconds":    dto.MetricType_HISTOGRAM,
		"enetkit_dispatch_rejected_total":              dto.MetricType_COUNTER,
	}
	for name, typ := range want {
		mf, ok := mfs[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if mf.GetType() != typ {
			t.Errorf("%s is %v, want %v", name, mf.GetType(), typ)
		}
	}
	if v := mfs["enetkit_host_connected_peers"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("connected peers %v, want 1", v)
	}
	if v := mfs["enetkit_sessions_live"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("live sessions %v, want 1", v)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint problems: %v %v", problems, err)
	}
}

// The hardening counters reach Prometheus: a CONNECT refused by the
// per-address limit is counted by reason.
func TestRefusalsExported(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.New(metrics.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	srv := netlooptest.Start(t, "127.0.0.1:0", netloop.WithPerAddressLimit(1))
	m.AddHost("srv", srv)
	cli := netlooptest.Start(t, "", netloop.WithPeers(2))
	netlooptest.Dial(t, cli, srv.Addr().String(), 1, 0)
	p, err := cli.Connect(context.Background(), srv.Addr().String(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := netlooptest.Expect(t, cli, netloop.EventDisconnect); ev.Peer != p || ev.Reason != netloop.ReasonRefused {
		t.Fatalf("second connection: %v (%v), want refused", ev.Peer, ev.Reason)
	}
	if got := sample(t, reg, "enetkit_host_connects_refused_total", "address"); got != 1 {
		t.Fatalf("host_connects_refused_total{reason=address} = %v, want 1", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// A registry that is a nil pointer registers nothing, rather than panic at
// the first scrape; an option out of range is an error.
func TestNewOptions(t *testing.T) {
	var reg *prometheus.Registry
	if _, err := metrics.New(metrics.WithRegisterer(reg)); err != nil {
		t.Fatalf("New with a nil *Registry: %v", err)
	}
	if _, err := metrics.NewCluster(metrics.WithRegisterer(reg)); err != nil {
		t.Fatalf("NewCluster with a nil *Registry: %v", err)
	}
	if _, err := metrics.New(metrics.WithScrapeTimeout(0)); !errors.Is(err, metrics.ErrOption) {
		t.Fatalf("New with a zero scrape timeout: %v, want %v", err, metrics.ErrOption)
	}
	real := prometheus.NewPedanticRegistry()
	if _, err := metrics.New(metrics.WithRegisterer(real)); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(metrics.WithRegisterer(real)); err == nil {
		t.Fatal("a second registration with one registry: no error")
	}
}

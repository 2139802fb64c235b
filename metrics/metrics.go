package metrics

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// Metrics collects the figures of netloop hosts, session servers and
// dispatch muxes. It is a session.Observer and a dispatch.Observer, and a
// prometheus.Collector. Its methods are safe for concurrent use; none takes
// a lock on a message's path.
type Metrics struct {
	ns      string
	perPeer bool
	timeout time.Duration
	reg     prometheus.Registerer

	mu    sync.Mutex // guards hosts
	hosts map[string]*netloop.Host

	sessionsStarted, sessionsLive, dropped atomic.Int64
	handlerErrors, handlerPanics           atomic.Int64
	ended                                  [16]atomic.Int64 // by session.Reason
	lifetimes                              histogram

	types    sync.Map                                  // uint32 -> *typeStats
	rejected [len(dispatch.RejectReasons)]atomic.Int64 // by RejectReason - 1

	descs *[numMetrics]*prometheus.Desc
}

type typeStats struct {
	handled, errors atomic.Int64
	latency         histogram
}

// Option configures Metrics.
type Option func(*Metrics)

// WithNamespace sets the metric name prefix (default "enetkit").
func WithNamespace(ns string) Option { return func(m *Metrics) { m.ns = ns } }

// WithPeerMetrics turns on per-peer series (RTT, loss, throttle, data in
// flight, bytes), labelled by host and peer ID: one series set per
// connected peer, so leave it off on hosts with many peers unless you need it.
func WithPeerMetrics() Option { return func(m *Metrics) { m.perPeer = true } }

// WithScrapeTimeout bounds how long a scrape waits for a host's loop
// (default 1s; more than 0).
func WithScrapeTimeout(d time.Duration) Option { return func(m *Metrics) { m.timeout = d } }

// WithRegisterer registers the collector with reg, for Prometheus to
// scrape (default: none; Snapshot works either way). A nil reg, or one
// holding a nil pointer, registers nothing.
func WithRegisterer(reg prometheus.Registerer) Option { return func(m *Metrics) { m.reg = reg } }

// ErrOption: an option out of range.
var ErrOption = errors.New("metrics: option out of range")

// apply applies opts to a Metrics with the defaults and checks them.
func apply(opts []Option) (*Metrics, error) {
	m := &Metrics{ns: "enetkit", timeout: time.Second, hosts: make(map[string]*netloop.Host)}
	for _, o := range opts {
		o(m)
	}
	if m.timeout <= 0 {
		return nil, fmt.Errorf("%w: scrape timeout %v", ErrOption, m.timeout)
	}
	return m, nil
}

// register registers c with reg, unless reg is nil or a nil pointer.
func register(reg prometheus.Registerer, c prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	if v := reflect.ValueOf(reg); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil
	}
	return reg.Register(c)
}

// New returns Metrics, registered with WithRegisterer's registry if any.
// Register it once per registry.
func New(opts ...Option) (*Metrics, error) {
	m, err := apply(opts)
	if err != nil {
		return nil, err
	}
	m.lifetimes.init(lifetimeBounds)
	m.descs = m.describe()
	if err := register(m.reg, m); err != nil {
		return nil, err
	}
	return m, nil
}

// AddHost starts collecting h's figures under the label host=name; a
// second host with the same name replaces the first. Hosts that have
// stopped are skipped. Pass netloop.WithTiming to New for the loop's
// duration histograms.
func (m *Metrics) AddHost(name string, h *netloop.Host) {
	m.mu.Lock()
	m.hosts[name] = h
	m.mu.Unlock()
}

// RemoveHost stops collecting the host called name.
func (m *Metrics) RemoveHost(name string) {
	m.mu.Lock()
	delete(m.hosts, name)
	m.mu.Unlock()
}

// SessionStarted implements session.Observer.
func (m *Metrics) SessionStarted(*session.Session) {
	m.sessionsStarted.Add(1)
	m.sessionsLive.Add(1)
}

// SessionEnded implements session.Observer.
func (m *Metrics) SessionEnded(_ *session.Session, end *session.EndError, lifetime time.Duration) {
	m.sessionsLive.Add(-1)
	if int(end.Reason) < len(m.ended) {
		m.ended[end.Reason].Add(1)
	}
	m.lifetimes.observe(lifetime)
}

// MessageDropped implements session.Observer.
func (m *Metrics) MessageDropped(*session.Session, session.Message) { m.dropped.Add(1) }

// HandlerFailed implements session.Observer.
func (m *Metrics) HandlerFailed(_ *session.Session, _ error, panicked bool) {
	if panicked {
		m.handlerPanics.Add(1)
	} else {
		m.handlerErrors.Add(1)
	}
}

func (m *Metrics) typeStats(typ uint32) *typeStats {
	if v, ok := m.types.Load(typ); ok {
		return v.(*typeStats)
	}
	t := &typeStats{}
	t.latency.init(latencyBounds)
	v, _ := m.types.LoadOrStore(typ, t)
	return v.(*typeStats)
}

// MessageHandled implements dispatch.Observer.
func (m *Metrics) MessageHandled(typ uint32, d time.Duration, err error) {
	t := m.typeStats(typ)
	t.handled.Add(1)
	if err != nil {
		t.errors.Add(1)
	}
	t.latency.observe(d)
}

// MessageRejected implements dispatch.Observer.
func (m *Metrics) MessageRejected(_ uint32, reason dispatch.RejectReason, _ error) {
	if i := int(reason) - 1; i >= 0 && i < len(m.rejected) {
		m.rejected[i].Add(1)
	}
}

// Snapshot is every figure Metrics has, as plain Go values.
type Snapshot struct {
	Hosts    []HostSnapshot
	Sessions SessionSnapshot
	Dispatch DispatchSnapshot
}

// HostSnapshot is one host's figures.
type HostSnapshot struct {
	Name  string
	Stats netloop.Stats
	Peers []netloop.PeerInfo // only WithPeerMetrics
}

// SessionSnapshot are the session servers' figures.
type SessionSnapshot struct {
	Started, Live, Dropped       int64
	HandlerErrors, HandlerPanics int64
	Ended                        map[string]int64 // by reason
	Lifetime                     HistogramSnapshot
}

// DispatchSnapshot are the muxes' figures.
type DispatchSnapshot struct {
	Types    map[uint32]TypeSnapshot
	Rejected map[string]int64 // by reason
}

// TypeSnapshot is one message type's figures.
type TypeSnapshot struct {
	Handled, Errors int64
	Latency         HistogramSnapshot
}

// HistogramSnapshot is a histogram: Buckets maps each upper bound, in
// seconds, to the cumulative count of observations at or below it.
type HistogramSnapshot struct {
	Count   uint64
	Sum     float64 // seconds
	Buckets map[float64]uint64
}

// Snapshot reads every figure now. Hosts that do not answer within the
// scrape timeout, or have stopped, are left out.
func (m *Metrics) Snapshot(ctx context.Context) Snapshot {
	s := Snapshot{
		Sessions: SessionSnapshot{
			Started: m.sessionsStarted.Load(), Live: m.sessionsLive.Load(), Dropped: m.dropped.Load(),
			HandlerErrors: m.handlerErrors.Load(), HandlerPanics: m.handlerPanics.Load(),
			Ended: make(map[string]int64), Lifetime: m.lifetimes.snapshot(),
		},
		Dispatch: DispatchSnapshot{Types: make(map[uint32]TypeSnapshot), Rejected: make(map[string]int64)},
	}
	for r := range m.ended {
		if n := m.ended[r].Load(); n > 0 {
			s.Sessions.Ended[session.Reason(r).String()] = n
		}
	}
	m.types.Range(func(k, v any) bool {
		t := v.(*typeStats)
		s.Dispatch.Types[k.(uint32)] = TypeSnapshot{Handled: t.handled.Load(), Errors: t.errors.Load(), Latency: t.latency.snapshot()}
		return true
	})
	for i, r := range dispatch.RejectReasons {
		s.Dispatch.Rejected[r.String()] = m.rejected[i].Load()
	}
	s.Hosts = m.hostSnapshots(ctx)
	return s
}

func (m *Metrics) hostSnapshots(ctx context.Context) []HostSnapshot {
	m.mu.Lock()
	names := make([]string, 0, len(m.hosts))
	for n := range m.hosts {
		names = append(names, n)
	}
	hosts := make([]*netloop.Host, len(names))
	sort.Strings(names)
	for i, n := range names {
		hosts[i] = m.hosts[n]
	}
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	out := make([]HostSnapshot, 0, len(hosts))
	for i, h := range hosts {
		st, err := h.Stats(ctx)
		if err != nil {
			continue
		}
		hs := HostSnapshot{Name: names[i], Stats: st}
		if m.perPeer {
			if hs.Peers, err = h.Peers(ctx); err != nil {
				continue
			}
		}
		out = append(out, hs)
	}
	return out
}

// histogram is a fixed-bucket histogram with atomic counters.
type histogram struct {
	bounds []float64 // seconds
	counts []atomic.Uint64
	count  atomic.Uint64
	sumNS  atomic.Int64
}

var (
	latencyBounds  = []float64{1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1}
	lifetimeBounds = []float64{1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600}
)

func (h *histogram) init(bounds []float64) {
	h.bounds = bounds
	h.counts = make([]atomic.Uint64, len(bounds))
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	for i, b := range h.bounds {
		if s <= b {
			h.counts[i].Add(1)
			break
		}
	}
	h.count.Add(1)
	h.sumNS.Add(int64(d))
}

func (h *histogram) snapshot() HistogramSnapshot {
	out := HistogramSnapshot{Count: h.count.Load(), Sum: time.Duration(h.sumNS.Load()).Seconds(), Buckets: make(map[float64]uint64, len(h.bounds))}
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		out.Buckets[b] = cum
	}
	return out
}

// fromNetloop converts a loop histogram (non-cumulative counts) to a snapshot.
func fromNetloop(h netloop.Histogram) HistogramSnapshot {
	out := HistogramSnapshot{Count: h.Count, Sum: h.Sum.Seconds(), Buckets: make(map[float64]uint64, len(h.Bounds))}
	var cum uint64
	for i, b := range h.Bounds {
		cum += h.Counts[i]
		out.Buckets[b.Seconds()] = cum
	}
	return out
}

func typeLabel(t uint32) string { return strconv.FormatUint(uint64(t), 10) }

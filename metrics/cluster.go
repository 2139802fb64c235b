package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enetkit/enetkit/session/cluster"
)

// Cluster collects the figures of a cluster node (package session/cluster):
// NATS messages published and received, losses and refusals while NATS
// was unreachable, request latency by service, the directory's size and
// the connection state. It is a cluster.Observer and a
// prometheus.Collector; its methods are safe for concurrent use.
//
//	cm, err := metrics.NewCluster(metrics.WithRegisterer(reg))
//	node, err := cluster.New(srv, cluster.WithURL(url), cluster.WithObserver(cm))
//	cm.SetNode(node)
type Cluster struct {
	ns       string
	node     atomic.Pointer[cluster.Node]
	requests sync.Map // service name -> *requestStats
	descs    [numClusterMetrics]*prometheus.Desc
}

type requestStats struct {
	errors  atomic.Int64
	latency histogram
}

// clusterMetric identifies one metric of Cluster: an index into
// clusterDefs and Cluster.descs, so that a misspelt name does not compile.
type clusterMetric int

const (
	mcConnected clusterMetric = iota
	mcRejoinsTotal
	mcNodes
	mcUsers
	mcLocalUsers
	mcPublishedTotal
	mcReceivedTotal
	mcMalformedTotal
	mcLostTotal
	mcRefusedTotal
	mcKickedTotal
	mcRequestDurationSeconds
	mcRequestErrorsTotal
	numClusterMetrics
)

var clusterDefs = [numClusterMetrics]metricDef{
	mcConnected:              {"cluster_connected", "1 while the node is joined to its cluster (NATS reachable, directory in sync), else 0.", nil},
	mcRejoinsTotal:           {"cluster_rejoins_total", "Times the node rejoined after losing NATS.", nil},
	mcNodes:                  {"cluster_nodes", "Live nodes in the directory, this one included.", nil},
	mcUsers:                  {"cluster_users", "User bindings in the directory, on live nodes.", nil},
	mcLocalUsers:             {"cluster_local_users", "Bindings of this node's sessions.", nil},
	mcPublishedTotal:         {"cluster_published_total", "NATS messages published: pushes, broadcasts, requests, replies.", nil},
	mcReceivedTotal:          {"cluster_received_total", "NATS messages received: pushes, broadcasts, requests, replies.", nil},
	mcMalformedTotal:         {"cluster_malformed_total", "NATS messages from other nodes that did not parse.", nil},
	mcLostTotal:              {"cluster_lost_total", "NATS messages of pushes and broadcasts not published because NATS was unreachable.", nil},
	mcRefusedTotal:           {"cluster_refused_total", "Cluster calls refused because NATS was unreachable.", nil},
	mcKickedTotal:            {"cluster_kicked_total", "Local sessions kicked by a newer login of their user elsewhere.", nil},
	mcRequestDurationSeconds: {"cluster_request_duration_seconds", "Latency of requests to other nodes, by service.", []string{"service"}},
	mcRequestErrorsTotal:     {"cluster_request_errors_total", "Failed requests, by service.", []string{"service"}},
}

// NewCluster returns a Cluster collector, registered with
// WithRegisterer's registry if any (WithNamespace applies too). Give it to
// cluster.New with cluster.WithObserver, then the node to SetNode.
func NewCluster(opts ...Option) (*Cluster, error) {
	m, err := apply(opts)
	if err != nil {
		return nil, err
	}
	c := &Cluster{ns: m.ns}
	for i, def := range clusterDefs {
		c.descs[i] = prometheus.NewDesc(prometheus.BuildFQName(c.ns, "", def.name), def.help, def.labels, nil)
	}
	if err := register(m.reg, c); err != nil {
		return nil, err
	}
	return c, nil
}

// SetNode sets the node whose counters are collected.
func (c *Cluster) SetNode(n *cluster.Node) { c.node.Store(n) }

// RequestDone implements cluster.Observer.
func (c *Cluster) RequestDone(service string, d time.Duration, err error) {
	v, ok := c.requests.Load(service)
	if !ok {
		r := &requestStats{}
		r.latency.init(latencyBounds)
		v, _ = c.requests.LoadOrStore(service, r)
	}
	r := v.(*requestStats)
	r.latency.observe(d)
	if err != nil {
		r.errors.Add(1)
	}
}

// Describe implements prometheus.Collector.
func (c *Cluster) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Cluster) Collect(ch chan<- prometheus.Metric) {
	metric := func(name clusterMetric, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], t, v, labels...)
	}
	if n := c.node.Load(); n != nil {
		st := n.Stats()
		connected := 0.0
		if st.Connected {
			connected = 1
		}
		rejoins := 0.0
		if st.Joins > 0 {
			rejoins = float64(st.Joins - 1)
		}
		metric(mcConnected, prometheus.GaugeValue, connected)
		metric(mcRejoinsTotal, prometheus.CounterValue, rejoins)
		metric(mcNodes, prometheus.GaugeValue, float64(st.Nodes))
		metric(mcUsers, prometheus.GaugeValue, float64(st.Users))
		metric(mcLocalUsers, prometheus.GaugeValue, float64(st.Local))
		metric(mcPublishedTotal, prometheus.CounterValue, float64(st.Published))
		metric(mcReceivedTotal, prometheus.CounterValue, float64(st.Received))
		metric(mcMalformedTotal, prometheus.CounterValue, float64(st.Malformed))
		metric(mcLostTotal, prometheus.CounterValue, float64(st.Lost))
		metric(mcRefusedTotal, prometheus.CounterValue, float64(st.Refused))
		metric(mcKickedTotal, prometheus.CounterValue, float64(st.Kicked))
	}
	c.requests.Range(func(k, v any) bool {
		r, svc := v.(*requestStats), k.(string)
		h := r.latency.snapshot()
		ch <- prometheus.MustNewConstHistogram(c.descs[mcRequestDurationSeconds], h.Count, h.Sum, h.Buckets, svc)
		metric(mcRequestErrorsTotal, prometheus.CounterValue, float64(r.errors.Load()), svc)
		return true
	})
}

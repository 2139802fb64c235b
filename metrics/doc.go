// Package metrics exports the health of netloop hosts and the quality of
// their connections, with the figures of session servers and dispatch
// muxes, to Prometheus (github.com/prometheus/client_golang) or as a plain
// Go Snapshot.
//
// # Usage
//
//	m, err := metrics.New(metrics.WithRegisterer(prometheus.DefaultRegisterer)) // without it: Snapshot only
//	host, err := netloop.New(addr, netloop.WithTiming())
//	m.AddHost("game", host)
//	mux, err := dispatch.NewMux(dispatch.WithObserver(m))
//	srv, err := session.New(host, mux, session.WithObserver(m))
//	http.Handle("/metrics", promhttp.Handler())
//
// # What it costs
//
// Nothing is taken on a message's path but atomic adds: the host's figures
// are counted by its loop goroutine in plain fields and read, through the
// loop, only when Prometheus scrapes or Snapshot is called. Per-peer series
// (RTT, RTT variance, loss, throttle, reliable data in flight, queued and
// unacknowledged commands, bytes) are opt-in with WithPeerMetrics, since
// they add a series set per peer.
//
// # Names
//
// Metrics are named <namespace>_host_…, _peer_…, _session(s)_… and
// _dispatch_…, with base units (seconds, bytes, ratios) and _total on
// counters, labelled by host name, peer ID, event kind, flag, reason or
// message type (types are those registered with the mux, so the label's
// values are bounded).
package metrics

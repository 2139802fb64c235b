package metrics

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enetkit/enetkit/netloop"
)

// metricDef is one exported metric: name (after the namespace), help, labels.
type metricDef struct {
	name, help string
	labels     []string
}

var defs = []metricDef{
	{"host_sent_bytes_total", "Bytes sent by the host's socket, ENet headers included.", []string{"host"}},
	{"host_received_bytes_total", "Bytes received by the host's socket.", []string{"host"}},
	{"host_sent_datagrams_total", "Datagrams sent.", []string{"host"}},
	{"host_received_datagrams_total", "Datagrams received.", []string{"host"}},
	{"host_events_total", "Events delivered by the host, by kind.", []string{"host", "kind"}},
	{"host_messages_sent_total", "Messages queued for sending, per peer, by flag.", []string{"host", "flag"}},
	{"host_sends_rejected_total", "Sends dropped because the peer went away or ENet refused them.", []string{"host"}},
	{"host_command_queue_length", "Commands waiting for the host's loop.", []string{"host"}},
	{"host_pending_events", "Events waiting for a consumer that has fallen behind.", []string{"host"}},
	{"host_events_dropped_total", "Receive events dropped by the overflow policy.", []string{"host"}},
	{"host_peers_dropped_total", "Peers disconnected by the overflow policy.", []string{"host"}},
	{"host_malformed_datagrams_total", "Datagrams that fail the header check (ENet drops them).", []string{"host"}},
	{"host_service_errors_total", "Failed enet_host_service calls (e.g. oversized datagrams).", []string{"host"}},
	{"host_pending_event_bytes", "Payload bytes of the events waiting for a consumer that has fallen behind.", []string{"host"}},
	{"host_outbound_dropped_total", "Unreliable messages not queued: their peer's outbound queue was over its limit.", []string{"host"}},
	{"host_throttled_total", "Unreliable messages ENet's packet throttle dropped unsent.", []string{"host"}},
	{"host_peers_over_limit_total", "Peers disconnected because their outbound queue was over its limit.", []string{"host"}},
	{"host_half_open_peers", "Peer slots whose CONNECT was answered and not yet acknowledged.", []string{"host"}},
	{"host_half_open_evicted_total", "Half-open slots reset to admit a newer CONNECT.", []string{"host"}},
	{"host_connects_refused_total", "CONNECTs refused, by reason (full: no slot; address: per-address limit).", []string{"host", "reason"}},
	{"host_connected_peers", "Connected peers.", []string{"host"}},
	{"host_peer_slots", "Peer slots of the host.", []string{"host"}},
	{"host_loop_iterations_total", "Iterations of the host's loop.", []string{"host"}},
	{"host_loop_parks_total", "Times the host's loop waited on the socket.", []string{"host"}},
	{"host_loop_spins_total", "Times the host's loop polled, idle, and something came.", []string{"host"}},
	{"host_loop_iteration_duration_seconds", "Duration of loop iterations (with netloop.WithTiming).", []string{"host"}},
	{"host_service_duration_seconds", "Duration of enet_host_service calls (with netloop.WithTiming).", []string{"host"}},

	{"peer_rtt_seconds", "Mean round trip time.", []string{"host", "peer"}},
	{"peer_rtt_variance_seconds", "Round trip time variance.", []string{"host", "peer"}},
	{"peer_last_rtt_seconds", "Last round trip time.", []string{"host", "peer"}},
	{"peer_packet_loss_ratio", "Mean loss of reliable packets.", []string{"host", "peer"}},
	{"peer_packet_loss_variance_ratio", "Variance of the packet loss.", []string{"host", "peer"}},
	{"peer_packet_throttle_ratio", "Probability that an unreliable packet is sent.", []string{"host", "peer"}},
	{"peer_reliable_in_flight_bytes", "Reliable data sent and not yet acknowledged.", []string{"host", "peer"}},
	{"peer_queued_commands", "Commands (messages or fragments) waiting to be sent to the peer.", []string{"host", "peer"}},
	{"peer_unacked_commands", "Reliable commands sent to the peer and not yet acknowledged.", []string{"host", "peer"}},
	{"peer_sent_bytes_total", "Message payload bytes sent to the peer.", []string{"host", "peer"}},
	{"peer_received_bytes_total", "Message payload bytes received from the peer.", []string{"host", "peer"}},
	{"peer_queued_bytes", "Bytes ENet holds for the peer: queued and unacknowledged commands.", []string{"host", "peer"}},
	{"peer_throttled_total", "Unreliable messages to the peer alone that ENet's packet throttle dropped.", []string{"host", "peer"}},

	{"sessions_started_total", "Sessions started.", nil},
	{"sessions_live", "Sessions running.", nil},
	{"sessions_ended_total", "Sessions ended, by reason.", []string{"reason"}},
	{"session_duration_seconds", "Lifetime of ended sessions.", nil},
	{"session_messages_dropped_total", "Messages dropped by the slow-consumer policy.", nil},
	{"session_handler_failures_total", "Session handlers that failed, by kind (error, panic).", []string{"kind"}},

	{"dispatch_messages_total", "Messages handled, by type.", []string{"type"}},
	{"dispatch_handler_errors_total", "Handler errors, by type.", []string{"type"}},
	{"dispatch_handler_duration_seconds", "Handler latency, by type.", []string{"type"}},
	{"dispatch_rejected_total", "Bad messages, by reason.", []string{"reason"}},
}

func (m *Metrics) describe() map[string]*prometheus.Desc {
	d := make(map[string]*prometheus.Desc, len(defs))
	for _, def := range defs {
		d[def.name] = prometheus.NewDesc(prometheus.BuildFQName(m.ns, "", def.name), def.help, def.labels, nil)
	}
	return d
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads the hosts through
// their loops (bounded by the scrape timeout) and the rest from atomics.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.descs[name], prometheus.CounterValue, v, labels...)
	}
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.descs[name], prometheus.GaugeValue, v, labels...)
	}
	hist := func(name string, h HistogramSnapshot, labels ...string) {
		ch <- prometheus.MustNewConstHistogram(m.descs[name], h.Count, h.Sum, h.Buckets, labels...)
	}
	s := m.Snapshot(context.Background())
	for _, h := range s.Hosts {
		st, n := h.Stats, h.Name
		counter("host_sent_bytes_total", float64(st.SentBytes), n)
		counter("host_received_bytes_total", float64(st.ReceivedBytes), n)
		counter("host_sent_datagrams_total", float64(st.SentDatagrams), n)
		counter("host_received_datagrams_total", float64(st.ReceivedDatagrams), n)
		counter("host_events_total", float64(st.Connects), n, "connect")
		counter("host_events_total", float64(st.Receives), n, "receive")
		counter("host_events_total", float64(st.Disconnects), n, "disconnect")
		for f, v := range st.SentByFlag {
			counter("host_messages_sent_total", float64(v), n, netloop.Flag(f).String())
		}
		counter("host_sends_rejected_total", float64(st.SendsRejected), n)
		gauge("host_command_queue_length", float64(st.QueuedCommands), n)
		gauge("host_pending_events", float64(st.PendingEvents), n)
		counter("host_events_dropped_total", float64(st.EventsDropped), n)
		counter("host_peers_dropped_total", float64(st.PeersDropped), n)
		counter("host_malformed_datagrams_total", float64(st.Malformed), n)
		counter("host_service_errors_total", float64(st.ServiceErrors), n)
		gauge("host_pending_event_bytes", float64(st.PendingBytes), n)
		counter("host_outbound_dropped_total", float64(st.Dropped), n)
		counter("host_throttled_total", float64(st.Throttled), n)
		counter("host_peers_over_limit_total", float64(st.PeersOverLimit), n)
		gauge("host_half_open_peers", float64(st.HalfOpen), n)
		counter("host_half_open_evicted_total", float64(st.HalfOpenEvicted), n)
		counter("host_connects_refused_total", float64(st.ConnectsRefused), n, "full")
		counter("host_connects_refused_total", float64(st.ConnectsRefusedAddress), n, "address")
		gauge("host_connected_peers", float64(st.ConnectedPeers), n)
		gauge("host_peer_slots", float64(st.PeerCount), n)
		counter("host_loop_iterations_total", float64(st.Iterations), n)
		counter("host_loop_parks_total", float64(st.Parks), n)
		counter("host_loop_spins_total", float64(st.Spins), n)
		if st.Iteration.Count > 0 {
			hist("host_loop_iteration_duration_seconds", fromNetloop(st.Iteration), n)
			hist("host_service_duration_seconds", fromNetloop(st.Service), n)
		}
		for _, p := range h.Peers {
			id := strconv.FormatUint(p.Peer.ID(), 10)
			gauge("peer_rtt_seconds", p.RTT.Seconds(), n, id)
			gauge("peer_rtt_variance_seconds", p.RTTVariance.Seconds(), n, id)
			gauge("peer_last_rtt_seconds", p.LastRTT.Seconds(), n, id)
			gauge("peer_packet_loss_ratio", p.PacketLoss, n, id)
			gauge("peer_packet_loss_variance_ratio", p.PacketLossVariance, n, id)
			gauge("peer_packet_throttle_ratio", float64(p.PacketThrottle)/netloop.ThrottleScale, n, id)
			gauge("peer_reliable_in_flight_bytes", float64(p.ReliableDataInTransit), n, id)
			gauge("peer_queued_commands", float64(p.QueuedCommands), n, id)
			gauge("peer_unacked_commands", float64(p.UnackedCommands), n, id)
			counter("peer_sent_bytes_total", float64(p.BytesSent), n, id)
			counter("peer_received_bytes_total", float64(p.BytesReceived), n, id)
			gauge("peer_queued_bytes", float64(p.QueuedBytes), n, id)
			counter("peer_throttled_total", float64(p.Throttled), n, id)
		}
	}
	ss := s.Sessions
	counter("sessions_started_total", float64(ss.Started))
	gauge("sessions_live", float64(ss.Live))
	for r, v := range ss.Ended {
		counter("sessions_ended_total", float64(v), r)
	}
	hist("session_duration_seconds", ss.Lifetime)
	counter("session_messages_dropped_total", float64(ss.Dropped))
	counter("session_handler_failures_total", float64(ss.HandlerErrors), "error")
	counter("session_handler_failures_total", float64(ss.HandlerPanics), "panic")
	for t, ts := range s.Dispatch.Types {
		l := typeLabel(t)
		counter("dispatch_messages_total", float64(ts.Handled), l)
		counter("dispatch_handler_errors_total", float64(ts.Errors), l)
		hist("dispatch_handler_duration_seconds", ts.Latency, l)
	}
	for r, v := range s.Dispatch.Rejected {
		counter("dispatch_rejected_total", float64(v), r)
	}
}

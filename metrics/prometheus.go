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

// metric identifies one exported metric: an index into defs and descs, so
// that a name is written once and a typo does not compile.
type metric int

const (
	mHostSentBytesTotal metric = iota
	mHostReceivedBytesTotal
	mHostSentDatagramsTotal
	mHostReceivedDatagramsTotal
	mHostEventsTotal
	mHostMessagesSentTotal
	mHostSendsRejectedTotal
	mHostCommandQueueLength
	mHostPendingEvents
	mHostEventsDroppedTotal
	mHostPeersDroppedTotal
	mHostMalformedDatagramsTotal
	mHostServiceErrorsTotal
	mHostPendingEventBytes
	mHostOutboundDroppedTotal
	mHostThrottledTotal
	mHostPeersOverLimitTotal
	mHostHalfOpenPeers
	mHostHalfOpenEvictedTotal
	mHostConnectsRefusedTotal
	mHostConnectedPeers
	mHostPeerSlots
	mHostLoopIterationsTotal
	mHostLoopParksTotal
	mHostLoopSpinsTotal
	mHostLoopIterationDurationSeconds
	mHostServiceDurationSeconds
	mPeerRttSeconds
	mPeerRttVarianceSeconds
	mPeerLastRttSeconds
	mPeerPacketLossRatio
	mPeerPacketLossVarianceRatio
	mPeerPacketThrottleRatio
	mPeerReliableInFlightBytes
	mPeerQueuedCommands
	mPeerUnackedCommands
	mPeerSentBytesTotal
	mPeerReceivedBytesTotal
	mPeerQueuedBytes
	mPeerThrottledTotal
	mSessionsStartedTotal
	mSessionsLive
	mSessionsEndedTotal
	mSessionDurationSeconds
	mSessionMessagesDroppedTotal
	mSessionHandlerFailuresTotal
	mDispatchMessagesTotal
	mDispatchHandlerErrorsTotal
	mDispatchHandlerDurationSeconds
	mDispatchRejectedTotal
	numMetrics
)

var defs = [numMetrics]metricDef{
	mHostSentBytesTotal:               {"host_sent_bytes_total", "Bytes sent by the host's socket, ENet headers included.", []string{"host"}},
	mHostReceivedBytesTotal:           {"host_received_bytes_total", "Bytes received by the host's socket.", []string{"host"}},
	mHostSentDatagramsTotal:           {"host_sent_datagrams_total", "Datagrams sent.", []string{"host"}},
	mHostReceivedDatagramsTotal:       {"host_received_datagrams_total", "Datagrams received.", []string{"host"}},
	mHostEventsTotal:                  {"host_events_total", "Events delivered by the host, by kind.", []string{"host", "kind"}},
	mHostMessagesSentTotal:            {"host_messages_sent_total", "Messages queued for sending, per peer, by flag.", []string{"host", "flag"}},
	mHostSendsRejectedTotal:           {"host_sends_rejected_total", "Sends dropped because the peer went away or ENet refused them.", []string{"host"}},
	mHostCommandQueueLength:           {"host_command_queue_length", "Commands waiting for the host's loop.", []string{"host"}},
	mHostPendingEvents:                {"host_pending_events", "Events waiting for a consumer that has fallen behind.", []string{"host"}},
	mHostEventsDroppedTotal:           {"host_events_dropped_total", "Receive events dropped by the overflow policy.", []string{"host"}},
	mHostPeersDroppedTotal:            {"host_peers_dropped_total", "Peers disconnected by the overflow policy.", []string{"host"}},
	mHostMalformedDatagramsTotal:      {"host_malformed_datagrams_total", "Datagrams that fail the header check (ENet drops them).", []string{"host"}},
	mHostServiceErrorsTotal:           {"host_service_errors_total", "Failed enet_host_service calls (e.g. oversized datagrams).", []string{"host"}},
	mHostPendingEventBytes:            {"host_pending_event_bytes", "Payload bytes of the events waiting for a consumer that has fallen behind.", []string{"host"}},
	mHostOutboundDroppedTotal:         {"host_outbound_dropped_total", "Unreliable messages not queued: their peer's outbound queue was over its limit.", []string{"host"}},
	mHostThrottledTotal:               {"host_throttled_total", "Unreliable messages ENet's packet throttle dropped unsent.", []string{"host"}},
	mHostPeersOverLimitTotal:          {"host_peers_over_limit_total", "Peers disconnected because their outbound queue was over its limit.", []string{"host"}},
	mHostHalfOpenPeers:                {"host_half_open_peers", "Peer slots whose CONNECT was answered and not yet acknowledged.", []string{"host"}},
	mHostHalfOpenEvictedTotal:         {"host_half_open_evicted_total", "Half-open slots reset to admit a newer CONNECT.", []string{"host"}},
	mHostConnectsRefusedTotal:         {"host_connects_refused_total", "CONNECTs refused, by reason (full: no slot; address: per-address limit).", []string{"host", "reason"}},
	mHostConnectedPeers:               {"host_connected_peers", "Connected peers.", []string{"host"}},
	mHostPeerSlots:                    {"host_peer_slots", "Peer slots of the host.", []string{"host"}},
	mHostLoopIterationsTotal:          {"host_loop_iterations_total", "Iterations of the host's loop.", []string{"host"}},
	mHostLoopParksTotal:               {"host_loop_parks_total", "Times the host's loop waited on the socket.", []string{"host"}},
	mHostLoopSpinsTotal:               {"host_loop_spins_total", "Times the host's loop polled, idle, and something came.", []string{"host"}},
	mHostLoopIterationDurationSeconds: {"host_loop_iteration_duration_seconds", "Duration of loop iterations (with netloop.WithTiming).", []string{"host"}},
	mHostServiceDurationSeconds:       {"host_service_duration_seconds", "Duration of enet_host_service calls (with netloop.WithTiming).", []string{"host"}},

	mPeerRttSeconds:              {"peer_rtt_seconds", "Mean round trip time.", []string{"host", "peer"}},
	mPeerRttVarianceSeconds:      {"peer_rtt_variance_seconds", "Round trip time variance.", []string{"host", "peer"}},
	mPeerLastRttSeconds:          {"peer_last_rtt_seconds", "Last round trip time.", []string{"host", "peer"}},
	mPeerPacketLossRatio:         {"peer_packet_loss_ratio", "Mean loss of reliable packets.", []string{"host", "peer"}},
	mPeerPacketLossVarianceRatio: {"peer_packet_loss_variance_ratio", "Variance of the packet loss.", []string{"host", "peer"}},
	mPeerPacketThrottleRatio:     {"peer_packet_throttle_ratio", "Probability that an unreliable packet is sent.", []string{"host", "peer"}},
	mPeerReliableInFlightBytes:   {"peer_reliable_in_flight_bytes", "Reliable data sent and not yet acknowledged.", []string{"host", "peer"}},
	mPeerQueuedCommands:          {"peer_queued_commands", "Commands (messages or fragments) waiting to be sent to the peer.", []string{"host", "peer"}},
	mPeerUnackedCommands:         {"peer_unacked_commands", "Reliable commands sent to the peer and not yet acknowledged.", []string{"host", "peer"}},
	mPeerSentBytesTotal:          {"peer_sent_bytes_total", "Message payload bytes sent to the peer.", []string{"host", "peer"}},
	mPeerReceivedBytesTotal:      {"peer_received_bytes_total", "Message payload bytes received from the peer.", []string{"host", "peer"}},
	mPeerQueuedBytes:             {"peer_queued_bytes", "Bytes ENet holds for the peer: queued and unacknowledged commands.", []string{"host", "peer"}},
	mPeerThrottledTotal:          {"peer_throttled_total", "Unreliable messages to the peer alone that ENet's packet throttle dropped.", []string{"host", "peer"}},

	mSessionsStartedTotal:        {"sessions_started_total", "Sessions started.", nil},
	mSessionsLive:                {"sessions_live", "Sessions running.", nil},
	mSessionsEndedTotal:          {"sessions_ended_total", "Sessions ended, by reason.", []string{"reason"}},
	mSessionDurationSeconds:      {"session_duration_seconds", "Lifetime of ended sessions.", nil},
	mSessionMessagesDroppedTotal: {"session_messages_dropped_total", "Messages dropped by the slow-consumer policy.", nil},
	mSessionHandlerFailuresTotal: {"session_handler_failures_total", "Session handlers that failed, by kind (error, panic).", []string{"kind"}},

	mDispatchMessagesTotal:          {"dispatch_messages_total", "Messages handled, by type.", []string{"type"}},
	mDispatchHandlerErrorsTotal:     {"dispatch_handler_errors_total", "Handler errors, by type.", []string{"type"}},
	mDispatchHandlerDurationSeconds: {"dispatch_handler_duration_seconds", "Handler latency, by type.", []string{"type"}},
	mDispatchRejectedTotal:          {"dispatch_rejected_total", "Bad messages, by reason.", []string{"reason"}},
}

func (m *Metrics) describe() *[numMetrics]*prometheus.Desc {
	var d [numMetrics]*prometheus.Desc
	for i, def := range defs {
		d[i] = prometheus.NewDesc(prometheus.BuildFQName(m.ns, "", def.name), def.help, def.labels, nil)
	}
	return &d
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
	counter := func(name metric, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.descs[name], prometheus.CounterValue, v, labels...)
	}
	gauge := func(name metric, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.descs[name], prometheus.GaugeValue, v, labels...)
	}
	hist := func(name metric, h HistogramSnapshot, labels ...string) {
		ch <- prometheus.MustNewConstHistogram(m.descs[name], h.Count, h.Sum, h.Buckets, labels...)
	}
	s := m.Snapshot(context.Background())
	for _, h := range s.Hosts {
		st, n := h.Stats, h.Name
		counter(mHostSentBytesTotal, float64(st.SentBytes), n)
		counter(mHostReceivedBytesTotal, float64(st.ReceivedBytes), n)
		counter(mHostSentDatagramsTotal, float64(st.SentDatagrams), n)
		counter(mHostReceivedDatagramsTotal, float64(st.ReceivedDatagrams), n)
		counter(mHostEventsTotal, float64(st.Connects), n, "connect")
		counter(mHostEventsTotal, float64(st.Receives), n, "receive")
		counter(mHostEventsTotal, float64(st.Disconnects), n, "disconnect")
		for f, v := range st.SentByFlag {
			counter(mHostMessagesSentTotal, float64(v), n, netloop.Flag(f).String())
		}
		counter(mHostSendsRejectedTotal, float64(st.SendsRejected), n)
		gauge(mHostCommandQueueLength, float64(st.QueuedCommands), n)
		gauge(mHostPendingEvents, float64(st.PendingEvents), n)
		counter(mHostEventsDroppedTotal, float64(st.EventsDropped), n)
		counter(mHostPeersDroppedTotal, float64(st.PeersDropped), n)
		counter(mHostMalformedDatagramsTotal, float64(st.Malformed), n)
		counter(mHostServiceErrorsTotal, float64(st.ServiceErrors), n)
		gauge(mHostPendingEventBytes, float64(st.PendingBytes), n)
		counter(mHostOutboundDroppedTotal, float64(st.Dropped), n)
		counter(mHostThrottledTotal, float64(st.Throttled), n)
		counter(mHostPeersOverLimitTotal, float64(st.PeersOverLimit), n)
		gauge(mHostHalfOpenPeers, float64(st.HalfOpen), n)
		counter(mHostHalfOpenEvictedTotal, float64(st.HalfOpenEvicted), n)
		counter(mHostConnectsRefusedTotal, float64(st.ConnectsRefused), n, "full")
		counter(mHostConnectsRefusedTotal, float64(st.ConnectsRefusedAddress), n, "address")
		gauge(mHostConnectedPeers, float64(st.ConnectedPeers), n)
		gauge(mHostPeerSlots, float64(st.PeerCount), n)
		counter(mHostLoopIterationsTotal, float64(st.Iterations), n)
		counter(mHostLoopParksTotal, float64(st.Parks), n)
		counter(mHostLoopSpinsTotal, float64(st.Spins), n)
		if st.Iteration.Count > 0 {
			hist(mHostLoopIterationDurationSeconds, fromNetloop(st.Iteration), n)
			hist(mHostServiceDurationSeconds, fromNetloop(st.Service), n)
		}
		for _, p := range h.Peers {
			id := strconv.FormatUint(p.Peer.ID(), 10)
			gauge(mPeerRttSeconds, p.RTT.Seconds(), n, id)
			gauge(mPeerRttVarianceSeconds, p.RTTVariance.Seconds(), n, id)
			gauge(mPeerLastRttSeconds, p.LastRTT.Seconds(), n, id)
			gauge(mPeerPacketLossRatio, p.PacketLoss, n, id)
			gauge(mPeerPacketLossVarianceRatio, p.PacketLossVariance, n, id)
			gauge(mPeerPacketThrottleRatio, float64(p.PacketThrottle)/netloop.ThrottleScale, n, id)
			gauge(mPeerReliableInFlightBytes, float64(p.ReliableDataInTransit), n, id)
			gauge(mPeerQueuedCommands, float64(p.QueuedCommands), n, id)
			gauge(mPeerUnackedCommands, float64(p.UnackedCommands), n, id)
			counter(mPeerSentBytesTotal, float64(p.BytesSent), n, id)
			counter(mPeerReceivedBytesTotal, float64(p.BytesReceived), n, id)
			gauge(mPeerQueuedBytes, float64(p.QueuedBytes), n, id)
			counter(mPeerThrottledTotal, float64(p.Throttled), n, id)
		}
	}
	ss := s.Sessions
	counter(mSessionsStartedTotal, float64(ss.Started))
	gauge(mSessionsLive, float64(ss.Live))
	for r, v := range ss.Ended {
		counter(mSessionsEndedTotal, float64(v), r)
	}
	hist(mSessionDurationSeconds, ss.Lifetime)
	counter(mSessionMessagesDroppedTotal, float64(ss.Dropped))
	counter(mSessionHandlerFailuresTotal, float64(ss.HandlerErrors), "error")
	counter(mSessionHandlerFailuresTotal, float64(ss.HandlerPanics), "panic")
	for t, ts := range s.Dispatch.Types {
		l := typeLabel(t)
		counter(mDispatchMessagesTotal, float64(ts.Handled), l)
		counter(mDispatchHandlerErrorsTotal, float64(ts.Errors), l)
		hist(mDispatchHandlerDurationSeconds, ts.Latency, l)
	}
	for r, v := range s.Dispatch.Rejected {
		counter(mDispatchRejectedTotal, float64(v), r)
	}
}

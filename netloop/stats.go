package netloop

import (
	"reflect"
	"time"
)

// Stats are a host's counters since it was created.
type Stats struct {
	SentBytes         uint64 // ENet's totalSentData, including protocol overhead
	SentDatagrams     uint64
	ReceivedBytes     uint64 // ENet's totalReceivedData
	ReceivedDatagrams uint64
	ServiceTime       uint32 // ENet's clock, ms, at the last service or flush

	PeerCount int // slots (capacity)

	// The socket's buffer sizes as the kernel reports them (Linux reports
	// twice what was asked, capped by net.core.rmem_max and wmem_max).
	SocketReceiveBuffer, SocketSendBuffer int
	ConnectedPeers                        int

	Connects    uint64 // events delivered or queued, by kind
	Disconnects uint64
	Receives    uint64
	SentByFlag  [3]uint64 // messages queued for sending, indexed by Flag
	Broadcasts  uint64

	SendsRejected  uint64 // sends the loop refused: the peer went away or ENet refused
	EventsDropped  uint64 // receive events dropped by the overflow policy
	PeersDropped   uint64 // peers disconnected by the overflow policy
	PendingEvents  int    // events waiting for the consumer beyond the channel's buffer
	PendingBytes   int    // their payload bytes
	QueuedCommands int    // commands waiting in the command channel

	// Outgoing messages lost on this side. Dropped: unreliable messages not
	// queued because their peer's queue was over the outbound limit, or
	// (rarely) because an unreliable message above the MTU met a full
	// unreliable sequence window on its channel. Throttled: unreliable
	// messages ENet's packet throttle dropped unsent while their peer stayed
	// connected; a message shared by several peers (Broadcast, Multicast)
	// counts once, if the last of them drops it. PeersOverLimit: peers
	// disconnected by the outbound policy (ReasonOutboundLimit).
	Dropped, Throttled, PeersOverLimit uint64

	// The handshake defence. HalfOpen: slots whose CONNECT was answered
	// and whose peer has not acknowledged the answer yet. HalfOpenEvicted:
	// half-open slots reset to make room for a newer CONNECT.
	// ConnectsRefused: CONNECTs refused
	// because every slot held a connection; ConnectsRefusedAddress: because
	// their address held its limit (WithPerAddressLimit).
	HalfOpen                                int
	HalfOpenEvicted                         uint64
	ConnectsRefused, ConnectsRefusedAddress uint64

	// With WithTiming: durations of loop iterations and of the
	// enet_host_service calls in them (parked time is not in either).
	Iteration Histogram
	Service   Histogram

	Malformed     uint64 // datagrams failing the intercept's header scan
	ServiceErrors uint64 // enet_host_service failures (e.g. a datagram over 4096 bytes on 1.3.17), and datagrams the kernel refused to send
	Wakes         uint64 // wake-up datagrams consumed
	Iterations    uint64 // loop iterations
	Parks         uint64 // times the loop waited on the socket (see WithParkInterval)
	Spins         uint64 // times the loop polled, idle, and a datagram or command came (see WithSpin)
	HeldAcks      uint64 // service calls after which acknowledgements waited for the answers (see WithImmediateAcks)
	Reads         uint64 // system calls that read datagrams, up to 16 each: ReceivedDatagrams/Reads is the batch
	Writes        uint64 // system calls that sent datagrams, up to 32 each: SentDatagrams/Writes is the batch
}

// Histogram counts durations in fixed buckets. The loop keeps it without
// locks; Stats hands out a copy.
type Histogram struct {
	Bounds []time.Duration // upper bounds of the buckets, ascending; shared, read-only
	Counts []uint64        // Counts[i] counts observations in (Bounds[i-1], Bounds[i]]; the last, those above every bound
	Count  uint64
	Sum    time.Duration
}

// histogramBounds are the buckets of the loop's histograms: 1µs to 100ms.
var histogramBounds = []time.Duration{
	time.Microsecond, 2500 * time.Nanosecond, 5 * time.Microsecond, 10 * time.Microsecond,
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond,
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
}

func (h *Histogram) observe(d time.Duration) {
	if h.Counts == nil {
		h.Bounds = histogramBounds
		h.Counts = make([]uint64, len(histogramBounds)+1)
	}
	i := 0
	for i < len(h.Bounds) && d > h.Bounds[i] {
		i++
	}
	h.Counts[i]++
	h.Count++
	h.Sum += d
}

func (h Histogram) clone() Histogram {
	h.Counts = append([]uint64(nil), h.Counts...)
	return h
}

// SumStats adds up the Stats of several hosts: counters and sizes are
// summed, ServiceTime is the latest, histograms are merged.
func SumStats(stats ...Stats) Stats {
	var t Stats
	tv := reflect.ValueOf(&t).Elem()
	for _, s := range stats {
		sv := reflect.ValueOf(s)
		for i := range tv.NumField() {
			addField(tv.Field(i), sv.Field(i))
		}
		t.ServiceTime = max(t.ServiceTime, s.ServiceTime)
		t.Iteration = t.Iteration.merge(s.Iteration)
		t.Service = t.Service.merge(s.Service)
	}
	return t
}

package netloop

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Errors returned by Host. Check them with errors.Is.
var (
	// ErrClosed: the host has stopped, or is stopping, and takes no more work.
	ErrClosed = errors.New("netloop: host closed")
	// ErrStalePeer: the peer handle's connection has ended; its slot may
	// already serve another connection, which the handle never addresses.
	ErrStalePeer = errors.New("netloop: stale peer")
	// ErrForeignPeer: the peer handle belongs to another host, or is the zero Peer.
	ErrForeignPeer = errors.New("netloop: peer of another host")
	// ErrNotConnected: the peer exists but is not connected: an outgoing
	// connection still in progress, or one this side is disconnecting.
	ErrNotConnected = errors.New("netloop: peer not connected")
	// ErrChannel: the channel is not below the peer's (or host's) channel count.
	ErrChannel = errors.New("netloop: channel out of range")
	// ErrFlag: not one of Reliable, Unsequenced, Unreliable.
	ErrFlag = errors.New("netloop: unknown packet flag")
	// ErrEmpty: a message has no data.
	ErrEmpty = errors.New("netloop: empty message")
	// ErrTooLarge: a message is larger than ENet's maximum packet size (MaxMessageSize).
	ErrTooLarge = errors.New("netloop: message too large")
	// ErrNoSlot: every peer slot of the host is in use.
	ErrNoSlot = errors.New("netloop: no free peer slot")
	// ErrAddress: an address string is malformed, unresolvable or not IPv4.
	ErrAddress = errors.New("netloop: bad address")
	// ErrRange: a numeric argument is outside what ENet accepts.
	ErrRange = errors.New("netloop: argument out of range")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("netloop: host already running")
)

// Limits of ENet 1.3.
const (
	// MaxPeers is the largest peer count a host can have.
	MaxPeers = 4095
	// MaxChannels is the largest channel count of a host or connection.
	MaxChannels = 255
	// MaxMessageSize is ENet's default maximum packet size, in bytes.
	MaxMessageSize = 32 << 20
)

// Flag is how a message is delivered. The zero value is Reliable, as in lua-enet.
type Flag uint8

const (
	// Reliable messages arrive, once, in the order they were sent on their channel.
	Reliable Flag = iota
	// Unsequenced messages may be lost, and arrive in any order, at most once.
	Unsequenced
	// Unreliable messages may be lost; those that arrive are in order on their
	// channel (older ones are dropped).
	Unreliable
)

var flagNames = [...]string{"reliable", "unsequenced", "unreliable"}

// String returns lua-enet's name of the flag.
func (f Flag) String() string {
	if int(f) < len(flagNames) {
		return flagNames[f]
	}
	return fmt.Sprintf("Flag(%d)", uint8(f))
}

// ParseFlag parses lua-enet's flag names.
func ParseFlag(s string) (Flag, error) {
	for i, n := range flagNames {
		if s == n {
			return Flag(i), nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrFlag, s)
}

// ENet packet flag bits.
const (
	packetReliable    = 1 << 0
	packetUnsequenced = 1 << 1
)

func (f Flag) enet() uint32 {
	switch f {
	case Reliable:
		return packetReliable
	case Unsequenced:
		return packetUnsequenced
	}
	return 0
}

func flagOf(bits uint32) Flag {
	switch {
	case bits&packetReliable != 0:
		return Reliable
	case bits&packetUnsequenced != 0:
		return Unsequenced
	}
	return Unreliable
}

// State is an ENet peer state.
type State uint8

// The states of ENetPeerState, in ENet's order.
const (
	StateDisconnected State = iota
	StateConnecting
	StateAcknowledgingConnect
	StateConnectionPending
	StateConnectionSucceeded
	StateConnected
	StateDisconnectLater
	StateDisconnecting
	StateAcknowledgingDisconnect
	StateZombie
	StateUnknown
)

var stateNames = [...]string{
	"disconnected", "connecting", "acknowledging_connect", "connection_pending",
	"connection_succeeded", "connected", "disconnect_later", "disconnecting",
	"acknowledging_disconnect", "zombie", "unknown",
}

// String returns lua-enet's name of the state; anything ENet does not
// define is "unknown".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return stateNames[StateUnknown]
}

// Kind is the kind of an Event.
type Kind uint8

const (
	// Connect: a connection is established (Event.Data is the connect data).
	Connect Kind = iota + 1
	// Receive: a message arrived (Channel, Flag, Payload).
	Receive
	// Disconnect: a connection ended or failed (Data, Reason).
	Disconnect
)

// String returns lua-enet's name of the event type.
func (k Kind) String() string {
	switch k {
	case Connect:
		return "connect"
	case Receive:
		return "receive"
	case Disconnect:
		return "disconnect"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Reason says why a connection ended.
type Reason uint8

const (
	// ReasonRemote: the peer disconnected; Event.Data is the data it sent.
	ReasonRemote Reason = iota + 1
	// ReasonTimeout: the peer stopped answering.
	ReasonTimeout
	// ReasonLocal: this side called Disconnect, DisconnectLater, DisconnectNow or Reset.
	ReasonLocal
	// ReasonShutdown: the host shut down.
	ReasonShutdown
	// ReasonConnectFailed: an outgoing connection never completed; no
	// Connect event came before this Disconnect.
	ReasonConnectFailed
	// ReasonOverflow: the consumer fell behind and the overflow policy
	// disconnected the peer (see Overflow).
	ReasonOverflow
	// ReasonOutboundLimit: what ENet held for the peer reached the outbound
	// limit and the outbound policy disconnected it (see WithOutboundLimit).
	ReasonOutboundLimit
	// ReasonRefused: an outgoing connection was refused by a netloop host:
	// Event.Data is RefusedFull or RefusedAddress. No Connect event came.
	ReasonRefused
)

var reasonNames = [...]string{"", "remote", "timeout", "local", "shutdown", "connect_failed", "overflow", "outbound_limit", "refused"}

// String names the reason.
func (r Reason) String() string {
	if r > 0 && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Event is something that happened on a host. Which fields are set depends
// on Kind. An Event is a plain value; Payload is Go memory that the receiver
// owns.
type Event struct {
	Kind     Kind
	Peer     Peer
	Channel  uint8          // Receive
	Flag     Flag           // Receive
	Reason   Reason         // Disconnect
	Data     uint32         // Connect, Disconnect: the user data of the (dis)connect
	Channels int            // Connect: the channel count agreed with the peer
	Addr     netip.AddrPort // the peer's address
	Payload  []byte         // Receive
}

// Peer is a handle to one connection of a Host. It is a small comparable
// value (use it as a map key) and safe to copy and share between goroutines.
// A Peer never outlives its connection: once the connection has ended, every
// call with it returns ErrStalePeer, even after ENet reuses the slot for
// another connection. The zero Peer is invalid.
type Peer struct {
	h  *Host
	id uint64 // unique in the process: sequence << 12 | slot index
}

const indexBits = 12

// ID returns a number that identifies this connection and is never reused
// while the process lives.
func (p Peer) ID() uint64 { return p.id }

// Index returns the peer's slot in its host, from 0 (lua-enet's peer:index()
// counts from 1). Slots are reused; IDs are not.
func (p Peer) Index() int { return int(p.id & (1<<indexBits - 1)) }

// String formats the peer as "peer/<id>".
func (p Peer) String() string { return fmt.Sprintf("peer/%d", p.id) }

// Throttle configures ENet's unreliable packet throttle (enet_peer_throttle_configure).
type Throttle struct {
	Interval     time.Duration // interval over which the lowest mean RTT is measured
	Acceleration uint32        // rate at which the throttle rises as RTT falls
	Deceleration uint32        // rate at which the throttle falls as RTT rises
}

// Timeout configures when ENet declares a peer lost (enet_peer_timeout).
type Timeout struct {
	Limit   uint32        // factor on the RTT-based retransmission timeout
	Minimum time.Duration // an unacknowledged reliable packet times out after at least this
	Maximum time.Duration // any unacknowledged packet times out after this
}

// PeerInfo is a snapshot of a connection, read inside the host's loop.
type PeerInfo struct {
	Peer      Peer
	State     State
	ConnectID uint32 // ENetPeer::connectID, the same on both ends
	Index     int    // slot index, from 0
	Channels  int
	Addr      netip.AddrPort

	RTT             time.Duration // mean round trip time
	RTTVariance     time.Duration
	LastRTT         time.Duration // the previous round trip time computation
	LastRTTVariance time.Duration
	LowestRTT       time.Duration

	PacketLoss          float64 // mean loss of reliable packets, 0..1
	PacketLossVariance  float64
	PacketThrottle      uint32 // 0..ThrottleScale: chance of sending an unreliable packet
	PacketThrottleLimit uint32
	Throttle            Throttle
	PingInterval        time.Duration
	Timeout             Timeout

	ReliableDataInTransit int // bytes of reliable data not yet acknowledged
	MTU                   int
	IncomingBandwidth     uint32 // the peer's declared bandwidth, bytes/s (0 = unlimited)
	OutgoingBandwidth     uint32
	PacketsSent           uint32 // ENet's counters for the current loss epoch
	PacketsLost           uint32
	QueuedCommands        int // commands (messages, or fragments of large ones) waiting to be sent
	UnackedCommands       int // reliable commands sent and not yet acknowledged

	// Totals of message payloads through this connection, counted by the loop.
	BytesSent, BytesReceived       uint64
	MessagesSent, MessagesReceived uint64

	// QueuedBytes is what ENet holds for the peer: queued and unacknowledged
	// commands, their payloads and allocations (see WithOutboundLimit).
	QueuedBytes int
	// Throttled counts unreliable messages sent to this peer alone that
	// ENet's packet throttle dropped unsent (see Stats.Throttled).
	Throttled uint64
}

func ms[T ~uint32](v T) time.Duration { return time.Duration(v) * time.Millisecond }

func toMS(d time.Duration) (uint32, error) {
	if d < 0 || d > time.Duration(1<<32-1)*time.Millisecond {
		return 0, fmt.Errorf("%w: duration %v", ErrRange, d)
	}
	return uint32(d / time.Millisecond), nil
}

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
	ServiceErrors uint64 // enet_host_service failures (e.g. a datagram over 4096 bytes on 1.3.17)
	Wakes         uint64 // wake-up datagrams consumed
	Iterations    uint64 // loop iterations
	Parks         uint64 // times the loop waited on the socket (see WithParkInterval)
	Spins         uint64 // times the loop polled, idle, and a datagram or command came (see WithSpin)
	HeldAcks      uint64 // service calls after which acknowledgements waited for the answers (see WithImmediateAcks)
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

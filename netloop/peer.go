package netloop

import (
	"fmt"
	"net/netip"
	"time"
)

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

// Throttle configures ENet's unreliable packet throttle
// (enet_peer_throttle_configure). A zero field means ENet's default, as in
// Timeout: an interval of 5s, acceleration and deceleration of 2 (out of
// ThrottleScale). ENet's deceleration of 0, a throttle that never falls, is
// Steady.
type Throttle struct {
	Interval     time.Duration // interval over which the lowest mean RTT is measured
	Acceleration uint32        // rate at which the throttle rises as RTT falls
	Deceleration uint32        // rate at which the throttle falls as RTT rises
	// Steady keeps the throttle from falling (a deceleration of 0, and
	// Deceleration is ignored): ENet then drops no unreliable packet
	// however the RTT rises, which suits small, frequent snapshots.
	Steady bool
}

// Timeout configures when ENet declares a peer lost (enet_peer_timeout).
// A zero field means ENet's default: a limit of 32, a minimum of 5s and a
// maximum of 30s.
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

// ENet's scales for a peer's packet throttle and loss.
const (
	// ThrottleScale is ENet's scale for a peer's packet throttle (32 means no
	// unreliable packet is dropped).
	ThrottleScale = 32
	// LossScale is ENet's fixed-point scale for a peer's packet loss.
	LossScale = 1 << 16
)

// ENet's throttle defaults (ENET_PEER_PACKET_THROTTLE_INTERVAL, _ACCELERATION,
// _DECELERATION), which zero fields of Throttle stand for.
const (
	throttleInterval     = 5000
	throttleAcceleration = 2
	throttleDeceleration = 2
)

// millis returns t in ENet's units, with ENet's defaults for zero fields.
func (t Throttle) millis() (interval, acc, dec uint32, err error) {
	if interval, err = toMS(t.Interval); err != nil {
		return 0, 0, 0, err
	}
	acc, dec = t.Acceleration, t.Deceleration
	if interval == 0 {
		interval = throttleInterval
	}
	if acc == 0 {
		acc = throttleAcceleration
	}
	switch {
	case t.Steady:
		dec = 0
	case dec == 0:
		dec = throttleDeceleration
	}
	return interval, acc, dec, nil
}

// millis returns t in ENet's units; zero stays zero, which ENet takes as
// its default.
func (t Timeout) millis() (limit, min, max uint32, err error) {
	if min, err = toMS(t.Minimum); err != nil {
		return 0, 0, 0, err
	}
	if max, err = toMS(t.Maximum); err != nil {
		return 0, 0, 0, err
	}
	if min != 0 && max != 0 && min > max {
		return 0, 0, 0, fmt.Errorf("%w: timeout minimum %v above maximum %v", ErrRange, t.Minimum, t.Maximum)
	}
	return t.Limit, min, max, nil
}

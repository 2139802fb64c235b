package netloop

import (
	"fmt"
	"time"

	"go.uber.org/zap"
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

// SlowPolicy is what the loop does with a received message when the consumer
// of Events is so far behind that MaxPending events are already waiting.
// Connect and Disconnect events are never dropped.
type SlowPolicy uint8

const (
	// SlowDropUnreliable drops unreliable and unsequenced messages; a reliable
	// message that does not fit disconnects its peer (Reason ReasonSlow),
	// so that no connection ever sees a gap in its reliable stream.
	// The peer's remaining messages are dropped until its Disconnect event.
	SlowDropUnreliable SlowPolicy = iota
	// SlowDropAll drops every message that does not fit, reliable or not.
	SlowDropAll
)

// OutboundPolicy is what a host does with a message for a peer for which ENet
// already holds as many bytes as the outbound limit allows (see
// WithOutboundLimit): a peer that stops acknowledging, or reads more slowly
// than the host sends, would otherwise grow the host's memory without bound,
// since ENet's queues have none.
type OutboundPolicy uint8

const (
	// OutboundDropUnreliable drops unreliable and unsequenced messages while the queue
	// is over the limit (counted in Stats.Dropped); a reliable message
	// disconnects the peer (ReasonOutboundLimit), since dropping it would
	// leave a gap in its reliable stream. The default.
	OutboundDropUnreliable OutboundPolicy = iota
	// OutboundDisconnect disconnects the peer on any message over the limit.
	OutboundDisconnect
	// OutboundWait makes Send wait, within its context, until the peer's
	// queue and the sends on their way to it are below the limit:
	// backpressure (the loop looks every 5ms while a sender waits).
	// Broadcast and Multicast never wait; for them it is OutboundDropUnreliable.
	OutboundWait
)

type config struct {
	peers, channels int
	in, out         uint32
	log             *zap.Logger
	eventBuffer     int
	commandBuffer   int
	maxPending      int
	maxBatch        int
	slow            SlowPolicy
	park, drain     time.Duration
	spin            time.Duration
	immediateAcks   bool
	ping            time.Duration // 0: ENet's default
	rcvbuf, sndbuf  int
	connectTimeout  time.Duration // 0: ENet's own (up to 30s)
	timing          bool
	outLimit        int
	outPolicy       OutboundPolicy
	maxPendingBytes int
	perAddress      int
	share           share      // SO_REUSEPORT, for host groups (group.go)
	inline          InlineFunc // inline.go
	timeout         *Timeout   // nil: ENet's defaults
	throttle        *Throttle  // nil: ENet's defaults
	err             error      // the first option that could not be taken
}

// Option configures a Host.
type Option func(*config)

// WithPeers sets the number of peer slots, 1..MaxPeers (default 64).
func WithPeers(n int) Option { return func(c *config) { c.peers = n } }

// WithChannels sets the host's channel limit, 1..MaxChannels (default 1).
func WithChannels(n int) Option { return func(c *config) { c.channels = n } }

// WithBandwidth sets the incoming and outgoing bandwidth in bytes/s (default 0, unlimited).
func WithBandwidth(in, out uint32) Option { return func(c *config) { c.in, c.out = in, out } }

// WithLogger sets the logger (default: no logging).
func WithLogger(l *zap.Logger) Option { return func(c *config) { c.log = l } }

// WithEventBuffer sets the capacity of the Events channel (default 1024).
func WithEventBuffer(n int) Option { return func(c *config) { c.eventBuffer = n } }

// WithCommandBuffer sets the capacity of the command channel that carries
// sends and other calls to the loop (default 1024). Callers block, within
// their context, while it is full.
func WithCommandBuffer(n int) Option { return func(c *config) { c.commandBuffer = n } }

// WithMaxPending sets how many events the loop holds for a consumer that has
// fallen behind, beyond the Events channel's buffer (default 65536); the
// slow-consumer policy (WithSlowPolicy) applies to received messages beyond
// that.
func WithMaxPending(n int) Option { return func(c *config) { c.maxPending = n } }

// WithSlowPolicy sets what the loop does with a received message for a
// consumer that has fallen behind by WithMaxPending events or
// WithMaxPendingBytes bytes (default SlowDropUnreliable).
func WithSlowPolicy(p SlowPolicy) Option { return func(c *config) { c.slow = p } }

// WithMaxPendingBytes bounds the payload bytes of the events the loop holds
// for a consumer that has fallen behind, beyond the Events channel's buffer
// (default 64 MiB); a message that would exceed it is handled by the
// slow-consumer policy, as one beyond WithMaxPending's count is.
func WithMaxPendingBytes(n int) Option { return func(c *config) { c.maxPendingBytes = n } }

// WithOutboundLimit bounds the bytes ENet may hold for one peer: messages
// queued or sent and not yet acknowledged, with ENet's own allocation for
// each (default 8 MiB, at least 64 KiB). A message is queued while the
// peer's queue is below the limit, so one message may take it past; beyond
// the limit the outbound policy applies (WithOutboundPolicy).
// PeerInfo.QueuedBytes reports a peer's queue.
func WithOutboundLimit(bytes int) Option { return func(c *config) { c.outLimit = bytes } }

// WithOutboundPolicy sets what the host does with a message for a peer
// whose queue is over the outbound limit (default OutboundDropUnreliable).
func WithOutboundPolicy(p OutboundPolicy) Option { return func(c *config) { c.outPolicy = p } }

// WithPerAddressLimit sets how many connections, established or
// half-open, one IPv4 address may hold (default 32, 1..MaxPeers). A CONNECT
// beyond it is refused at once: the client's connection ends with
// ReasonRefused and Data RefusedAddress; Stats.ConnectsRefusedAddress counts
// them. Servers whose clients share an address (NAT, load tests) raise it.
func WithPerAddressLimit(n int) Option { return func(c *config) { c.perAddress = n } }

// WithParkInterval sets the longest time the loop waits on the socket when
// it has nothing to do (default 10ms). Commands and datagrams wake it at once;
// the interval only bounds how late ENet's own timers (retransmissions,
// pings, timeouts) may run.
func WithParkInterval(d time.Duration) Option { return func(c *config) { c.park = d } }

// WithPingInterval sets the ping interval of every connection of the host
// as it connects (enet_peer_ping_interval; ENet's default is 500ms). ENet
// pings a peer it has sent nothing to for that long, so a longer interval
// makes idle peers cheaper, at the cost of noticing a vanished peer later.
// Host.SetPingInterval changes one connection's. d is 0 (ENet's default) to 1h;
// New returns ErrRange otherwise.
func WithPingInterval(d time.Duration) Option {
	return func(c *config) { c.ping = d }
}

// WithTimeout sets when ENet declares a peer lost, for every connection of
// the host as it connects (Host.SetTimeout changes one connection's); zero
// fields mean ENet's defaults. New returns ErrRange for a Timeout that
// SetTimeout would refuse.
func WithTimeout(t Timeout) Option {
	return func(c *config) {
		if _, _, _, err := t.millis(); err != nil {
			c.fail(err)
		}
		c.timeout = &t
	}
}

// WithThrottle configures ENet's unreliable packet throttle for every
// connection of the host as it connects (Host.ConfigureThrottle changes one
// connection's); zero fields mean ENet's defaults. New returns ErrRange for
// a Throttle that ConfigureThrottle would refuse.
func WithThrottle(t Throttle) Option {
	return func(c *config) {
		if _, _, _, err := t.millis(); err != nil {
			c.fail(err)
		}
		c.throttle = &t
	}
}

// fail records the first error of an option that cannot be checked by
// validate alone.
func (c *config) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// WithSocketBuffers sets the host socket's receive and send buffer sizes
// in bytes (ENet's defaults are 256 KiB each; 0 keeps a default). A host
// with thousands of busy peers needs a larger receive buffer, or the kernel
// drops datagrams that ENet then retransmits. The kernel caps the sizes
// (net.core.rmem_max, wmem_max); Stats reports what it granted.
func WithSocketBuffers(recv, send int) Option {
	return func(c *config) { c.rcvbuf, c.sndbuf = recv, send }
}

// WithConnectTimeout bounds how long an outgoing connection may take to
// establish (default 5s; 0 leaves it to ENet, which gives up after 30s): a
// connection that ENet has not established by then ends with
// ReasonConnectFailed. ENet notices only when a retransmission falls due
// (500ms, doubling), so the failure comes up to that much later. Once
// connected, the connection has ENet's default timeouts again. A netloop
// server that refuses a connection says so at once (ReasonRefused). d is
// 0 to 1h; New returns ErrRange otherwise.
func WithConnectTimeout(d time.Duration) Option {
	return func(c *config) { c.connectTimeout = d }
}

// WithSpin sets how long the loop may poll, without parking, for the next
// datagram or command after it goes idle (default 50µs; 0 never polls;
// at most 1ms). It polls only while the datagrams of the recent past came
// that soon after the loop went idle, as a request-reply exchange with one
// client does: waking a parked thread costs more than that on most
// machines, in latency and in CPU. When arrivals are further apart, the
// loop parks at once, and an idle host never polls.
func WithSpin(d time.Duration) Option { return func(c *config) { c.spin = d } }

// WithImmediateAcks makes the host acknowledge reliable messages the moment
// it reads them, in datagrams of their own, as ENet does by itself. By
// default the host holds acknowledgements back until it next sends, which
// it does as soon as its consumers have answered what it read (or, with no
// answer, right away, before it waits): acknowledgement and answer then
// share one datagram, which halves the datagrams of a request-reply
// exchange, for this host and for its peers.
func WithImmediateAcks() Option { return func(c *config) { c.immediateAcks = true } }

// WithTiming makes the loop time its iterations and service calls, into
// the Histograms of Stats (two clock reads per iteration).
func WithTiming() Option { return func(c *config) { c.timing = true } }

// WithDrainTimeout bounds how long shutdown waits for peers to acknowledge
// their disconnection (default 3s).
func WithDrainTimeout(d time.Duration) Option { return func(c *config) { c.drain = d } }

func (c *config) validate() error {
	switch {
	case c.err != nil:
		return c.err
	case c.peers < 1 || c.peers > MaxPeers:
		return fmt.Errorf("%w: peer count %d, want 1..%d", ErrRange, c.peers, MaxPeers)
	case c.channels < 1 || c.channels > MaxChannels:
		return fmt.Errorf("%w: channel count %d, want 1..%d", ErrRange, c.channels, MaxChannels)
	case c.eventBuffer < 0, c.maxPending < 0:
		return fmt.Errorf("%w: negative buffer size", ErrRange)
	case c.commandBuffer < 1:
		return fmt.Errorf("%w: command buffer %d, want at least 1", ErrRange, c.commandBuffer)
	case c.park < time.Millisecond || c.park > time.Second:
		return fmt.Errorf("%w: park interval %v, want 1ms..1s", ErrRange, c.park)
	case c.spin < 0 || c.spin > time.Millisecond:
		return fmt.Errorf("%w: spin %v, want 0..1ms", ErrRange, c.spin)
	case c.drain < 0:
		return fmt.Errorf("%w: drain timeout %v", ErrRange, c.drain)
	case c.rcvbuf < 0, c.sndbuf < 0:
		return fmt.Errorf("%w: negative socket buffer size", ErrRange)
	case c.slow > SlowDropAll:
		return fmt.Errorf("%w: slow-consumer policy %d", ErrRange, c.slow)
	case c.ping < 0 || c.ping > time.Hour:
		return fmt.Errorf("%w: ping interval %v, want 0..1h", ErrRange, c.ping)
	case c.connectTimeout < 0 || c.connectTimeout > time.Hour:
		return fmt.Errorf("%w: connect timeout %v, want 0..1h", ErrRange, c.connectTimeout)
	case c.maxPendingBytes < 0:
		return fmt.Errorf("%w: pending bytes %d", ErrRange, c.maxPendingBytes)
	case c.outLimit < 64<<10:
		return fmt.Errorf("%w: outbound limit %d bytes, want at least 64 KiB", ErrRange, c.outLimit)
	case c.outPolicy > OutboundWait:
		return fmt.Errorf("%w: outbound policy %d", ErrRange, c.outPolicy)
	case c.perAddress < 1 || c.perAddress > MaxPeers:
		return fmt.Errorf("%w: per-address limit %d, want 1..%d", ErrRange, c.perAddress, MaxPeers)
	}
	return nil
}

package netloop

// This file is the only place in the project that touches ENet's C memory.
// Every function here that takes a *chost must be called from the goroutine
// running that host's loop (see loop.go); the only exceptions are noted.

/*
#cgo pkg-config: libenet
#cgo CFLAGS: -Wall
#include "nl.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"unsafe"

	enet "github.com/codecat/go-enet"
)

// ENet's own constants, for the pure-Go side.
const (
	maxPeers      = C.ENET_PROTOCOL_MAXIMUM_PEER_ID
	maxChannels   = C.ENET_PROTOCOL_MAXIMUM_CHANNEL_COUNT
	maxPacketSize = C.ENET_HOST_DEFAULT_MAXIMUM_PACKET_SIZE
	cookieSize    = C.NL_COOKIE
)

// The refusal codes must be nl.h's: these fail to compile otherwise.
var (
	_ [RefusedFull - C.NL_REFUSED_FULL]struct{}
	_ [C.NL_REFUSED_FULL - RefusedFull]struct{}
	_ [RefusedAddress - C.NL_REFUSED_ADDRESS]struct{}
	_ [C.NL_REFUSED_ADDRESS - RefusedAddress]struct{}
)

// The exported limits and scales must be ENet's: these fail to compile otherwise.
var (
	_ [ThrottleScale - C.ENET_PEER_PACKET_THROTTLE_SCALE]struct{}
	_ [C.ENET_PEER_PACKET_THROTTLE_SCALE - ThrottleScale]struct{}
	_ [LossScale - C.ENET_PEER_PACKET_LOSS_SCALE]struct{}
	_ [C.ENET_PEER_PACKET_LOSS_SCALE - LossScale]struct{}
	_ [throttleInterval - C.ENET_PEER_PACKET_THROTTLE_INTERVAL]struct{}
	_ [C.ENET_PEER_PACKET_THROTTLE_INTERVAL - throttleInterval]struct{}
	_ [throttleAcceleration - C.ENET_PEER_PACKET_THROTTLE_ACCELERATION]struct{}
	_ [C.ENET_PEER_PACKET_THROTTLE_ACCELERATION - throttleAcceleration]struct{}
	_ [throttleDeceleration - C.ENET_PEER_PACKET_THROTTLE_DECELERATION]struct{}
	_ [C.ENET_PEER_PACKET_THROTTLE_DECELERATION - throttleDeceleration]struct{}
	_ [MaxPeers - maxPeers]struct{}
	_ [maxPeers - MaxPeers]struct{}
	_ [MaxChannels - maxChannels]struct{}
	_ [maxChannels - MaxChannels]struct{}
	_ [MaxMessageSize - maxPacketSize]struct{}
	_ [maxPacketSize - MaxMessageSize]struct{}
)

// cevent kinds, as ENet numbers them.
const (
	cConnect    = C.ENET_EVENT_TYPE_CONNECT
	cDisconnect = C.ENET_EVENT_TYPE_DISCONNECT
	cReceive    = C.ENET_EVENT_TYPE_RECEIVE
)

// chost is an ENet host plus the C state the loop keeps next to it.
// It is owned by one loop goroutine.
type chost struct {
	g  enet.Host // go-enet's handle: creation
	h  *C.ENetHost
	s  *C.nl_state
	ev []C.nl_event // the C event array, viewed from Go

	scratch []byte // small messages on their way to C (see small)

	owner owner // who may call: checked in enetkit_debug builds (owner_debug.go)
}

// cevent is one event of the current batch: a view into C memory that is
// valid until the next pump.
type cevent = C.nl_event

// newCHost creates the ENet host through go-enet and attaches the wake
// intercept. bind may be the zero AddrPort for an unbound client host, which
// is then bound to 0.0.0.0:0 so that its port is known at once.
func newCHost(bind netip.AddrPort, peers, channels int, in, out uint32, batch int, cookie []byte) (*chost, error) {
	var addr enet.Address
	if bind.IsValid() {
		addr = enet.NewAddress(bind.Addr().String(), bind.Port())
	} else {
		addr = enet.NewListenAddress(0)
	}
	g, err := enet.NewHost(addr, uint64(peers), uint64(channels), in, out)
	if err != nil {
		return nil, err
	}
	h := (*C.ENetHost)(unsafe.Pointer(reflect.ValueOf(g).Elem().FieldByName("cHost").Pointer()))
	s := C.nl_state_new(h, C.int(batch), unsafe.Pointer(&cookie[0]))
	if s == nil {
		g.Destroy()
		return nil, errors.New("out of C memory")
	}
	return &chost{
		g:  g,
		h:  h,
		s:  s,
		ev: unsafe.Slice(s.events, batch),
	}, nil
}

// destroy releases the host and everything attached; the chost must not be
// used afterwards.
func (c *chost) destroy() {
	c.check()
	C.nl_destroy(c.h, c.s)
	c.h, c.s, c.ev = nil, nil, nil
}

// pump services the host once, without waiting, and returns the batch of
// events.
func (c *chost) pump() []cevent {
	c.check()
	n := C.nl_pump(c.s)
	return c.ev[:n]
}

// park sends held acknowledgements, then waits up to ms milliseconds for a
// datagram.
func (c *chost) park(ms int) {
	c.check()
	C.nl_park(c.s, C.int(ms))
}

// serviceFailed reports whether the last pump's enet_host_service failed.
func (c *chost) serviceFailed() bool {
	c.check()
	return c.s.lastrc < 0
}

// counters of the intercept, the service calls and the packet callback.
type ccounters struct {
	heldAcks, wakes, malformed, serviceErrors uint64
	reads, writes                             uint64
	evicted, refusedFull, refusedAddress      uint64
	throttled, sequenceDrops                  uint64
}

func (c *chost) counters() ccounters {
	c.check()
	s := c.s
	return ccounters{
		heldAcks: uint64(s.cut), wakes: uint64(s.wakes), malformed: uint64(s.malformed), serviceErrors: uint64(s.serviceErrors + s.sendErrors),
		reads: uint64(s.rxcalls), writes: uint64(s.txcalls),
		evicted: uint64(s.evicted), refusedFull: uint64(s.refusedFull), refusedAddress: uint64(s.refusedAddress),
		throttled: uint64(s.throttled), sequenceDrops: uint64(s.sequenceDrops),
	}
}

func (c *chost) serviceErrors() uint64 {
	c.check()
	return uint64(c.s.serviceErrors)
}

// halfOpen counts the slots whose CONNECT was answered and whose peer has
// not yet acknowledged the answer.
func (c *chost) halfOpen() int {
	c.check()
	return int(C.nl_half_open(c.h))
}

// setPerAddress sets how many connections one address may hold.
func (c *chost) setPerAddress(n int) {
	c.check()
	c.s.perAddress = C.size_t(n)
}

func (c *chost) flush() {
	c.check()
	C.nl_flush(c.h, c.s)
}
func (c *chost) readable() bool {
	c.check()
	return C.nl_readable(c.s) != 0
}

// flushHeld sends acknowledgements held back by the last pump, if any.
func (c *chost) flushHeld() {
	c.check()
	if c.s.held != 0 {
		c.flush()
	}
}

// setCoalesce turns on or off holding acknowledgements back until the
// next service call (see nl_intercept). It stays off with a libenet other
// than 1.3, whose receive loop nl_intercept relies on: a read error ends
// it, and it reads at most 256 datagrams.
func (c *chost) setCoalesce(on bool) {
	c.check()
	c.s.coalesce = 0
	if v := uint32(C.enet_linked_version()); on && v>>16&0xff == 1 && v>>8&0xff == 3 {
		c.s.coalesce = 1
	}
}

// packet is an ENet packet made in the sender's goroutine: a copy of its
// data, so that the sender may reuse its buffer at once. Creating or
// destroying an unreferenced packet touches no host.
type packet struct{ p *C.ENetPacket }

func newPacket(data []byte, f Flag) (packet, error) {
	p := C.nl_packet_new(unsafe.Pointer(unsafe.SliceData(data)), C.size_t(len(data)), C.enet_uint32(f.enet()))
	if p == nil {
		return packet{}, errors.New("netloop: out of C memory")
	}
	return packet{p}, nil
}

// destroy frees a packet no peer took; the zero packet is none.
func (p packet) destroy() {
	if p.p != nil {
		C.nl_packet_destroy(p.p)
	}
}

// sent is what handing a packet to one peer came to.
type sent int8

const (
	sentOK       sent = C.NL_SENT
	sentRefused  sent = C.NL_REFUSED  // ENet refused it
	sentSequence sent = C.NL_SEQUENCE // unreliable above the MTU with a full sequence window: dropped
)

// send hands cmd's message to the peer in slot idx, in cmd's packet
// (destroyed unless it was sent) or, for a small message, in a packet made
// here: one cgo call either way.
func (c *chost) send(idx uint16, cmd *command) sent {
	c.check()
	if cmd.pkt.p != nil {
		return sent(C.nl_peer_send(c.s, C.enet_uint16(idx), C.enet_uint8(cmd.ch), cmd.pkt.p))
	}
	b := c.small(cmd)
	return sent(C.nl_peer_send_data(c.s, C.enet_uint16(idx), C.enet_uint8(cmd.ch), unsafe.Pointer(&b[0]), C.size_t(len(b)), C.enet_uint32(cmd.flag.enet())))
}

// packetOf returns cmd's packet, made here from its small message if it
// carries one.
func (c *chost) packetOf(cmd *command) (packet, error) {
	c.check()
	if cmd.pkt.p != nil {
		return cmd.pkt, nil
	}
	return newPacket(c.small(cmd), cmd.flag)
}

// small copies cmd's small message into the chost's scratch buffer: C may
// not be handed a pointer into the command, which holds Go pointers.
func (c *chost) small(cmd *command) []byte {
	c.check()
	if c.scratch == nil {
		c.scratch = make([]byte, smallMessage)
	}
	return c.scratch[:copy(c.scratch, cmd.small[:cmd.size])]
}

// multicast hands p, shared, to the peers in the given slots, writes what
// each came to into result, and returns how many took it; p is destroyed if
// none did.
func (c *chost) multicast(idx []uint16, ch uint8, p packet, result []sent) int {
	c.check()
	if len(idx) == 0 {
		p.destroy()
		return 0
	}
	return int(C.nl_multicast(c.h, c.s, (*C.enet_uint16)(unsafe.Pointer(&idx[0])), C.int(len(idx)), C.enet_uint8(ch), p.p, (*C.int8_t)(unsafe.Pointer(&result[0]))))
}

// queuedBytes walks the outgoing queues of the peer in slot idx.
func (c *chost) queuedBytes(idx uint16) int {
	c.check()
	return int(C.nl_queued_bytes(c.h, C.enet_uint16(idx)))
}

// throttled counts the unicast unreliable packets ENet's throttle dropped
// for the connection in slot idx.
func (c *chost) throttled(idx uint16) uint64 {
	c.check()
	return *(*uint64)(unsafe.Pointer(uintptr(unsafe.Pointer(c.s.throttledPeer)) + uintptr(idx)*8))
}

// connect starts a connection and returns the slot index it uses.
func (c *chost) connect(to netip.AddrPort, channels int, data uint32) (uint16, bool) {
	c.check()
	ip := to.Addr().As4()
	// ENet keeps the address in network byte order: the bytes as they stand.
	host := *(*uint32)(unsafe.Pointer(&ip[0]))
	idx := C.nl_connect(c.h, C.enet_uint32(host), C.enet_uint16(to.Port()), C.size_t(channels), C.enet_uint32(data))
	if idx < 0 {
		return 0, false
	}
	return uint16(idx), true
}

// socketBuffers sets the socket's receive and send buffer sizes (those > 0)
// and returns them as the kernel reports them.
func (c *chost) socketBuffers(rcv, snd int) (int, int, error) {
	c.check()
	var r, w C.int
	if C.nl_socket_buffers(c.h, C.int(rcv), C.int(snd), &r, &w) < 0 {
		return 0, 0, errors.New("setsockopt/getsockopt failed")
	}
	return int(r), int(w), nil
}

// localAddr is the address the host's socket is bound to.
func (c *chost) localAddr() (netip.AddrPort, error) {
	c.check()
	var host C.enet_uint32
	var port C.enet_uint16
	if C.nl_socket_address(c.h, &host, &port) < 0 {
		return netip.AddrPort{}, fmt.Errorf("enet_socket_get_address failed")
	}
	return addrPort(uint32(host), uint16(port)), nil
}

// addrPort converts an ENet address (host in network byte order).
func addrPort(host uint32, port uint16) netip.AddrPort {
	b := *(*[4]byte)(unsafe.Pointer(&host))
	return netip.AddrPortFrom(netip.AddrFrom4(b), port)
}

func (c *chost) peerInfo(idx uint16) PeerInfo {
	c.check()
	var o C.nl_peer_info
	C.nl_peer_info_get(c.h, C.enet_uint16(idx), &o)
	return PeerInfo{
		State:                 State(o.state),
		ConnectID:             uint32(o.connectID),
		Index:                 int(o.index),
		Channels:              int(o.channels),
		Addr:                  addrPort(uint32(o.addrHost), uint16(o.addrPort)),
		RTT:                   ms(o.rtt),
		RTTVariance:           ms(o.rttVariance),
		LastRTT:               ms(o.lastRTT),
		LastRTTVariance:       ms(o.lastRTTVariance),
		LowestRTT:             ms(o.lowestRTT),
		PacketLoss:            float64(o.packetLoss) / LossScale,
		PacketLossVariance:    float64(o.packetLossVariance) / LossScale,
		PacketThrottle:        uint32(o.packetThrottle),
		PacketThrottleLimit:   uint32(o.packetThrottleLimit),
		Throttle:              Throttle{Interval: ms(o.throttleInterval), Acceleration: uint32(o.throttleAcceleration), Deceleration: uint32(o.throttleDeceleration), Steady: o.throttleDeceleration == 0},
		PingInterval:          ms(o.pingInterval),
		Timeout:               Timeout{Limit: uint32(o.timeoutLimit), Minimum: ms(o.timeoutMinimum), Maximum: ms(o.timeoutMaximum)},
		ReliableDataInTransit: int(o.reliableInTransit),
		MTU:                   int(o.mtu),
		IncomingBandwidth:     uint32(o.incomingBandwidth),
		OutgoingBandwidth:     uint32(o.outgoingBandwidth),
		PacketsSent:           uint32(o.packetsSent),
		PacketsLost:           uint32(o.packetsLost),
		QueuedCommands:        int(o.queued),
		UnackedCommands:       int(o.unacked),
	}
}

// totals are ENet's host counters over the last pump.
type totals struct {
	sentData, sentPackets, receivedData, receivedPackets uint32
	serviceTime, connected                               uint32
}

// totals reads, without a cgo call, what the last pump took.
func (c *chost) totals() totals {
	c.check()
	t := &c.s.tot
	return totals{uint32(t.sentData), uint32(t.sentPackets), uint32(t.receivedData), uint32(t.receivedPackets), uint32(t.serviceTime), uint32(t.connectedPeers)}
}

// how says how a connection is ended.
type how C.nl_how

const (
	disconnect      how = C.NL_DISCONNECT       // enet_peer_disconnect: queued data is dropped
	disconnectLater how = C.NL_DISCONNECT_LATER // enet_peer_disconnect_later: queued data is sent first
	disconnectNow   how = C.NL_DISCONNECT_NOW   // enet_peer_disconnect_now: no acknowledgement awaited
	reset           how = C.NL_RESET            // enet_peer_reset: the peer is not told
)

func (c *chost) peerDisconnect(idx uint16, w how, data uint32) {
	c.check()
	C.nl_peer_disconnect(c.h, c.s, C.enet_uint16(idx), C.nl_how(w), C.enet_uint32(data))
}
func (c *chost) peerPing(idx uint16) {
	c.check()
	C.nl_peer_ping(c.h, C.enet_uint16(idx))
}
func (c *chost) setPingInterval(idx uint16, ms uint32) {
	c.check()
	C.nl_set_ping_interval(c.h, C.enet_uint16(idx), C.enet_uint32(ms))
}
func (c *chost) setTimeout(idx uint16, limit, min, max uint32) {
	c.check()
	C.nl_peer_timeout(c.h, C.enet_uint16(idx), C.enet_uint32(limit), C.enet_uint32(min), C.enet_uint32(max))
}
func (c *chost) setThrottle(idx uint16, interval, acc, dec uint32) {
	c.check()
	C.nl_peer_throttle(c.h, C.enet_uint16(idx), C.enet_uint32(interval), C.enet_uint32(acc), C.enet_uint32(dec))
}
func (c *chost) setRTT(idx uint16, v uint32) {
	c.check()
	C.nl_set_rtt(c.h, C.enet_uint16(idx), C.enet_uint32(v))
}
func (c *chost) setLastRTT(idx uint16, v uint32) {
	c.check()
	C.nl_set_last_rtt(c.h, C.enet_uint16(idx), C.enet_uint32(v))
}
func (c *chost) setChannelLimit(n int) {
	c.check()
	C.enet_host_channel_limit(c.h, C.size_t(n))
}
func (c *chost) setBandwidthLimit(in, out uint32) {
	c.check()
	C.enet_host_bandwidth_limit(c.h, C.enet_uint32(in), C.enet_uint32(out))
}
func (c *chost) compressWithRangeCoder() error {
	c.check()
	return c.g.CompressWithRangeCoder()
}

// eventPayload copies a receive event's bytes into Go memory: the one copy a
// received message costs.
func eventPayload(e *cevent) []byte {
	if e.length == 0 {
		return []byte{}
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(e.bytes)), int(e.length))...)
}

func eventType(e *cevent) int    { return int(e._type) }
func eventPeer(e *cevent) uint16 { return uint16(e.peer) }
func eventAddr(e *cevent) netip.AddrPort {
	return addrPort(uint32(e.addrHost), uint16(e.addrPort))
}

// LinkedVersion is the version of the libenet the program is linked with,
// as "major.minor.patch" (lua-enet's enet.linked_version).
func LinkedVersion() string {
	v := uint32(C.enet_linked_version())
	return fmt.Sprintf("%d.%d.%d", v>>16&0xff, v>>8&0xff, v&0xff)
}

// LiveAllocations returns how many blocks ENet has allocated through this
// package and not yet freed, across every host of the process: it returns
// to its earlier value once hosts are closed and their packets released,
// which makes it a leak check for tests. It is safe for concurrent use.
func LiveAllocations() int64 { return int64(C.nl_live()) }

func enetInit() error {
	if C.nl_initialize() != 0 {
		return errors.New("netloop: enet_initialize failed")
	}
	return nil
}

func enetDeinit() { C.enet_deinitialize() }

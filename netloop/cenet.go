package netloop

// This file is the only place in the project that touches ENet's C memory.
// Every function here that takes a *chost must be called from the goroutine
// running that host's loop (see loop.go); the only exceptions are noted.

/*
#cgo pkg-config: libenet
#include <enet/enet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { NL_EVENT_WAKE = 100, NL_COOKIE = 16 };

// ENet allocates through these, so that the process can count its live
// C allocations (hosts, peers, packets, fragments): a leak check.
static int64_t nl_live_allocs;
static void *nl_malloc(size_t n) {
	void *p = malloc(n);
	if (p != NULL) __atomic_fetch_add(&nl_live_allocs, 1, __ATOMIC_RELAXED);
	return p;
}
static void nl_free(void *p) {
	if (p == NULL) return;
	__atomic_fetch_sub(&nl_live_allocs, 1, __ATOMIC_RELAXED);
	free(p);
}
static void nl_no_memory(void) { abort(); }
static int nl_initialize(void) {
	ENetCallbacks cb = { nl_malloc, nl_free, nl_no_memory };
	return enet_initialize_with_callbacks(ENET_VERSION, &cb);
}
static int64_t nl_live(void) { return __atomic_load_n(&nl_live_allocs, __ATOMIC_RELAXED); }

// nl_event is one ENet event copied out of enet_host_service/check_events.
// The packet it refers to stays alive until the next nl_pump call.
typedef struct {
	int           type;
	enet_uint16   peer;        // slot index (incomingPeerID)
	enet_uint8    channel;
	enet_uint8    remote;      // DISCONNECT: the peer sent a disconnect command
	enet_uint32   data;        // CONNECT/DISCONNECT user data
	enet_uint32   flags;       // RECEIVE: packet flags
	enet_uint32   connectID;   // CONNECT
	enet_uint32   channels;    // CONNECT: the peer's channel count
	enet_uint32   addrHost;    // CONNECT: network byte order
	enet_uint16   addrPort;    // CONNECT
	ENetPacket   *packet;      // RECEIVE
	enet_uint8   *bytes;       // RECEIVE: packet->data
	size_t        length;      // RECEIVE: packet->dataLength
} nl_event;

typedef struct {
	enet_uint32 sentData, sentPackets, receivedData, receivedPackets, serviceTime;
	enet_uint32 connectedPeers;
} nl_totals;

// nl_state is the per-host C state the loop owns next to the ENetHost.
typedef struct {
	enet_uint8  cookie[NL_COOKIE]; // wake datagram payload
	nl_event   *events;            // capacity cap, n in use
	int         cap, n;
	int         lastrc;            // last enet_host_service result
	uint64_t wakes;             // wake datagrams consumed
	uint64_t malformed;         // datagrams failing the header scan
	uint64_t serviceErrors;     // enet_host_service returned < 0
	int         coalesce;          // end service calls after the last waiting datagram
	int         seen;              // datagrams the intercept saw in this service call
	ENetSocket  saved;             // the socket, while host->socket is swapped out
	int         held;              // acknowledgements may be waiting to be sent
	uint64_t    cut;               // service calls ended after the last datagram
	enet_uint8 *remote;            // per slot: a DISCONNECT command arrived from the peer
	size_t      peers;
	nl_totals   tot;               // ENet's counters as of the last pump, taken and reset
} nl_state;

// The intercept callback has no user pointer; nl_pump sets this for the
// duration of its enet_host_service call on the calling thread.
static __thread nl_state *nl_cur;

static enet_uint16 nl_be16(const enet_uint8 *p) { return (enet_uint16)((p[0] << 8) | p[1]); }

// nl_scan walks the ENet header and commands of the datagram in host->receivedData
// and reports whether it carries a message (or may: compressed). It counts
// datagrams ENet will reject (too short, unknown command, bad
// peer, truncated command) and marks peers that sent a DISCONNECT command,
// so that the loop can tell a remote disconnect from a timeout.
static int nl_scan(nl_state *s, ENetHost *h) {
	const enet_uint8 *d = h->receivedData;
	size_t n = h->receivedDataLength, off;
	if (n < 2) { s->malformed++; return 0; }
	enet_uint16 word = nl_be16(d);
	enet_uint16 flags = word & ENET_PROTOCOL_HEADER_FLAG_MASK;
	enet_uint16 peerID = word & ~(ENET_PROTOCOL_HEADER_FLAG_MASK | ENET_PROTOCOL_HEADER_SESSION_MASK);
	off = (flags & ENET_PROTOCOL_HEADER_FLAG_SENT_TIME) ? 4 : 2;
	if (h->checksum != NULL) off += sizeof(enet_uint32);
	if (n < off) { s->malformed++; return 0; }
	if (flags & ENET_PROTOCOL_HEADER_FLAG_COMPRESSED) return 1; // cannot look inside
	ENetPeer *peer = NULL;
	if (peerID != ENET_PROTOCOL_MAXIMUM_PEER_ID) {
		// The checks ENet makes before it accepts a datagram for a peer.
		if (peerID >= h->peerCount) { s->malformed++; return 0; }
		peer = &h->peers[peerID];
		enet_uint8 session = (enet_uint8)((word & ENET_PROTOCOL_HEADER_SESSION_MASK) >> ENET_PROTOCOL_HEADER_SESSION_SHIFT);
		if (peer->state == ENET_PEER_STATE_DISCONNECTED || peer->state == ENET_PEER_STATE_ZOMBIE ||
		    ((peer->address.host != h->receivedAddress.host || peer->address.port != h->receivedAddress.port) &&
		     peer->address.host != ENET_HOST_BROADCAST) ||
		    (peer->outgoingPeerID < ENET_PROTOCOL_MAXIMUM_PEER_ID && session != peer->incomingSessionID)) {
			s->malformed++;
			return 0;
		}
	}
	int messages = 0;
	while (off < n) {
		if (off + sizeof(ENetProtocolCommandHeader) > n) { s->malformed++; return messages; }
		enet_uint8 cmd = d[off] & ENET_PROTOCOL_COMMAND_MASK;
		if (cmd == 0 || cmd >= ENET_PROTOCOL_COMMAND_COUNT) { s->malformed++; return messages; }
		size_t size = enet_protocol_command_size(cmd);
		if (size == 0 || off + size > n) { s->malformed++; return messages; }
		size_t payload = 0;
		switch (cmd) {
		case ENET_PROTOCOL_COMMAND_SEND_RELIABLE: case ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE: case ENET_PROTOCOL_COMMAND_SEND_UNSEQUENCED:
		case ENET_PROTOCOL_COMMAND_SEND_FRAGMENT: case ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE_FRAGMENT:
			messages = 1;
		}
		switch (cmd) {
		case ENET_PROTOCOL_COMMAND_SEND_RELIABLE:
			payload = nl_be16(d + off + offsetof(ENetProtocolSendReliable, dataLength)); break;
		case ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE:
			payload = nl_be16(d + off + offsetof(ENetProtocolSendUnreliable, dataLength)); break;
		case ENET_PROTOCOL_COMMAND_SEND_UNSEQUENCED:
			payload = nl_be16(d + off + offsetof(ENetProtocolSendUnsequenced, dataLength)); break;
		case ENET_PROTOCOL_COMMAND_SEND_FRAGMENT:
		case ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE_FRAGMENT:
			payload = nl_be16(d + off + offsetof(ENetProtocolSendFragment, dataLength)); break;
		case ENET_PROTOCOL_COMMAND_DISCONNECT:
			if (peer != NULL) s->remote[peerID] = 1;
			break;
		}
		off += size + payload;
		if (off > n) { s->malformed++; return messages; }
	}
	return messages;
}

static int nl_intercept(ENetHost *h, ENetEvent *ev) {
	nl_state *s = nl_cur;
	if (s == NULL) return 0;
	if (h->receivedDataLength == NL_COOKIE && memcmp(h->receivedData, s->cookie, NL_COOKIE) == 0) {
		s->wakes++;
		if (ev != NULL) {
			ev->type = (ENetEventType)NL_EVENT_WAKE;
			ev->peer = NULL;
			ev->packet = NULL;
		}
		return 1;
	}
	int messages = nl_scan(s, h);
	// ENet sends acknowledgements right after its receive loop, in a
	// datagram of their own, before the application can answer. When this
	// datagram carries a message, and is the last one waiting (and not the
	// 256th, after which ENet stops reading by itself), swap the socket out:
	// once ENet has handled the datagram, its next read fails and
	// enet_host_service returns before sending. The acknowledgements then
	// leave with the answers, in the same datagrams, at the next service
	// call or flush.
	if (s->coalesce && ++s->seen < 256 && messages) {
		char b;
		if (recv(h->socket, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			s->saved = h->socket;
			h->socket = ENET_SOCKET_NULL;
		}
	}
	return 0;
}

static nl_state *nl_state_new(ENetHost *h, int cap, const void *cookie) {
	nl_state *s = calloc(1, sizeof *s);
	if (s == NULL) return NULL;
	s->events = calloc((size_t)cap, sizeof *s->events);
	s->remote = calloc(h->peerCount, 1);
	if (s->events == NULL || s->remote == NULL) { free(s->events); free(s->remote); free(s); return NULL; }
	s->cap = cap;
	s->peers = h->peerCount;
	s->saved = ENET_SOCKET_NULL;
	memcpy(s->cookie, cookie, NL_COOKIE);
	h->intercept = nl_intercept;
	// ENet does not set FD_CLOEXEC: child processes would inherit the port.
	fcntl(h->socket, F_SETFD, fcntl(h->socket, F_GETFD) | FD_CLOEXEC);
	return s;
}

static void nl_release(nl_state *s) {
	for (int i = 0; i < s->n; i++) {
		if (s->events[i].packet != NULL) enet_packet_destroy(s->events[i].packet);
	}
	s->n = 0;
}

static void nl_state_free(nl_state *s) {
	nl_release(s);
	free(s->events);
	free(s->remote);
	free(s);
}

static void nl_put(nl_state *s, ENetHost *h, ENetEvent *ev) {
	nl_event *e = &s->events[s->n++];
	memset(e, 0, sizeof *e);
	e->type = ev->type;
	e->peer = ev->peer->incomingPeerID;
	e->channel = ev->channelID;
	e->data = ev->data;
	switch (ev->type) {
	case ENET_EVENT_TYPE_CONNECT:
		s->remote[e->peer] = 0;
		e->connectID = ev->peer->connectID;
		e->channels = (enet_uint32)ev->peer->channelCount;
		e->addrHost = ev->peer->address.host;
		e->addrPort = ev->peer->address.port;
		break;
	case ENET_EVENT_TYPE_DISCONNECT:
		e->remote = s->remote[e->peer];
		s->remote[e->peer] = 0;
		break;
	case ENET_EVENT_TYPE_RECEIVE:
		e->packet = ev->packet;
		e->bytes = ev->packet->data;
		e->length = ev->packet->dataLength;
		e->flags = ev->packet->flags;
		break;
	default:
		break;
	}
}

// nl_take_totals moves ENet's 32-bit counters into s->tot and resets them,
// so the Go side can keep 64-bit totals that never wrap.
static void nl_take_totals(ENetHost *h, nl_state *s) {
	nl_totals *t = &s->tot;
	t->sentData = h->totalSentData; h->totalSentData = 0;
	t->sentPackets = h->totalSentPackets; h->totalSentPackets = 0;
	t->receivedData = h->totalReceivedData; h->totalReceivedData = 0;
	t->receivedPackets = h->totalReceivedPackets; h->totalReceivedPackets = 0;
	t->serviceTime = h->serviceTime;
	t->connectedPeers = (enet_uint32)h->connectedPeers;
}

// nl_park sends the acknowledgements the last service call held back, then
// waits up to timeout ms for a datagram, as enet_host_service would.
static void nl_park(ENetHost *h, nl_state *s, int timeout) {
	if (s->held) {
		enet_host_flush(h);
		s->held = 0;
	}
	struct pollfd p = { .fd = h->socket, .events = POLLIN };
	poll(&p, 1, timeout);
}

// nl_pump frees the previous batch's packets, runs enet_host_service once
// without waiting (which sends everything queued, then reads the socket),
// then drains already-dispatched events with enet_host_check_events,
// without I/O, until none is left or the batch is full, and takes ENet's
// counters. It returns the number of events. The service call never waits,
// so that it reads the socket in one pass, whose datagrams the intercept
// counts.
static int nl_pump(ENetHost *h, nl_state *s) {
	ENetEvent ev;
	nl_release(s);
	nl_cur = s;
	s->seen = 0;
	int rc = enet_host_service(h, &ev, 0);
	nl_cur = NULL;
	// Unless the call went all the way through (0), it may have returned
	// before its last send: acknowledgements may be waiting.
	s->held = rc != 0;
	if (s->saved != ENET_SOCKET_NULL) {
		// The intercept ended the call after the last datagram.
		h->socket = s->saved;
		s->saved = ENET_SOCKET_NULL;
		s->cut++;
		if (rc < 0) rc = enet_host_check_events(h, &ev);
	}
	s->lastrc = rc;
	if (rc < 0) {
		s->serviceErrors++;
	}
	while (rc > 0) {
		if (ev.type != (ENetEventType)NL_EVENT_WAKE && ev.peer != NULL) nl_put(s, h, &ev);
		if (s->n == s->cap) break;
		rc = enet_host_check_events(h, &ev);
	}
	nl_take_totals(h, s);
	return s->n;
}

// nl_readable reports whether a datagram is waiting on the host's socket.
static int nl_readable(ENetHost *h) {
	struct pollfd p = { .fd = h->socket, .events = POLLIN };
	return poll(&p, 1, 0) > 0;
}

static int nl_send(ENetHost *h, enet_uint16 idx, enet_uint8 ch, const void *data, size_t len, enet_uint32 flags) {
	ENetPacket *p = enet_packet_create(data, len, flags);
	if (p == NULL) return -2;
	if (enet_peer_send(&h->peers[idx], ch, p) < 0) {
		enet_packet_destroy(p);
		return -1;
	}
	return 0;
}

// nl_broadcast sends one packet to every connected peer with enough
// channels; it returns how many peers took it, or -1 if none could be made.
static int nl_broadcast(ENetHost *h, enet_uint8 ch, const void *data, size_t len, enet_uint32 flags) {
	ENetPacket *p = enet_packet_create(data, len, flags);
	if (p == NULL) return -1;
	int sent = 0;
	for (ENetPeer *peer = h->peers; peer < &h->peers[h->peerCount]; peer++) {
		if (peer->state != ENET_PEER_STATE_CONNECTED || ch >= peer->channelCount) continue;
		if (enet_peer_send(peer, ch, p) == 0) sent++;
	}
	if (p->referenceCount == 0) enet_packet_destroy(p);
	return sent;
}

// nl_multicast sends one packet to the peers in slots idx[0..n), skipping
// those not connected or without the channel; it returns how many took it.
static int nl_multicast(ENetHost *h, const enet_uint16 *idx, int n, enet_uint8 ch, const void *data, size_t len, enet_uint32 flags) {
	ENetPacket *p = enet_packet_create(data, len, flags);
	if (p == NULL) return -1;
	int sent = 0;
	for (int i = 0; i < n; i++) {
		ENetPeer *peer = &h->peers[idx[i]];
		if (peer->state != ENET_PEER_STATE_CONNECTED || ch >= peer->channelCount) continue;
		if (enet_peer_send(peer, ch, p) == 0) sent++;
	}
	if (p->referenceCount == 0) enet_packet_destroy(p);
	return sent;
}

static int nl_connect(ENetHost *h, enet_uint32 host, enet_uint16 port, size_t channels, enet_uint32 data) {
	ENetAddress a;
	a.host = host;
	a.port = port;
	ENetPeer *p = enet_host_connect(h, &a, channels, data);
	return p == NULL ? -1 : (int)p->incomingPeerID;
}

static int nl_socket_address(ENetHost *h, enet_uint32 *host, enet_uint16 *port) {
	ENetAddress a;
	if (enet_socket_get_address(h->socket, &a) < 0) return -1;
	*host = a.host;
	*port = a.port;
	return 0;
}

typedef struct {
	enet_uint32 state, connectID, channels, addrHost;
	enet_uint16 addrPort, index;
	enet_uint32 rtt, rttVariance, lastRTT, lastRTTVariance, lowestRTT;
	enet_uint32 packetLoss, packetLossVariance, packetThrottle, packetThrottleLimit;
	enet_uint32 throttleInterval, throttleAcceleration, throttleDeceleration;
	enet_uint32 pingInterval, timeoutLimit, timeoutMinimum, timeoutMaximum;
	enet_uint32 reliableInTransit, mtu;
	enet_uint32 packetsSent, packetsLost, incomingBandwidth, outgoingBandwidth;
	enet_uint32 queued, unacked;
} nl_peer_info;

static void nl_peer_info_get(ENetHost *h, enet_uint16 idx, nl_peer_info *o) {
	ENetPeer *p = &h->peers[idx];
	o->state = p->state;
	o->connectID = p->connectID;
	o->channels = (enet_uint32)p->channelCount;
	o->addrHost = p->address.host;
	o->addrPort = p->address.port;
	o->index = p->incomingPeerID;
	o->rtt = p->roundTripTime;
	o->rttVariance = p->roundTripTimeVariance;
	o->lastRTT = p->lastRoundTripTime;
	o->lastRTTVariance = p->lastRoundTripTimeVariance;
	o->lowestRTT = p->lowestRoundTripTime;
	o->packetLoss = p->packetLoss;
	o->packetLossVariance = p->packetLossVariance;
	o->packetThrottle = p->packetThrottle;
	o->packetThrottleLimit = p->packetThrottleLimit;
	o->throttleInterval = p->packetThrottleInterval;
	o->throttleAcceleration = p->packetThrottleAcceleration;
	o->throttleDeceleration = p->packetThrottleDeceleration;
	o->pingInterval = p->pingInterval;
	o->timeoutLimit = p->timeoutLimit;
	o->timeoutMinimum = p->timeoutMinimum;
	o->timeoutMaximum = p->timeoutMaximum;
	o->reliableInTransit = p->reliableDataInTransit;
	o->mtu = p->mtu;
	o->packetsSent = p->packetsSent;
	o->packetsLost = p->packetsLost;
	o->incomingBandwidth = p->incomingBandwidth;
	o->outgoingBandwidth = p->outgoingBandwidth;
	o->queued = (enet_uint32)enet_list_size(&p->outgoingCommands);
	o->unacked = (enet_uint32)enet_list_size(&p->sentReliableCommands);
}

// nl_socket_buffers sets (when rcv or snd > 0) and reads back the socket's
// buffer sizes, as the kernel reports them.
static int nl_socket_buffers(ENetHost *h, int rcv, int snd, int *rcvOut, int *sndOut) {
	if (rcv > 0 && enet_socket_set_option(h->socket, ENET_SOCKOPT_RCVBUF, rcv) < 0) return -1;
	if (snd > 0 && enet_socket_set_option(h->socket, ENET_SOCKOPT_SNDBUF, snd) < 0) return -1;
	socklen_t n = sizeof(int);
	if (getsockopt(h->socket, SOL_SOCKET, SO_RCVBUF, rcvOut, &n) < 0) return -1;
	n = sizeof(int);
	if (getsockopt(h->socket, SOL_SOCKET, SO_SNDBUF, sndOut, &n) < 0) return -1;
	return 0;
}


static void nl_set_rtt(ENetHost *h, enet_uint16 idx, enet_uint32 v) { h->peers[idx].roundTripTime = v; }
static void nl_set_last_rtt(ENetHost *h, enet_uint16 idx, enet_uint32 v) { h->peers[idx].lastRoundTripTime = v; }
static void nl_set_ping_interval(ENetHost *h, enet_uint16 idx, enet_uint32 v) { enet_peer_ping_interval(&h->peers[idx], v); }
static void nl_peer_timeout(ENetHost *h, enet_uint16 idx, enet_uint32 l, enet_uint32 mn, enet_uint32 mx) { enet_peer_timeout(&h->peers[idx], l, mn, mx); }
static void nl_peer_throttle(ENetHost *h, enet_uint16 idx, enet_uint32 i, enet_uint32 a, enet_uint32 d) { enet_peer_throttle_configure(&h->peers[idx], i, a, d); }
static void nl_peer_disconnect(ENetHost *h, enet_uint16 idx, int how, enet_uint32 data) {
	ENetPeer *p = &h->peers[idx];
	switch (how) {
	case 0: enet_peer_disconnect(p, data); break;
	case 1: enet_peer_disconnect_later(p, data); break;
	case 2: enet_peer_disconnect_now(p, data); break;
	default: enet_peer_reset(p); break;
	}
}
static void nl_peer_ping(ENetHost *h, enet_uint16 idx) { enet_peer_ping(&h->peers[idx]); }
static size_t nl_peer_count(ENetHost *h) { return h->peerCount; }
static size_t nl_channel_limit(ENetHost *h) { return h->channelLimit; }
static size_t nl_max_packet(ENetHost *h) { return h->maximumPacketSize; }
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
	// ThrottleScale is ENet's scale for a peer's packet throttle (32 means no
	// unreliable packet is dropped).
	ThrottleScale = C.ENET_PEER_PACKET_THROTTLE_SCALE
	// LossScale is ENet's fixed-point scale for a peer's packet loss.
	LossScale = C.ENET_PEER_PACKET_LOSS_SCALE
)

// The exported limits must be ENet's: these fail to compile otherwise.
var (
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
	g  enet.Host // go-enet's handle: creation and Destroy
	h  *C.ENetHost
	s  *C.nl_state
	ev []C.nl_event // the C event array, viewed from Go
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
	c.h.intercept = nil
	C.nl_state_free(c.s)
	c.g.Destroy()
	c.h, c.s, c.ev = nil, nil, nil
}

// pump services the host once, without waiting, and returns the batch of
// events.
func (c *chost) pump() []cevent {
	n := C.nl_pump(c.h, c.s)
	return c.ev[:n]
}

// park sends held acknowledgements, then waits up to ms milliseconds for a
// datagram.
func (c *chost) park(ms int) { C.nl_park(c.h, c.s, C.int(ms)) }

// serviceFailed reports whether the last pump's enet_host_service failed.
func (c *chost) serviceFailed() bool { return c.s.lastrc < 0 }

// counters of the intercept and service calls.
func (c *chost) heldAcks() uint64      { return uint64(c.s.cut) }
func (c *chost) wakes() uint64         { return uint64(c.s.wakes) }
func (c *chost) malformed() uint64     { return uint64(c.s.malformed) }
func (c *chost) serviceErrors() uint64 { return uint64(c.s.serviceErrors) }

func (c *chost) flush()         { C.enet_host_flush(c.h); c.s.held = 0 }
func (c *chost) readable() bool { return C.nl_readable(c.h) != 0 }

// flushHeld sends acknowledgements held back by the last pump, if any.
func (c *chost) flushHeld() {
	if c.s.held != 0 {
		c.flush()
	}
}

// setCoalesce turns on or off holding acknowledgements back until the
// next service call (see nl_intercept). It stays off with a libenet other
// than 1.3, whose receive loop nl_intercept relies on: a read error ends
// it, and it reads at most 256 datagrams.
func (c *chost) setCoalesce(on bool) {
	c.s.coalesce = 0
	if v := uint32(C.enet_linked_version()); on && v>>16&0xff == 1 && v>>8&0xff == 3 {
		c.s.coalesce = 1
	}
}
func (c *chost) peerCount() int    { return int(C.nl_peer_count(c.h)) }
func (c *chost) channelLimit() int { return int(C.nl_channel_limit(c.h)) }
func (c *chost) maxPacket() int    { return int(C.nl_max_packet(c.h)) }

// send queues data (copied once, into the ENet packet) for the peer in slot idx.
func (c *chost) send(idx uint16, ch uint8, data []byte, flags uint32) error {
	rc := C.nl_send(c.h, C.enet_uint16(idx), C.enet_uint8(ch), unsafe.Pointer(unsafe.SliceData(data)), C.size_t(len(data)), C.enet_uint32(flags))
	switch rc {
	case 0:
		return nil
	case -2:
		return errors.New("out of C memory")
	default:
		return errRefused
	}
}

var errRefused = errors.New("refused by ENet")

// broadcast queues data for every connected peer and returns how many took it.
func (c *chost) broadcast(ch uint8, data []byte, flags uint32) (int, error) {
	n := C.nl_broadcast(c.h, C.enet_uint8(ch), unsafe.Pointer(unsafe.SliceData(data)), C.size_t(len(data)), C.enet_uint32(flags))
	if n < 0 {
		return 0, errors.New("out of C memory")
	}
	return int(n), nil
}

// multicast queues one packet, shared, for the peers in the given slots.
func (c *chost) multicast(idx []uint16, ch uint8, data []byte, flags uint32) (int, error) {
	if len(idx) == 0 {
		return 0, nil
	}
	n := C.nl_multicast(c.h, (*C.enet_uint16)(unsafe.Pointer(&idx[0])), C.int(len(idx)), C.enet_uint8(ch), unsafe.Pointer(unsafe.SliceData(data)), C.size_t(len(data)), C.enet_uint32(flags))
	if n < 0 {
		return 0, errors.New("out of C memory")
	}
	return int(n), nil
}

// connect starts a connection and returns the slot index it uses.
func (c *chost) connect(to netip.AddrPort, channels int, data uint32) (uint16, bool) {
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
	var r, w C.int
	if C.nl_socket_buffers(c.h, C.int(rcv), C.int(snd), &r, &w) < 0 {
		return 0, 0, errors.New("setsockopt/getsockopt failed")
	}
	return int(r), int(w), nil
}

// localAddr is the address the host's socket is bound to.
func (c *chost) localAddr() (netip.AddrPort, error) {
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
		Throttle:              Throttle{Interval: ms(o.throttleInterval), Acceleration: uint32(o.throttleAcceleration), Deceleration: uint32(o.throttleDeceleration)},
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
	t := &c.s.tot
	return totals{uint32(t.sentData), uint32(t.sentPackets), uint32(t.receivedData), uint32(t.receivedPackets), uint32(t.serviceTime), uint32(t.connectedPeers)}
}

// disconnect kinds for peerDisconnect.
const (
	discNormal = iota
	discLater
	discNow
	discReset
)

func (c *chost) peerDisconnect(idx uint16, how int, data uint32) {
	C.nl_peer_disconnect(c.h, C.enet_uint16(idx), C.int(how), C.enet_uint32(data))
}
func (c *chost) peerPing(idx uint16) { C.nl_peer_ping(c.h, C.enet_uint16(idx)) }
func (c *chost) setPingInterval(idx uint16, ms uint32) {
	C.nl_set_ping_interval(c.h, C.enet_uint16(idx), C.enet_uint32(ms))
}
func (c *chost) setTimeout(idx uint16, limit, min, max uint32) {
	C.nl_peer_timeout(c.h, C.enet_uint16(idx), C.enet_uint32(limit), C.enet_uint32(min), C.enet_uint32(max))
}
func (c *chost) setThrottle(idx uint16, interval, acc, dec uint32) {
	C.nl_peer_throttle(c.h, C.enet_uint16(idx), C.enet_uint32(interval), C.enet_uint32(acc), C.enet_uint32(dec))
}
func (c *chost) setRTT(idx uint16, v uint32) { C.nl_set_rtt(c.h, C.enet_uint16(idx), C.enet_uint32(v)) }
func (c *chost) setLastRTT(idx uint16, v uint32) {
	C.nl_set_last_rtt(c.h, C.enet_uint16(idx), C.enet_uint32(v))
}
func (c *chost) setChannelLimit(n int) { C.enet_host_channel_limit(c.h, C.size_t(n)) }
func (c *chost) setBandwidthLimit(in, out uint32) {
	C.enet_host_bandwidth_limit(c.h, C.enet_uint32(in), C.enet_uint32(out))
}
func (c *chost) compressWithRangeCoder() error { return c.g.CompressWithRangeCoder() }

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

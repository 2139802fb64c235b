// nl.c is netloop's C side: the only code in the project that touches an
// ENet host's memory. See nl.h for the ownership rule.

#define _GNU_SOURCE // recvmmsg
#include "nl.h"

#include <enet/time.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

// ENet allocates through these, so that the process can count its live
// C allocations (hosts, peers, packets, fragments): a leak check. Each
// thread counts in a counter of its own, on a cache line of its own, so
// that hosts whose loops run on different threads share no line on this
// path; a block freed on another thread than the one that allocated it
// makes one count go up and another down, which nl_live adds up.
typedef struct nl_count {
	int64_t n; // written by its thread only
	struct nl_count *next;
	char pad[64 - sizeof(int64_t) - sizeof(void *)];
} nl_count;

static nl_count *nl_counts;        // every thread's counter, pushed once, never freed
static __thread nl_count *nl_mine; // this thread's

static nl_count *nl_counter(void) {
	nl_count *c = nl_mine;
	if (c != NULL) return c;
	c = aligned_alloc(64, sizeof *c);
	if (c == NULL) abort();
	memset(c, 0, sizeof *c);
	nl_count *head = __atomic_load_n(&nl_counts, __ATOMIC_ACQUIRE);
	do {
		c->next = head;
	} while (!__atomic_compare_exchange_n(&nl_counts, &head, c, 1, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE));
	nl_mine = c;
	return c;
}

static void nl_add(int64_t d) {
	nl_count *c = nl_counter();
	__atomic_store_n(&c->n, c->n + d, __ATOMIC_RELAXED); // one writer: no locked instruction
}

static void *nl_malloc(size_t n) {
	void *p = malloc(n);
	if (p != NULL) nl_add(1);
	return p;
}

static void nl_free(void *p) {
	if (p == NULL) return;
	nl_add(-1);
	free(p);
}

static void nl_no_memory(void) { abort(); }

int nl_initialize(void) {
	ENetCallbacks cb = { nl_malloc, nl_free, nl_no_memory };
	return enet_initialize_with_callbacks(ENET_VERSION, &cb);
}

int64_t nl_live(void) {
	int64_t sum = 0;
	for (nl_count *c = __atomic_load_n(&nl_counts, __ATOMIC_ACQUIRE); c != NULL; c = c->next) sum += __atomic_load_n(&c->n, __ATOMIC_RELAXED);
	return sum;
}

// The intercept and the packet free callback have no user pointer: every
// entry point that may run them sets this, on the calling thread, for the
// duration of the call.
static __thread nl_state *nl_cur;

static enet_uint16 nl_be16(const enet_uint8 *p) { return (enet_uint16)((p[0] << 8) | p[1]); }

static void nl_put_be16(enet_uint8 *p, enet_uint16 v) { p[0] = (enet_uint8)(v >> 8); p[1] = (enet_uint8)v; }

static void nl_put_be32(enet_uint8 *p, enet_uint32 v) {
	p[0] = (enet_uint8)(v >> 24); p[1] = (enet_uint8)(v >> 16); p[2] = (enet_uint8)(v >> 8); p[3] = (enet_uint8)v;
}

static int nl_half_open_state(const ENetPeer *p) { return p->state == ENET_PEER_STATE_ACKNOWLEDGING_CONNECT; }

// nl_refuse answers a refused CONNECT with the DISCONNECT that ENet's
// disconnect_now sends, addressed to the connecting peer's slot, so that a
// client learns at once instead of retransmitting for half a minute. At most
// 1000 a second: under a flood from forged addresses the answers go nowhere.
static void nl_refuse(nl_state *s, ENetHost *h, enet_uint16 clientPeer, enet_uint32 why) {
	if (h->checksum != NULL || clientPeer >= ENET_PROTOCOL_MAXIMUM_PEER_ID) return;
	enet_uint32 window = h->serviceTime / 1000;
	if (window != s->refuseWindow) {
		s->refuseWindow = window;
		s->refuseCount = 0;
	}
	if (s->refuseCount >= 1000) return;
	s->refuseCount++;
	enet_uint8 d[2 + sizeof(ENetProtocolDisconnect)];
	memset(d, 0, sizeof d);
	nl_put_be16(d, clientPeer); // no flags, session 0: a connecting peer checks no session
	ENetProtocolCommandHeader *c = (ENetProtocolCommandHeader *)(d + 2);
	c->command = ENET_PROTOCOL_COMMAND_DISCONNECT | ENET_PROTOCOL_COMMAND_FLAG_UNSEQUENCED;
	c->channelID = 0xFF;
	nl_put_be32(d + 2 + offsetof(ENetProtocolDisconnect, data), why);
	ENetBuffer b = { .data = d, .dataLength = sizeof d };
	enet_socket_send(h->socket, &h->receivedAddress, &b, 1);
}

// nl_admit decides on a CONNECT command (at c, in a datagram from
// h->receivedAddress) before ENet sees it; it returns 1 to drop the datagram.
// ENet gives every CONNECT a peer slot and keeps it half-open for up to 30s
// while it retransmits to an address that may never answer, so a flood of
// forged CONNECTs locks everybody out. Here a CONNECT that finds no free slot
// takes the oldest half-open one, and one address holds at most
// s->perAddress slots. A half-open slot is never reset while others are free:
// under load, a real client's answer may wait a while in the socket's queue.
// It walks the peers once, as ENet itself does for every CONNECT.
static int nl_admit(nl_state *s, ENetHost *h, const enet_uint8 *c) {
	enet_uint32 now = h->serviceTime;
	enet_uint32 connectID; // network byte order, as ENet keeps it
	memcpy(&connectID, c + offsetof(ENetProtocolConnect, connectID), sizeof connectID);
	enet_uint16 clientPeer = nl_be16(c + offsetof(ENetProtocolConnect, outgoingPeerID));
	ENetPeer *free = NULL, *oldest = NULL;
	size_t same = 0;
	for (ENetPeer *p = h->peers; p < &h->peers[h->peerCount]; p++) {
		if (nl_half_open_state(p) && (oldest == NULL || ENET_TIME_LESS(s->since[p - h->peers], s->since[oldest - h->peers]))) {
			oldest = p;
		}
		if (p->state == ENET_PEER_STATE_DISCONNECTED) {
			if (free == NULL) free = p;
			continue;
		}
		if (p->state == ENET_PEER_STATE_CONNECTING || p->address.host != h->receivedAddress.host) continue;
		if (p->address.port == h->receivedAddress.port && p->connectID == connectID) return 0; // a retransmission: ENet ignores it
		same++;
	}
	if (same >= s->perAddress) {
		s->refusedAddress++;
		nl_refuse(s, h, clientPeer, NL_REFUSED_ADDRESS);
		return 1;
	}
	if (free == NULL) {
		if (oldest == NULL) {
			s->refusedFull++;
			nl_refuse(s, h, clientPeer, NL_REFUSED_FULL);
			return 1;
		}
		enet_peer_reset(oldest);
		s->evicted++;
		free = oldest;
	}
	// ENet takes the first free slot, the one found above.
	s->since[free - h->peers] = now;
	return 0;
}

int nl_half_open(ENetHost *h) {
	int n = 0;
	for (ENetPeer *p = h->peers; p < &h->peers[h->peerCount]; p++) n += nl_half_open_state(p);
	return n;
}

// nl_scan walks the ENet header and commands of the datagram in
// h->receivedData and reports whether it carries a message (or may:
// compressed), or -1 to drop it. It counts datagrams ENet will reject (too
// short, unknown command, bad peer, truncated command), marks peers that
// sent a DISCONNECT command, so that the loop can tell a remote disconnect
// from a timeout, and admits CONNECTs (nl_admit).
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
		case ENET_PROTOCOL_COMMAND_SEND_RELIABLE:
			messages = 1;
			payload = nl_be16(d + off + offsetof(ENetProtocolSendReliable, dataLength)); break;
		case ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE:
			messages = 1;
			payload = nl_be16(d + off + offsetof(ENetProtocolSendUnreliable, dataLength)); break;
		case ENET_PROTOCOL_COMMAND_SEND_UNSEQUENCED:
			messages = 1;
			payload = nl_be16(d + off + offsetof(ENetProtocolSendUnsequenced, dataLength)); break;
		case ENET_PROTOCOL_COMMAND_SEND_FRAGMENT:
		case ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE_FRAGMENT:
			messages = 1;
			payload = nl_be16(d + off + offsetof(ENetProtocolSendFragment, dataLength)); break;
		case ENET_PROTOCOL_COMMAND_DISCONNECT:
			if (peer != NULL) s->remote[peerID] = 1;
			break;
		case ENET_PROTOCOL_COMMAND_CONNECT:
			// ENet handles a CONNECT only in a datagram for no peer.
			if (peer == NULL && nl_admit(s, h, d + off)) return -1;
			break;
		}
		off += size + payload;
		if (off > n) { s->malformed++; return messages; }
	}
	return messages;
}

// Batched reads. ENet reads its socket with one recvmsg per datagram, and
// then one more that finds it empty. netloop's own definition of
// enet_socket_receive, which the dynamic linker prefers to libenet's for
// libenet's own calls, reads up to NL_RX datagrams with one recvmmsg while
// a netloop host is being serviced on this thread, and hands them to ENet
// one per call; once a batch that left the socket empty is used up, it
// answers "nothing more" without asking the kernel again. It also tells
// the intercept, with no extra read, when a datagram is the last one
// waiting. Every other call (another library's hosts, go-enet's) goes to
// libenet's. Both definitions are weak: linked with a static libenet,
// whose own win, netloop reads and sends as ENet does (the intercept then
// peeks), instead of failing to link.
#define NL_RX 16

struct nl_rx {
	struct mmsghdr msg[NL_RX];
	struct iovec iov[NL_RX];
	struct sockaddr_in from[NL_RX];
	enet_uint8 buf[NL_RX][ENET_PROTOCOL_MAXIMUM_MTU];
};

static int nl_rx_used; // set once this enet_socket_receive has run: interposition works

// nl_libenet returns libenet's definition of name (the next one after
// netloop's), looked up once into *slot; NULL if there is none.
static void *nl_libenet(void **slot, const char *name) {
	void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (f == NULL) {
		f = dlsym(RTLD_NEXT, name);
		__atomic_store_n(slot, f, __ATOMIC_RELEASE);
	}
	return f;
}

typedef int (*nl_receive_fn)(ENetSocket, ENetAddress *, ENetBuffer *, size_t);

static int nl_libenet_receive(ENetSocket socket, ENetAddress *address, ENetBuffer *buffers, size_t bufferCount) {
	static void *slot;
	nl_receive_fn f = (nl_receive_fn)nl_libenet(&slot, "enet_socket_receive");
	return f == NULL ? -1 : f(socket, address, buffers, bufferCount);
}

// nl_rx_fill reads a batch of datagrams into s->rx, which must be used
// up; it returns how many, 0 if none was waiting, -1 on an error.
static int nl_rx_fill(nl_state *s, ENetSocket socket) {
	struct nl_rx *rx = s->rx;
	for (int i = 0; i < NL_RX; i++) {
		rx->msg[i].msg_hdr.msg_namelen = sizeof rx->from[i];
		rx->msg[i].msg_hdr.msg_flags = 0;
	}
	int n = recvmmsg(socket, rx->msg, NL_RX, MSG_DONTWAIT, NULL);
	if (n <= 0) {
		if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
			s->rxempty = 1;
			return 0;
		}
		return -1;
	}
	s->rxcalls++;
	s->rxn = n;
	s->rxpos = 0;
	s->rxempty = n < NL_RX;
	return n;
}

static void nl_tx_flush(nl_state *s);

__attribute__((weak)) int enet_socket_receive(ENetSocket socket, ENetAddress *address, ENetBuffer *buffers, size_t bufferCount) {
	nl_state *s = nl_cur;
	if (s == NULL || s->rx == NULL) return nl_libenet_receive(socket, address, buffers, bufferCount);
	if (socket == ENET_SOCKET_NULL && s->saved != ENET_SOCKET_NULL) return -1; // the intercept's cut
	if (socket != s->host->socket) return nl_libenet_receive(socket, address, buffers, bufferCount);
	if (!nl_rx_used) __atomic_store_n(&nl_rx_used, 1, __ATOMIC_RELAXED);
	if (s->txn > 0) nl_tx_flush(s); // the send phase's datagrams leave before the read phase
	struct nl_rx *rx = s->rx;
	if (s->rxpos == s->rxn) {
		if (s->rxempty) return 0;
		int n = nl_rx_fill(s, socket);
		if (n <= 0) return n;
	}
	int i = s->rxpos++;
	struct msghdr *m = &rx->msg[i].msg_hdr;
	size_t len = rx->msg[i].msg_len, left = len;
	if (m->msg_flags & MSG_TRUNC) return -1; // as libenet
	const enet_uint8 *from = rx->buf[i];
	for (size_t b = 0; b < bufferCount && left > 0; b++) {
		size_t k = left < buffers[b].dataLength ? left : buffers[b].dataLength;
		memcpy(buffers[b].data, from, k);
		from += k;
		left -= k;
	}
	if (left > 0) return -1; // longer than ENet's buffers: truncated, as libenet
	if (address != NULL) {
		address->host = (enet_uint32)rx->from[i].sin_addr.s_addr;
		address->port = ENET_NET_TO_HOST_16(rx->from[i].sin_port);
	}
	return (int)len;
}

// Batched sends. ENet sends a datagram per peer per service call, each
// with a sendmsg. While a netloop host is being serviced on this thread,
// netloop's own enet_socket_send sends the first datagram of the call
// into C at once and copies the next ones into s->tx, returning their
// length as libenet would; the batch leaves with one sendmmsg when it is
// full, before the service call starts reading (so that what the send
// phase sent leaves before the read phase, as with ENet), and when the
// call into C ends (nl_leave). Datagrams above NL_TX_SIZE go out at once,
// after the batch, in order. As with libenet, a datagram the socket has
// no room for (EAGAIN) is lost; one the kernel refuses is counted
// (sendErrors) and the rest still go.
#define NL_TX 32
#define NL_TX_SIZE 1500

struct nl_tx {
	struct mmsghdr msg[NL_TX];
	struct iovec iov[NL_TX];
	struct sockaddr_in to[NL_TX];
	enet_uint8 buf[NL_TX][NL_TX_SIZE];
};

typedef int (*nl_send_fn)(ENetSocket, const ENetAddress *, const ENetBuffer *, size_t);

static int nl_libenet_send(ENetSocket socket, const ENetAddress *address, const ENetBuffer *buffers, size_t bufferCount) {
	static void *slot;
	nl_send_fn f = (nl_send_fn)nl_libenet(&slot, "enet_socket_send");
	return f == NULL ? -1 : f(socket, address, buffers, bufferCount);
}

// nl_tx_flush sends the batch.
static void nl_tx_flush(nl_state *s) {
	struct nl_tx *tx = s->tx;
	ENetSocket socket = s->saved != ENET_SOCKET_NULL ? s->saved : s->host->socket;
	for (int i = 0; i < s->txn;) {
		// One datagram: sendmsg, which costs less than a batch of one.
		int n = s->txn - i == 1 ? (sendmsg(socket, &tx->msg[i].msg_hdr, MSG_NOSIGNAL) < 0 ? -1 : 1)
		                        : sendmmsg(socket, &tx->msg[i], (unsigned)(s->txn - i), MSG_NOSIGNAL);
		s->txcalls++;
		if (n > 0) {
			i += n;
			continue;
		}
		if (errno == EINTR) continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) s->sendErrors++;
		i++; // lost, as with libenet
	}
	s->txn = 0;
}

__attribute__((weak)) int enet_socket_send(ENetSocket socket, const ENetAddress *address, const ENetBuffer *buffers, size_t bufferCount) {
	nl_state *s = nl_cur;
	if (s == NULL || s->tx == NULL || address == NULL || socket == ENET_SOCKET_NULL || socket != s->host->socket) {
		return nl_libenet_send(socket, address, buffers, bufferCount);
	}
	size_t len = 0;
	for (size_t b = 0; b < bufferCount; b++) len += buffers[b].dataLength;
	if (len > NL_TX_SIZE || !s->txsent) {
		// The first datagram of a call into C leaves at once, as libenet
		// sends it: a lone answer waits for nothing, not even a copy into
		// a cold buffer (which cost a microsecond of ping-pong latency).
		// So does one too large for a slot, after the batch.
		if (s->txn > 0) nl_tx_flush(s);
		s->txsent = 1;
		s->txcalls++;
		return nl_libenet_send(socket, address, buffers, bufferCount);
	}
	if (s->txn == NL_TX) nl_tx_flush(s);
	struct nl_tx *tx = s->tx;
	int i = s->txn++;
	enet_uint8 *to = tx->buf[i];
	for (size_t b = 0; b < bufferCount; b++) {
		memcpy(to, buffers[b].data, buffers[b].dataLength);
		to += buffers[b].dataLength;
	}
	tx->iov[i].iov_len = len;
	tx->to[i] = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = ENET_HOST_TO_NET_16(address->port), .sin_addr.s_addr = address->host };
	tx->msg[i].msg_hdr.msg_namelen = sizeof tx->to[i];
	return (int)len;
}

// nl_leave ends a call into C that set nl_cur: what was batched leaves.
static void nl_leave(nl_state *s) {
	if (s->txn > 0) nl_tx_flush(s);
	s->txsent = 0;
	nl_cur = NULL;
}

// nl_buffered reports whether datagrams read by the last recvmmsg wait
// for ENet.
static int nl_buffered(const nl_state *s) { return s->rxpos < s->rxn; }

// nl_drained reports whether the datagram ENet just read was the last one
// waiting on h's socket.
static int nl_drained(nl_state *s, ENetHost *h) {
	if (__atomic_load_n(&nl_rx_used, __ATOMIC_RELAXED) && s->rx != NULL) {
		if (nl_buffered(s)) return 0;
		// A batch used up. One datagram that left the socket empty:
		// the socket is quiet, so it is the last. After more, others
		// may have come meanwhile: read them now (ENet's next read
		// takes them), so that one service call answers all it can,
		// several messages to a peer in one datagram.
		if (s->rxempty && s->rxn <= 1) return 1;
		return nl_rx_fill(s, h->socket) == 0;
	}
	char b;
	return recv(h->socket, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
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
	if (messages < 0) return 1;
	// ENet sends acknowledgements right after its receive loop, in a
	// datagram of their own, before the application can answer. When this
	// datagram carries a message, and is the last one waiting (and not the
	// 256th, after which ENet stops reading by itself), swap the socket out:
	// once ENet has handled the datagram, its next read fails and
	// enet_host_service returns before sending. The acknowledgements then
	// leave with the answers, in the same datagrams, at the next service
	// call or flush.
	if (s->coalesce && ++s->seen < 256 && messages && nl_drained(s, h)) {
		s->saved = h->socket;
		h->socket = ENET_SOCKET_NULL;
	}
	return 0;
}

// nl_packet_freed runs when ENet destroys a packet netloop made. An
// unreliable packet freed unsent while its peer is still connected, and
// this side is not ending connections, was dropped by ENet's packet
// throttle: ENet counts nothing, this does.
static void nl_packet_freed(ENetPacket *p) {
	nl_state *s = nl_cur;
	if (s == NULL || s->dropping || (p->flags & (ENET_PACKET_FLAG_RELIABLE | ENET_PACKET_FLAG_SENT))) return;
	size_t slot = (size_t)p->userData;
	if (slot != 0) {
		size_t i = slot - 1;
		if (i >= s->peers) return;
		ENetPeerState st = s->host->peers[i].state;
		// A peer that disconnected or timed out: its queue went with it.
		if (s->remote[i] || st == ENET_PEER_STATE_DISCONNECTED || st == ENET_PEER_STATE_ZOMBIE) return;
		s->throttledPeer[i]++;
	}
	s->throttled++;
}

nl_state *nl_state_new(ENetHost *h, int cap, const void *cookie) {
	nl_state *s = calloc(1, sizeof *s);
	if (s == NULL) return NULL;
	s->events = calloc((size_t)cap, sizeof *s->events);
	s->remote = calloc(h->peerCount, 1);
	s->since = calloc(h->peerCount, sizeof *s->since);
	s->throttledPeer = calloc(h->peerCount, sizeof *s->throttledPeer);
	s->rx = malloc(sizeof *s->rx);
	s->tx = malloc(sizeof *s->tx);
	if (s->events == NULL || s->remote == NULL || s->since == NULL || s->throttledPeer == NULL || s->rx == NULL || s->tx == NULL) {
		nl_state_free(s);
		return NULL;
	}
	for (int i = 0; i < NL_RX; i++) {
		s->rx->iov[i] = (struct iovec){ .iov_base = s->rx->buf[i], .iov_len = sizeof s->rx->buf[i] };
		s->rx->msg[i].msg_hdr = (struct msghdr){ .msg_name = &s->rx->from[i], .msg_iov = &s->rx->iov[i], .msg_iovlen = 1 };
	}
	for (int i = 0; i < NL_TX; i++) {
		s->tx->iov[i] = (struct iovec){ .iov_base = s->tx->buf[i] };
		s->tx->msg[i].msg_hdr = (struct msghdr){ .msg_name = &s->tx->to[i], .msg_iov = &s->tx->iov[i], .msg_iovlen = 1 };
	}
	s->host = h;
	s->cap = cap;
	s->peers = h->peerCount;
	s->saved = ENET_SOCKET_NULL;
	s->perAddress = ENET_PROTOCOL_MAXIMUM_PEER_ID;
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

void nl_state_free(nl_state *s) {
	if (s->events != NULL) nl_release(s);
	free(s->events);
	free(s->remote);
	free(s->since);
	free(s->throttledPeer);
	free(s->rx);
	free(s->tx);
	free(s);
}

// nl_destroy destroys the host, then its state.
void nl_destroy(ENetHost *h, nl_state *s) {
	nl_cur = s;
	s->dropping = 1;
	nl_release(s);
	h->intercept = NULL;
	enet_host_destroy(h);
	nl_leave(s);
	nl_state_free(s);
}

static void nl_put(nl_state *s, ENetEvent *ev) {
	nl_event *e = &s->events[s->n++];
	memset(e, 0, sizeof *e);
	e->type = ev->type;
	e->peer = ev->peer->incomingPeerID;
	e->channel = ev->channelID;
	e->data = ev->data;
	switch (ev->type) {
	case ENET_EVENT_TYPE_CONNECT:
		s->remote[e->peer] = 0;
		s->throttledPeer[e->peer] = 0;
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

void nl_flush(ENetHost *h, nl_state *s) {
	nl_cur = s;
	enet_host_flush(h);
	nl_leave(s);
	s->held = 0;
}

// nl_park sends the acknowledgements the last service call held back, then
// waits up to timeout ms for a datagram, as enet_host_service would.
void nl_park(nl_state *s, int timeout) {
	ENetHost *h = s->host;
	if (s->held) nl_flush(h, s);
	if (nl_buffered(s)) return;
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
int nl_pump(nl_state *s) {
	ENetHost *h = s->host;
	ENetEvent ev;
	nl_cur = s;
	nl_release(s);
	s->seen = 0;
	s->rxempty = 0; // the socket may have filled since the last call
	int rc = enet_host_service(h, &ev, 0);
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
	if (rc < 0) s->serviceErrors++;
	while (rc > 0) {
		if (ev.type != (ENetEventType)NL_EVENT_WAKE && ev.peer != NULL) nl_put(s, &ev);
		if (s->n == s->cap) break;
		rc = enet_host_check_events(h, &ev);
	}
	nl_leave(s);
	nl_take_totals(h, s);
	return s->n;
}

// nl_readable reports whether a datagram is waiting on the host's socket, or
// read and waiting for ENet.
int nl_readable(nl_state *s) {
	if (nl_buffered(s)) return 1;
	struct pollfd p = { .fd = s->host->socket, .events = POLLIN };
	return poll(&p, 1, 0) > 0;
}

// nl_packet_new makes a packet of a copy of data. Any goroutine may call it.
// Unreliable packets are sent as unreliable fragments above the MTU (ENet
// would send them as reliable ones).
ENetPacket *nl_packet_new(const void *data, size_t len, enet_uint32 flags) {
	if (!(flags & ENET_PACKET_FLAG_RELIABLE)) flags |= ENET_PACKET_FLAG_UNRELIABLE_FRAGMENT;
	ENetPacket *p = enet_packet_create(data, len, flags);
	if (p != NULL) p->freeCallback = nl_packet_freed;
	return p;
}

// nl_packet_destroy frees a packet no peer took. Any goroutine may call it.
void nl_packet_destroy(ENetPacket *p) {
	p->freeCallback = NULL;
	enet_packet_destroy(p);
}

// nl_send_one hands p to one peer. ENet sends an unreliable packet above the
// MTU reliably when its channel's unreliable sequence number is at 0xFFFF;
// that message is dropped instead (an unreliable message may be lost).
static int nl_send_one(ENetHost *h, nl_state *s, ENetPeer *peer, enet_uint8 ch, ENetPacket *p) {
	if (peer->state != ENET_PEER_STATE_CONNECTED || ch >= peer->channelCount) return NL_REFUSED;
	if (!(p->flags & ENET_PACKET_FLAG_RELIABLE) && p->dataLength > peer->mtu - sizeof(ENetProtocolHeader) - sizeof(ENetProtocolSendFragment) - (h->checksum != NULL ? 4 : 0) &&
	    peer->channels[ch].outgoingUnreliableSequenceNumber >= 0xFFFF) {
		s->sequenceDrops++;
		return NL_SEQUENCE;
	}
	return enet_peer_send(peer, ch, p) < 0 ? NL_REFUSED : NL_SENT;
}

// nl_peer_send hands p to the peer in slot idx; on failure p is destroyed.
int nl_peer_send(nl_state *s, enet_uint16 idx, enet_uint8 ch, ENetPacket *p) {
	ENetHost *h = s->host;
	p->userData = (void *)(size_t)(idx + 1);
	int rc = nl_send_one(h, s, &h->peers[idx], ch, p);
	if (rc != NL_SENT) nl_packet_destroy(p);
	return rc;
}

// nl_peer_send_data makes a packet of a copy of data and hands it to the
// peer in slot idx, as nl_peer_send does.
int nl_peer_send_data(nl_state *s, enet_uint16 idx, enet_uint8 ch, const void *data, size_t len, enet_uint32 flags) {
	ENetPacket *p = nl_packet_new(data, len, flags);
	if (p == NULL) return NL_REFUSED;
	return nl_peer_send(s, idx, ch, p);
}

// nl_multicast hands p, shared, to the peers in slots idx[0..n), and writes
// each one's nl_sent to result[i]; it returns how many took it. p is
// destroyed if none did.
int nl_multicast(ENetHost *h, nl_state *s, const enet_uint16 *idx, int n, enet_uint8 ch, ENetPacket *p, int8_t *result) {
	int sent = 0;
	for (int i = 0; i < n; i++) {
		result[i] = (int8_t)nl_send_one(h, s, &h->peers[idx[i]], ch, p);
		if (result[i] == NL_SENT) sent++;
	}
	if (p->referenceCount == 0) nl_packet_destroy(p);
	return sent;
}

// nl_queued_bytes is what the peer in slot idx holds in ENet's outgoing
// queues: payload bytes of every queued or unacknowledged command, plus the
// command's own allocation. It walks the queues.
size_t nl_queued_bytes(ENetHost *h, enet_uint16 idx) {
	ENetPeer *peer = &h->peers[idx];
	ENetList *lists[] = { &peer->outgoingCommands, &peer->sentReliableCommands, &peer->sentUnreliableCommands };
	size_t n = 0;
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		for (ENetListIterator it = enet_list_begin(lists[i]); it != enet_list_end(lists[i]); it = enet_list_next(it)) {
			n += ((ENetOutgoingCommand *)it)->fragmentLength + sizeof(ENetOutgoingCommand);
		}
	}
	return n;
}

int nl_connect(ENetHost *h, enet_uint32 host, enet_uint16 port, size_t channels, enet_uint32 data) {
	ENetAddress a = { .host = host, .port = port };
	ENetPeer *p = enet_host_connect(h, &a, channels, data);
	return p == NULL ? -1 : (int)p->incomingPeerID;
}

void nl_peer_disconnect(ENetHost *h, nl_state *s, enet_uint16 idx, nl_how how, enet_uint32 data) {
	ENetPeer *p = &h->peers[idx];
	nl_cur = s;
	s->dropping = 1;
	switch (how) {
	case NL_DISCONNECT: enet_peer_disconnect(p, data); break;
	case NL_DISCONNECT_LATER: enet_peer_disconnect_later(p, data); break;
	case NL_DISCONNECT_NOW: enet_peer_disconnect_now(p, data); break;
	case NL_RESET: enet_peer_reset(p); break;
	}
	s->dropping = 0;
	nl_leave(s);
}

void nl_peer_info_get(ENetHost *h, enet_uint16 idx, nl_peer_info *o) {
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

void nl_peer_timeout(ENetHost *h, enet_uint16 idx, enet_uint32 limit, enet_uint32 min, enet_uint32 max) {
	enet_peer_timeout(&h->peers[idx], limit, min, max);
}

void nl_peer_throttle(ENetHost *h, enet_uint16 idx, enet_uint32 interval, enet_uint32 acc, enet_uint32 dec) {
	enet_peer_throttle_configure(&h->peers[idx], interval, acc, dec);
}

void nl_peer_ping(ENetHost *h, enet_uint16 idx) { enet_peer_ping(&h->peers[idx]); }
void nl_set_ping_interval(ENetHost *h, enet_uint16 idx, enet_uint32 ms) { enet_peer_ping_interval(&h->peers[idx], ms); }
void nl_set_rtt(ENetHost *h, enet_uint16 idx, enet_uint32 ms) { h->peers[idx].roundTripTime = ms; }
void nl_set_last_rtt(ENetHost *h, enet_uint16 idx, enet_uint32 ms) { h->peers[idx].lastRoundTripTime = ms; }

int nl_socket_address(ENetHost *h, enet_uint32 *host, enet_uint16 *port) {
	ENetAddress a;
	if (enet_socket_get_address(h->socket, &a) < 0) return -1;
	*host = a.host;
	*port = a.port;
	return 0;
}

// nl_socket_buffers sets (when rcv or snd > 0) and reads back the socket's
// buffer sizes, as the kernel reports them.
int nl_socket_buffers(ENetHost *h, int rcv, int snd, int *rcvOut, int *sndOut) {
	if (rcv > 0 && enet_socket_set_option(h->socket, ENET_SOCKOPT_RCVBUF, rcv) < 0) return -1;
	if (snd > 0 && enet_socket_set_option(h->socket, ENET_SOCKOPT_SNDBUF, snd) < 0) return -1;
	socklen_t n = sizeof(int);
	if (getsockopt(h->socket, SOL_SOCKET, SO_RCVBUF, rcvOut, &n) < 0) return -1;
	n = sizeof(int);
	if (getsockopt(h->socket, SOL_SOCKET, SO_SNDBUF, sndOut, &n) < 0) return -1;
	return 0;
}

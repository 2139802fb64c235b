// nl.h declares netloop's C side: the state a host's loop keeps next to its
// ENetHost, and the helpers the Go side calls. Every function taking an
// ENetHost or nl_state must be called from the goroutine that runs that
// host's loop, except nl_packet_new and nl_packet_destroy (an unreferenced
// packet belongs to nobody) and nl_initialize, nl_live.

#ifndef NETLOOP_NL_H
#define NETLOOP_NL_H

#include <enet/enet.h>
#include <stddef.h>
#include <stdint.h>

enum {
	NL_EVENT_WAKE = 100, // the event type the intercept gives a wake datagram
	NL_COOKIE = 16,      // bytes in a wake datagram
};

// How a connection is ended (nl_peer_disconnect).
typedef enum {
	NL_DISCONNECT = 0,   // enet_peer_disconnect
	NL_DISCONNECT_LATER, // enet_peer_disconnect_later
	NL_DISCONNECT_NOW,   // enet_peer_disconnect_now
	NL_RESET,            // enet_peer_reset
} nl_how;

// What nl_peer_send and nl_multicast report for one peer.
typedef enum {
	NL_SENT = 0,
	NL_REFUSED = -1, // ENet refused it: not connected, channel, size
	NL_SEQUENCE = -2, // an unreliable message above the MTU met a full unreliable sequence window
} nl_sent;

// Data of the DISCONNECT a host sends to a CONNECT it refuses.
enum {
	NL_REFUSED_FULL = 0x7E7E0001,    // every peer slot holds a connection
	NL_REFUSED_ADDRESS = 0x7E7E0002, // the source address holds its limit of connections
};

// nl_event is one ENet event copied out of enet_host_service/check_events.
// The packet it refers to stays alive until the next nl_pump call.
typedef struct {
	int          type;
	enet_uint16  peer;     // slot index (incomingPeerID)
	enet_uint8   channel;
	enet_uint8   remote;   // DISCONNECT: the peer sent a disconnect command
	enet_uint32  data;     // CONNECT/DISCONNECT user data
	enet_uint32  flags;    // RECEIVE: packet flags
	enet_uint32  channels; // CONNECT: the peer's channel count
	enet_uint32  addrHost; // CONNECT: network byte order
	enet_uint16  addrPort; // CONNECT
	ENetPacket  *packet;   // RECEIVE
	enet_uint8  *bytes;    // RECEIVE: packet->data
	size_t       length;   // RECEIVE: packet->dataLength
} nl_event;

// nl_totals are ENet's host counters over the last pump.
typedef struct {
	enet_uint32 sentData, sentPackets, receivedData, receivedPackets, serviceTime;
	enet_uint32 connectedPeers;
} nl_totals;

// nl_state is the per-host C state the loop owns next to the ENetHost.
typedef struct {
	ENetHost   *host;
	enet_uint8  cookie[NL_COOKIE]; // wake datagram payload
	nl_event   *events;            // capacity cap, n in use
	int         cap, n;
	int         lastrc;            // last enet_host_service result
	int         coalesce;          // end service calls after the last waiting datagram
	int         seen;              // datagrams the intercept saw in this service call
	ENetSocket  saved;             // the socket, while host->socket is swapped out
	int         held;              // acknowledgements may be waiting to be sent
	int         dropping;          // this side is ending connections: freed packets are no throttle drops
	size_t      peers;
	enet_uint8 *remote;            // per slot: a DISCONNECT command arrived from the peer
	enet_uint32 *since;            // per slot: ENet time the slot became half-open
	uint64_t   *throttledPeer;     // per slot: unicast unreliable packets ENet's throttle dropped

	// Handshake defence (nl_admit).
	size_t      perAddress;        // connections one IPv4 address may hold
	enet_uint32 refuseWindow;      // second (ENet time / 1000) of refuseCount
	enet_uint32 refuseCount;       // refusals answered in refuseWindow

	uint64_t wakes;                // wake datagrams consumed
	uint64_t malformed;            // datagrams failing the header scan
	uint64_t serviceErrors;        // enet_host_service returned < 0
	uint64_t cut;                  // service calls ended after the last datagram
	uint64_t evicted;              // half-open slots reset to admit a newer CONNECT
	uint64_t refusedFull;          // CONNECTs refused: no slot free or half-open
	uint64_t refusedAddress;       // CONNECTs refused: per-address limit
	uint64_t throttled;            // unreliable packets ENet's throttle dropped
	uint64_t sequenceDrops;        // unreliable messages dropped for NL_SEQUENCE

	nl_totals tot;                 // ENet's counters as of the last pump, taken and reset

	// Batched reads (nl.c's enet_socket_receive): one recvmmsg fills rx,
	// whose datagrams ENet's receive loop then takes one by one.
	struct nl_rx *rx;
	int         rxn, rxpos;        // datagrams in rx, and taken by ENet
	int         rxempty;           // the recvmmsg that filled rx, in this service call, left the socket empty
	uint64_t    rxcalls;           // recvmmsg calls that returned datagrams

	// Batched sends (nl.c's enet_socket_send): datagrams ENet sends are
	// copied into tx and leave together, with sendmmsg.
	struct nl_tx *tx;
	int         txn;               // datagrams in tx
	int         txsent;            // a datagram has left in this call into C
	uint64_t    txcalls;           // sendmmsg calls
	uint64_t    sendErrors;        // datagrams the kernel refused to send (not EAGAIN)
} nl_state;

// nl_peer_info is a snapshot of one ENetPeer.
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

int     nl_initialize(void);
int64_t nl_live(void);

nl_state *nl_state_new(ENetHost *h, int cap, const void *cookie);
void      nl_state_free(nl_state *s);
void      nl_destroy(ENetHost *h, nl_state *s);

int  nl_pump(nl_state *s);
void nl_park(nl_state *s, int timeout);
void nl_flush(ENetHost *h, nl_state *s);
int  nl_readable(nl_state *s);
int  nl_half_open(ENetHost *h);

ENetPacket *nl_packet_new(const void *data, size_t len, enet_uint32 flags);
void        nl_packet_destroy(ENetPacket *p);
int nl_peer_send(nl_state *s, enet_uint16 idx, enet_uint8 ch, ENetPacket *p);
int nl_peer_send_data(nl_state *s, enet_uint16 idx, enet_uint8 ch, const void *data, size_t len, enet_uint32 flags);
int nl_multicast(ENetHost *h, nl_state *s, const enet_uint16 *idx, int n, enet_uint8 ch, ENetPacket *p, int8_t *result);
size_t nl_queued_bytes(ENetHost *h, enet_uint16 idx);

int  nl_connect(ENetHost *h, enet_uint32 host, enet_uint16 port, size_t channels, enet_uint32 data);
void nl_peer_disconnect(ENetHost *h, nl_state *s, enet_uint16 idx, nl_how how, enet_uint32 data);
void nl_peer_info_get(ENetHost *h, enet_uint16 idx, nl_peer_info *o);
void nl_peer_timeout(ENetHost *h, enet_uint16 idx, enet_uint32 limit, enet_uint32 min, enet_uint32 max);
void nl_peer_throttle(ENetHost *h, enet_uint16 idx, enet_uint32 interval, enet_uint32 acc, enet_uint32 dec);
void nl_peer_ping(ENetHost *h, enet_uint16 idx);
void nl_set_ping_interval(ENetHost *h, enet_uint16 idx, enet_uint32 ms);
void nl_set_rtt(ENetHost *h, enet_uint16 idx, enet_uint32 ms);
void nl_set_last_rtt(ENetHost *h, enet_uint16 idx, enet_uint32 ms);

int nl_socket_address(ENetHost *h, enet_uint32 *host, enet_uint16 *port);
int nl_socket_buffers(ENetHost *h, int rcv, int snd, int *rcvOut, int *sndOut);

#endif

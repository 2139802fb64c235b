// The C engine of package load: one client host driven by one thread, with
// no cgo call and no Go allocation per message. See cworker.go.
#ifndef LOAD_CWORKER_H
#define LOAD_CWORKER_H

#include <stdint.h>
#include <enet/enet.h>

typedef struct {
	ENetHost   *host;
	int         n;          // clients (peers of host)
	ENetPeer  **peers;
	uint64_t   *next;       // per client: sequence number of the next message
	uint64_t   *acked;      // per client: every message before it was echoed
	uint8_t    *connected;
	int         nconnected;
	int         window, size;
	enet_uint8  channel;
	enet_uint32 flags;      // ENet packet flags
	enet_uint32 wait;       // enet_host_service timeout, ms (0: busy-poll)
	int64_t     interval;   // ns between paced sends; 0: unpaced
	int64_t     maxlag;     // paced: the largest backlog kept, ns
	int64_t     nextSend;   // paced: when the next send is due
	int         cursor;     // paced: round-robin over clients
	int64_t     from, to;   // measured window, lg_now() ns
	int         running;    // the load has started: record what arrives
	int64_t    *samples;    // round-trip times in the window, ns
	int64_t     nsamples, cap;
	int64_t     messages, errors;
	unsigned char *buf;     // the message being sent
	int         stop;       // set by lg_stop from another thread
	int         failed;     // the client whose disconnect ended a call
	int         holdAcks;   // send acknowledgements with the next messages (lg_intercept)
	ENetSocket  saved;      // the socket, while lg_intercept has swapped it out
} lg_worker;

// Return codes of lg_connect, lg_service and lg_load.
enum { LG_OK = 0, LG_TIMEOUT = -1, LG_DISCONNECTED = -2, LG_STOPPED = -3, LG_NO_PEER = -4, LG_CONNECT_FAILED = -5 };

int64_t lg_now(void); // CLOCK_MONOTONIC, ns

// lg_new creates a client host for n clients; NULL if out of memory or ENet fails.
lg_worker *lg_new(int n, int channels, int window, int size, int channel, int reliable,
                  int wait, int64_t interval, int64_t maxlag, int64_t prealloc, int holdAcks);
void lg_free(lg_worker *w);
void lg_stop(lg_worker *w); // safe from any thread while w lives

// lg_connect connects every client to host:port (ENetAddress byte orders)
// and services until all are connected, or until deadline (lg_now() ns).
int lg_connect(lg_worker *w, enet_uint32 host, enet_uint16 port, int channels, int64_t deadline);
// lg_service services the host once and handles the events.
int lg_service(lg_worker *w);
// lg_load runs the load until to, recording echoes received in [from, to).
int lg_load(lg_worker *w, int64_t from, int64_t to);
// lg_disconnect disconnects every client, servicing until deadline at most.
void lg_disconnect(lg_worker *w, int64_t deadline);

#endif

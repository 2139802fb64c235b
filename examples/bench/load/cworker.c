#include "cworker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int64_t lg_now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void put64(unsigned char *p, uint64_t v) {
	for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p) {
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
	return v;
}

lg_worker *lg_new(int n, int channels, int window, int size, int channel, int reliable,
                  int wait, int64_t interval, int64_t maxlag, int64_t prealloc, int holdAcks) {
	lg_worker *w = calloc(1, sizeof *w);
	if (w == NULL) return NULL;
	w->n = n;
	w->peers = calloc((size_t)n, sizeof *w->peers);
	w->next = calloc((size_t)n, sizeof *w->next);
	w->acked = calloc((size_t)n, sizeof *w->acked);
	w->connected = calloc((size_t)n, 1);
	w->buf = calloc((size_t)size, 1);
	w->cap = prealloc > 0 ? prealloc : 1;
	w->samples = malloc((size_t)w->cap * sizeof *w->samples);
	w->host = enet_host_create(NULL, (size_t)n, (size_t)channels, 0, 0);
	if (!w->peers || !w->next || !w->acked || !w->connected || !w->buf || !w->samples || !w->host) {
		lg_free(w);
		return NULL;
	}
	w->window = window;
	w->size = size;
	w->channel = (enet_uint8)channel;
	w->flags = reliable ? ENET_PACKET_FLAG_RELIABLE : 0;
	w->wait = (enet_uint32)wait;
	w->interval = interval;
	w->maxlag = maxlag;
	w->saved = ENET_SOCKET_NULL;
	w->holdAcks = holdAcks;
	return w;
}

void lg_free(lg_worker *w) {
	if (w->host != NULL) enet_host_destroy(w->host);
	free(w->peers);
	free(w->next);
	free(w->acked);
	free(w->connected);
	free(w->buf);
	free(w->samples);
	free(w);
}

void lg_stop(lg_worker *w) { __atomic_store_n(&w->stop, 1, __ATOMIC_RELAXED); }

static int stopped(lg_worker *w) { return __atomic_load_n(&w->stop, __ATOMIC_RELAXED); }

static void lg_send(lg_worker *w, int i, int64_t now) {
	put64(w->buf, (uint64_t)now);
	put64(w->buf + 8, w->next[i]++);
	ENetPacket *p = enet_packet_create(w->buf, (size_t)w->size, w->flags);
	if (p == NULL || enet_peer_send(w->peers[i], w->channel, p) < 0) {
		if (p != NULL) enet_packet_destroy(p);
		w->errors++;
	}
}

static void lg_fill(lg_worker *w, int i, int64_t now) {
	while (w->next[i] - w->acked[i] < (uint64_t)w->window) lg_send(w, i, now);
}

static void lg_sample(lg_worker *w, int64_t rtt) {
	if (w->nsamples == w->cap) {
		int64_t *s = realloc(w->samples, (size_t)(w->cap * 2) * sizeof *s);
		if (s == NULL) return;
		w->samples = s;
		w->cap *= 2;
	}
	w->samples[w->nsamples++] = rtt;
}

// lg_receive checks and records one echo, and refills an unpaced window.
static void lg_receive(lg_worker *w, int i, enet_uint8 ch, const ENetPacket *p) {
	if (!w->running) return;
	int64_t now = lg_now();
	if (i < 0 || ch != w->channel || p->dataLength != (size_t)w->size) {
		w->errors++;
		return;
	}
	uint64_t seq = get64(p->data + 8);
	if (seq < w->acked[i] || seq >= w->next[i]) {
		w->errors++;
		return;
	}
	if (seq != w->acked[i]) w->errors++; // a gap in a reliable stream
	w->acked[i] = seq + 1;
	if (now >= w->from && now < w->to) {
		lg_sample(w, now - (int64_t)get64(p->data));
		w->messages++;
	}
	if (w->interval == 0) lg_fill(w, i, now);
}

static int lg_handle(lg_worker *w, ENetEvent *ev) {
	int i = ev->peer != NULL ? (int)(intptr_t)ev->peer->data - 1 : -1;
	switch (ev->type) {
	case ENET_EVENT_TYPE_CONNECT:
		if (i >= 0 && !w->connected[i]) {
			w->connected[i] = 1;
			w->nconnected++;
		}
		break;
	case ENET_EVENT_TYPE_DISCONNECT:
		if (i < 0) break;
		w->failed = i;
		if (!w->connected[i]) return LG_CONNECT_FAILED; // ENet gave up connecting
		w->connected[i] = 0;
		w->nconnected--;
		return LG_DISCONNECTED;
	case ENET_EVENT_TYPE_RECEIVE:
		lg_receive(w, i, ev->channelID, ev->packet);
		enet_packet_destroy(ev->packet);
		break;
	default:
		break;
	}
	return LG_OK;
}

// The intercept has no user pointer: lg_pump sets this around its service call.
static __thread lg_worker *lg_cur;

// lg_intercept runs for each datagram ENet reads. Once the socket has
// nothing more waiting, it swaps the socket out, so that ENet's next read
// fails and enet_host_service returns before it sends the acknowledgements
// of what it read in datagrams of their own: they leave with the next
// messages, in the same datagrams, at the next service call (as netloop
// does on the server side).
static int lg_intercept(ENetHost *h, ENetEvent *ev) {
	(void)ev;
	lg_worker *w = lg_cur;
	if (w == NULL || !w->holdAcks) return 0;
	char b;
	if (recv(h->socket, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		w->saved = h->socket;
		h->socket = ENET_SOCKET_NULL;
	}
	return 0;
}

// lg_pump services the host once (sending everything queued, reading what
// came, waiting up to w->wait ms if nothing did), then handles every event
// that call dispatched.
static int lg_pump(lg_worker *w) {
	ENetEvent ev;
	w->host->intercept = lg_intercept;
	lg_cur = w;
	int rc = enet_host_service(w->host, &ev, w->wait);
	lg_cur = NULL;
	if (w->saved != ENET_SOCKET_NULL) {
		w->host->socket = w->saved;
		w->saved = ENET_SOCKET_NULL;
		if (rc < 0) rc = enet_host_check_events(w->host, &ev);
	}
	while (rc > 0) {
		int e = lg_handle(w, &ev);
		if (e != LG_OK) return e;
		rc = enet_host_check_events(w->host, &ev);
	}
	if (rc < 0) w->errors++;
	return LG_OK;
}

int lg_connect(lg_worker *w, enet_uint32 host, enet_uint16 port, int channels, int64_t deadline) {
	ENetAddress a;
	a.host = host;
	a.port = port;
	for (int i = 0; i < w->n; i++) {
		ENetPeer *p = enet_host_connect(w->host, &a, (size_t)channels, 0);
		if (p == NULL) return LG_NO_PEER;
		p->data = (void *)(intptr_t)(i + 1);
		w->peers[i] = p;
	}
	while (w->nconnected < w->n) {
		if (stopped(w)) return LG_STOPPED;
		if (lg_now() >= deadline) return LG_TIMEOUT;
		int e = lg_pump(w);
		if (e != LG_OK) return e;
	}
	return LG_OK;
}

int lg_service(lg_worker *w) { return stopped(w) ? LG_STOPPED : lg_pump(w); }

// lg_pace sends the messages due by now, as far as the windows allow; a
// backlog older than maxlag is dropped, so a stalled loop does not burst.
static void lg_pace(lg_worker *w, int64_t now) {
	if (w->nextSend < now - w->maxlag) w->nextSend = now - w->maxlag;
	while (w->nextSend <= now) {
		int i = -1;
		for (int k = 0; k < w->n; k++) {
			int c = w->cursor;
			w->cursor = (w->cursor + 1) % w->n;
			if (w->next[c] - w->acked[c] < (uint64_t)w->window) {
				i = c;
				break;
			}
		}
		if (i < 0) return; // every window is full: wait for an echo
		lg_send(w, i, now);
		w->nextSend += w->interval;
	}
}

int lg_load(lg_worker *w, int64_t from, int64_t to) {
	w->from = from;
	w->to = to;
	w->running = 1;
	int64_t now = lg_now();
	w->nextSend = now;
	if (w->interval == 0) {
		for (int i = 0; i < w->n; i++) lg_fill(w, i, now);
	}
	for (;;) {
		if (stopped(w)) return LG_STOPPED;
		now = lg_now();
		if (now >= to) return LG_OK;
		if (w->interval > 0) lg_pace(w, now);
		int e = lg_pump(w);
		if (e != LG_OK) return e;
	}
}

void lg_disconnect(lg_worker *w, int64_t deadline) {
	w->running = 0;
	for (int i = 0; i < w->n; i++) {
		if (w->connected[i]) {
			enet_peer_disconnect(w->peers[i], 0);
		} else if (w->peers[i] != NULL) {
			enet_peer_disconnect_now(w->peers[i], 0); // still connecting
		}
	}
	ENetEvent ev;
	while (w->nconnected > 0 && lg_now() < deadline) {
		int rc = enet_host_service(w->host, &ev, 1);
		while (rc > 0) {
			int i = ev.peer != NULL ? (int)(intptr_t)ev.peer->data - 1 : -1;
			if (ev.type == ENET_EVENT_TYPE_RECEIVE) {
				enet_packet_destroy(ev.packet);
			} else if (ev.type == ENET_EVENT_TYPE_DISCONNECT && i >= 0 && w->connected[i]) {
				w->connected[i] = 0;
				w->nconnected--;
			}
			rc = enet_host_check_events(w->host, &ev);
		}
		if (rc < 0) break;
	}
	for (int i = 0; i < w->n; i++) {
		if (w->connected[i]) {
			enet_peer_disconnect_now(w->peers[i], 0);
			w->connected[i] = 0;
		}
	}
	w->nconnected = 0;
}

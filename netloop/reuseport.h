// Host groups: several ENet hosts of one process sharing one UDP port
// (Linux SO_REUSEPORT). See group.go.
#ifndef NETLOOP_REUSEPORT_H
#define NETLOOP_REUSEPORT_H

#include <enet/enet.h>

// nl_share_socket replaces h's socket with a new one that has SO_REUSEPORT
// set before it is bound to host:port (host in network byte order, port in
// host byte order, as in ENetAddress), with the options enet_host_create
// gives its sockets, under the same descriptor number. With exclusive set,
// it first checks that no socket of any process holds the port, SO_REUSEPORT
// or not (and picks the port if port is 0). It returns 0, or -errno.
int nl_share_socket(ENetHost *h, enet_uint32 host, enet_uint16 port, int exclusive);

// nl_steer_wakes attaches to the SO_REUSEPORT group of fd a classic BPF
// program that sends a datagram whose payload is exactly cookies[i] (each
// cookie_len bytes, a multiple of 4) to the i-th socket bound to the port,
// and leaves every other datagram to the kernel's hash of its addresses. It
// returns 0, or -errno.
int nl_steer_wakes(int fd, const unsigned char *cookies, int n, int cookie_len);

// nl_hold returns a duplicate of fd (close-on-exec), or -errno: it keeps
// the socket, and its place in the port's group, after ENet closes fd.
int nl_hold(int fd);

// nl_release_hold closes a descriptor from nl_hold.
void nl_release_hold(int fd);

#endif

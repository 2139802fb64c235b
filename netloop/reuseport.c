#define _GNU_SOURCE // dup3
#include "reuseport.h"

#include <errno.h>

#ifdef __linux__

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in nl_sockaddr(enet_uint32 host, enet_uint16 port) {
	struct sockaddr_in sin = {0};
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = host;
	sin.sin_port = htons(port);
	return sin;
}

// nl_probe_port binds a socket without SO_REUSEPORT to host:port, which
// fails if anything holds the port, and returns the port it got.
static int nl_probe_port(enet_uint32 host, enet_uint16 port) {
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) return -errno;
	struct sockaddr_in sin = nl_sockaddr(host, port);
	socklen_t len = sizeof sin;
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	close(fd);
	return ntohs(sin.sin_port);
}

int nl_share_socket(ENetHost *h, enet_uint32 host, enet_uint16 port, int exclusive) {
	if (exclusive) {
		int p = nl_probe_port(host, port);
		if (p < 0) return p;
		port = (enet_uint16)p;
	}
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) return -errno;
	int one = 1;
	struct sockaddr_in sin = nl_sockaddr(host, port);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	// What enet_host_create sets on its sockets.
	enet_socket_set_option(fd, ENET_SOCKOPT_NONBLOCK, 1);
	enet_socket_set_option(fd, ENET_SOCKOPT_BROADCAST, 1);
	enet_socket_set_option(fd, ENET_SOCKOPT_RCVBUF, ENET_HOST_RECEIVE_BUFFER_SIZE);
	enet_socket_set_option(fd, ENET_SOCKOPT_SNDBUF, ENET_HOST_SEND_BUFFER_SIZE);
	// The new socket takes the old one's descriptor number, which closes
	// the old one: ENet and the loop keep using h->socket.
	if (dup3(fd, h->socket, O_CLOEXEC) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	close(fd);
	if (enet_socket_get_address(h->socket, &h->address) < 0) return -errno;
	return 0;
}

static uint32_t nl_be32(const unsigned char *p) {
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int nl_steer_wakes(int fd, const unsigned char *cookies, int n, int cookie_len) {
	int words = cookie_len / 4;
	if (n < 1 || words < 1 || cookie_len % 4 != 0 || words > 64) return -EINVAL;
	// ld len; jeq #cookie_len, 1, 0; ret #-1; then per socket i, for each
	// word: ld [4w]; jeq #word, 0, <to the next socket's block>; and ret #i.
	// A datagram the program returns no socket for (-1 is past the last)
	// goes by the kernel's hash, as without a program. The program sees the
	// UDP payload.
	int block = 2 * words + 1;
	int len = 3 + n * block + 1;
	if (len > BPF_MAXINSNS) return -E2BIG;
	struct sock_filter *code = calloc((size_t)len, sizeof *code);
	if (code == NULL) return -ENOMEM;
	int k = 0;
	code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0);
	code[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)cookie_len, 1, 0);
	code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
	for (int i = 0; i < n; i++) {
		const unsigned char *c = cookies + (size_t)i * (size_t)cookie_len;
		for (int w = 0; w < words; w++) {
			code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(4 * w));
			// Past this jump: the rest of this word pair, the other words, the ret.
			unsigned char skip = (unsigned char)(2 * (words - w - 1) + 1);
			code[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nl_be32(c + 4 * w), 0, skip);
		}
		code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)i);
	}
	code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
	struct sock_fprog prog = { .len = (unsigned short)k, .filter = code };
	int rc = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
	int e = errno;
	free(code);
	return rc < 0 ? -e : 0;
}

int nl_hold(int fd) {
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return d < 0 ? -errno : d;
}

void nl_release_hold(int fd) { close(fd); }

#else

int nl_share_socket(ENetHost *h, enet_uint32 host, enet_uint16 port, int exclusive) {
	(void)h; (void)host; (void)port; (void)exclusive;
	return -ENOTSUP;
}

int nl_steer_wakes(int fd, const unsigned char *cookies, int n, int cookie_len) {
	(void)fd; (void)cookies; (void)n; (void)cookie_len;
	return -ENOTSUP;
}

int nl_hold(int fd) { (void)fd; return -ENOTSUP; }

void nl_release_hold(int fd) { (void)fd; }

#endif

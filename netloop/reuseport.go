package netloop

// The C side of host groups on one port: reuseport.c. Like cenet.go, these
// functions touch a host's C memory only before its loop runs.

/*
#cgo pkg-config: libenet
#include "reuseport.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"
)

// share is how a host's socket takes part in a group on one port.
type share uint8

const (
	shareNone  share = iota // a socket of its own (the default)
	shareFirst              // the first of a group: the port must be free
	shareJoin               // a later member: joins the first's port
)

// withShare makes New bind the host's socket with SO_REUSEPORT.
func withShare(s share) Option { return func(c *config) { c.share = s } }

// createAt is where New creates the host's socket: for a group's host on
// one port, an ephemeral port, until share binds it.
func (c *config) createAt(bind netip.AddrPort) netip.AddrPort {
	if c.share != shareNone {
		return netip.AddrPort{}
	}
	return bind
}

// share rebinds c's socket with SO_REUSEPORT, if the host is a group's.
func (h *Host) share(c *chost, bind netip.AddrPort) error {
	if h.cfg.share == shareNone {
		return nil
	}
	ip := bind.Addr().As4()
	host := *(*uint32)(unsafe.Pointer(&ip[0])) // network byte order: the bytes as they stand
	rc := C.nl_share_socket((*C.ENetHost)(unsafe.Pointer(c.h)), C.enet_uint32(host), C.enet_uint16(bind.Port()), C.int(boolInt(h.cfg.share == shareFirst)))
	if rc < 0 {
		return reuseError("SO_REUSEPORT socket", rc)
	}
	return nil
}

func reuseError(what string, rc C.int) error {
	err := syscall.Errno(-rc)
	if errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("%w: %s: %w", ErrNoReusePort, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// hold returns a duplicate of the host's socket descriptor, which keeps
// the socket in its port's group after the host closes its own. The host
// must not have run yet.
func (h *Host) hold() (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c == nil {
		return -1, ErrClosed
	}
	fd := C.nl_hold(C.int(h.c.h.socket))
	if fd < 0 {
		return -1, reuseError("dup", fd)
	}
	return int(fd), nil
}

func releaseHold(fd int) { C.nl_release_hold(C.int(fd)) }

// steerWakes makes the kernel deliver each host's wake datagrams to that
// host's socket, the i-th bound to the port, whatever the hash of their
// addresses says. fd is any socket of the group.
func steerWakes(fd int, hosts []*Host) error {
	cookies := make([]byte, 0, len(hosts)*cookieSize)
	for _, h := range hosts {
		cookies = append(cookies, h.cookie[:]...)
	}
	if rc := C.nl_steer_wakes(C.int(fd), (*C.uchar)(unsafe.Pointer(&cookies[0])), C.int(len(hosts)), cookieSize); rc < 0 {
		return reuseError("SO_ATTACH_REUSEPORT_CBPF", rc)
	}
	return nil
}

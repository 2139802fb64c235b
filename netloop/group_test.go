package netloop_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
)

// echoGroup runs g with one consumer per host that echoes every message
// and checks, per peer, that the peer is its host's and that messages come
// numbered 0, 1, 2, ... It reports each Connect's host index on connects.
// stop stops the group and waits for the consumers; it returns Run's error
// and the first problem a consumer saw.
func echoGroup(t *testing.T, g *netloop.Group) (connects <-chan int, stop func() (runErr, seen error)) {
	t.Helper()
	conn := make(chan int, 1024)
	errs := make(chan error, len(g.Hosts()))
	var wg sync.WaitGroup
	for i, h := range g.Hosts() {
		wg.Go(func() {
			var bad error
			next := make(map[netloop.Peer]uint32)
			for ev := range h.Events() {
				if ev.Peer.Host() != h && bad == nil {
					bad = fmt.Errorf("host %d: event of %v, whose host is another", i, ev.Peer)
				}
				switch ev.Kind {
				case netloop.EventConnect:
					conn <- i
				case netloop.EventReceive:
					if n := binary.BigEndian.Uint32(ev.Payload); n != next[ev.Peer] && bad == nil {
						bad = fmt.Errorf("host %d: %v: message %d, want %d", i, ev.Peer, n, next[ev.Peer])
					}
					next[ev.Peer]++
					if err := h.Send(context.Background(), ev.Peer, 0, ev.Payload, ev.Flag); err != nil && bad == nil {
						bad = fmt.Errorf("host %d: echo: %w", i, err)
					}
				}
			}
			errs <- bad
		})
	}
	stopRun := netlooptest.Go(t, g.Run)
	return conn, func() (error, error) {
		err := stopRun()
		wg.Wait()
		close(errs)
		var seen error
		for e := range errs {
			seen = errors.Join(seen, e)
		}
		return err, seen
	}
}

// client is a client host run by a test, stopped by stop (or at the end).
type client struct {
	*netloop.Host
	stop func() error
}

func newClient(t *testing.T) client {
	t.Helper()
	h, err := netloop.New("", netloop.WithLogger(zaptest.NewLogger(t)), netloop.WithDrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return client{h, netlooptest.Go(t, h.Run)}
}

func numbered(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// TestGroupOnePort runs two hosts on one port and connects client hosts
// until both serve some: every client's messages come back in order, each
// host hears only its own peers, every host's wake-ups reach it, and after
// the group stops, its clients are told, the port is free and ENet's C
// allocations are back where they were.
func TestGroupOnePort(t *testing.T) {
	base := netloop.LiveAllocations()
	g, err := netloop.NewGroup("127.0.0.1:0", 2, netloop.WithLogger(zaptest.NewLogger(t)), netloop.WithDrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	addrs := g.Addrs()
	if addrs[0].Port() == 0 || addrs[0] != addrs[1] || g.Addr() != addrs[0] {
		t.Fatalf("group addresses %v, want one port", addrs)
	}
	connects, stop := echoGroup(t, g)

	var clients []client
	var peers []netloop.Peer
	served := make([]int, 2)
	for served[0] == 0 || served[1] == 0 {
		if len(clients) == 64 { // a chance of 2^-63 with an even hash
			t.Fatalf("64 client hosts all on one host: %v", served)
		}
		c := newClient(t)
		clients = append(clients, c)
		peers = append(peers, netlooptest.Dial(t, c.Host, g.Addr().String(), 1, 0))
		select {
		case i := <-connects:
			served[i]++
		case <-time.After(netlooptest.Timeout):
			t.Fatal("no Connect on the group")
		}
	}
	const msgs = 200
	for i, c := range clients {
		for n := range uint32(msgs) {
			if err := c.Send(ctx(t), peers[i], 0, numbered(n), netloop.Reliable); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, c := range clients {
		for n := range uint32(msgs) {
			ev := netlooptest.Expect(t, c.Host, netloop.EventReceive)
			if got := binary.BigEndian.Uint32(ev.Payload); got != n {
				t.Fatalf("client %d: echo %d, want %d", i, got, n)
			}
		}
	}
	// Commands wake a parked loop with a datagram to its own port: each
	// must reach its own host, not the one the kernel's hash picks.
	for _, h := range g.Hosts() {
		for range 20 {
			if err := h.Flush(ctx(t)); err != nil {
				t.Fatal(err)
			}
		}
	}
	sum, per, err := g.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range per {
		if s.Connects != uint64(served[i]) || s.Wakes == 0 || s.Malformed != 0 {
			t.Errorf("host %d: %d connects (want %d), %d wakes (want some), %d malformed", i, s.Connects, served[i], s.Wakes, s.Malformed)
		}
	}
	if sum.Connects != uint64(len(clients)) || sum.Receives != uint64(len(clients)*msgs) || sum.PeerCount != per[0].PeerCount+per[1].PeerCount {
		t.Errorf("sum: %d connects, %d receives, %d slots; want %d, %d, %d", sum.Connects, sum.Receives, sum.PeerCount, len(clients), len(clients)*msgs, 2*per[0].PeerCount)
	}

	runErr, seen := stop()
	if runErr != nil || seen != nil {
		t.Fatalf("group: Run %v; consumers: %v", runErr, seen)
	}
	for i, c := range clients {
		if ev := netlooptest.Expect(t, c.Host, netloop.EventDisconnect); ev.Reason != netloop.ReasonRemote {
			t.Errorf("client %d: disconnect %v, want remote", i, ev.Reason)
		}
		if err := c.stop(); err != nil {
			t.Fatal(err)
		}
	}
	free, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(g.Addr()))
	if err != nil {
		t.Fatalf("port still held after the group stopped: %v", err)
	}
	free.Close()
	if after := netloop.LiveAllocations(); after != base {
		t.Fatalf("live C allocations: %d before, %d after", base, after)
	}
}

// TestGroupStopsTogether: one host that stops, by Close here, stops the
// group; Run returns nil and a second Run says the group is closed.
func TestGroupStopsTogether(t *testing.T) {
	base := netloop.LiveAllocations()
	g, err := netloop.NewGroup("127.0.0.1:0", 3, netloop.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	_, stop := echoGroup(t, g)
	for _, h := range g.Hosts() {
		if err := h.Flush(ctx(t)); err != nil { // answered once its loop runs
			t.Fatal(err)
		}
	}
	g.Hosts()[1].Close()
	select {
	case <-g.Done():
	case <-time.After(netlooptest.Timeout):
		t.Fatal("group still running after one host closed")
	}
	for i, h := range g.Hosts() {
		select {
		case <-h.Done():
		default:
			t.Errorf("host %d still running", i)
		}
	}
	if runErr, seen := stop(); runErr != nil || seen != nil {
		t.Fatalf("Run: %v; consumers: %v", runErr, seen)
	}
	is(t, g.Run(context.Background()), netloop.ErrClosed)
	if after := netloop.LiveAllocations(); after != base {
		t.Fatalf("live C allocations: %d before, %d after", base, after)
	}
}

// TestGroupCloseUnrun releases a group that never ran.
func TestGroupCloseUnrun(t *testing.T) {
	base := netloop.LiveAllocations()
	for _, newGroup := range []func(string, int, ...netloop.Option) (*netloop.Group, error){netloop.NewGroup, netloop.NewGroupPorts} {
		g, err := newGroup("127.0.0.1:0", 2)
		if err != nil {
			t.Fatal(err)
		}
		g.Close()
		g.Close()
		is(t, g.Run(context.Background()), netloop.ErrClosed)
		for _, a := range g.Addrs() {
			free, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(a))
			if err != nil {
				t.Fatalf("port still held after Close: %v", err)
			}
			free.Close()
		}
	}
	if after := netloop.LiveAllocations(); after != base {
		t.Fatalf("live C allocations: %d before, %d after", base, after)
	}
}

// TestGroupPorts runs three hosts on three ports; each serves a client.
func TestGroupPorts(t *testing.T) {
	g, err := netloop.NewGroupPorts("127.0.0.1:0", 3, netloop.WithLogger(zaptest.NewLogger(t)), netloop.WithDrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	addrs := g.Addrs()
	if addrs[0] == addrs[1] || addrs[1] == addrs[2] || addrs[0] == addrs[2] {
		t.Fatalf("addresses %v, want three ports", addrs)
	}
	connects, stop := echoGroup(t, g)
	for i, a := range addrs {
		c := newClient(t)
		p := netlooptest.Dial(t, c.Host, a.String(), 1, 0)
		if got := <-connects; got != i {
			t.Fatalf("client of port %d served by host %d", i, got)
		}
		if err := c.Send(ctx(t), p, 0, numbered(0), netloop.Reliable); err != nil {
			t.Fatal(err)
		}
		netlooptest.Expect(t, c.Host, netloop.EventReceive)
	}
	if runErr, seen := stop(); runErr != nil || seen != nil {
		t.Fatalf("Run: %v; consumers: %v", runErr, seen)
	}
}

// TestGroupBadInput: bad sizes, addresses and busy ports are errors, and
// nothing is left behind.
func TestGroupBadInput(t *testing.T) {
	base := netloop.LiveAllocations()
	busy, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		addr   string
		n      int
		ports  bool
		target error
	}{
		{"127.0.0.1:0", 0, false, netloop.ErrRange},
		{"127.0.0.1:0", netloop.MaxGroupHosts + 1, true, netloop.ErrRange},
		{"", 2, false, netloop.ErrAddress},
		{"", 2, true, netloop.ErrAddress},
		{"127.0.0.1:x", 2, false, netloop.ErrAddress},
		{"127.0.0.1:65535", 2, true, netloop.ErrRange},
		{"127.0.0.1:0", 2, false, netloop.ErrRange}, // with WithPeers(0) below
		{busy.LocalAddr().String(), 2, false, nil},
		{busy.LocalAddr().String(), 2, true, nil},
	} {
		opts := []netloop.Option{}
		if tc.addr == "127.0.0.1:0" && tc.n == 2 {
			opts = append(opts, netloop.WithPeers(0))
		}
		newGroup := netloop.NewGroup
		if tc.ports {
			newGroup = netloop.NewGroupPorts
		}
		g, err := newGroup(tc.addr, tc.n, opts...)
		if err == nil {
			g.Close()
			t.Fatalf("group of %d on %q (ports %v): no error", tc.n, tc.addr, tc.ports)
		}
		if tc.target != nil {
			is(t, err, tc.target)
		}
	}
	if after := netloop.LiveAllocations(); after != base {
		t.Fatalf("live C allocations: %d before, %d after", base, after)
	}
}

package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/netloop"
)

// TestGroupPeers connects 8,000 peers, more than one host's 4,095, to a
// group of two hosts on one port, from client hosts chosen so that half of
// them land on each host (the kernel sends all of a client host's
// datagrams to one host). Each exchanges a few messages, which come back in
// order and are seen, per peer, in order by the one host that serves it;
// then all disconnect, and goroutines and ENet's C allocations are back
// where they were. It takes about 5s with -race.
func TestGroupPeers(t *testing.T) { testGroupPeers(t, 8000) }

func testGroupPeers(t *testing.T, peers int) {
	const (
		servers     = 2
		clientHosts = 8  // 4 per server host
		msgs        = 3  // messages each peer sends, echoed
		window      = 50 // connects or disconnects in flight per client host
	)
	perClient := peers / clientHosts
	base := measure()
	start := time.Now()
	counts := newTally()
	errs := &errorLimit{t: t, tally: counts}

	g, err := netloop.NewGroup("127.0.0.1:0", servers, netloop.WithPeers(netloop.MaxPeers), netloop.WithPerAddressLimit(netloop.MaxPeers),
		netloop.WithLogger(quietLogger(t)), netloop.WithDrainTimeout(3*time.Second), netloop.WithSocketBuffers(4<<20, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	var consumers sync.WaitGroup
	for i, h := range g.Hosts() {
		consumers.Go(func() {
			next := make(map[netloop.Peer]uint32)
			for ev := range h.Events() {
				if ev.Peer.Host() != h {
					errs.Errorf("host %d: event of a peer of another host", i)
				}
				switch ev.Kind {
				case netloop.EventConnect:
					counts.add(fmt.Sprint("server.connect", i), 1)
					counts.add("server.connect", 1)
				case netloop.EventReceive:
					if _, seq, ok := parseNumbered(ev.Payload); !ok || seq != next[ev.Peer] {
						errs.Errorf("host %d: %v: message %d (intact: %v), want %d", i, ev.Peer, seq, ok, next[ev.Peer])
					}
					next[ev.Peer]++
					if err := h.Send(context.Background(), ev.Peer, ev.Channel, ev.Payload, ev.Flag); err != nil {
						errs.Errorf("host %d: echo to %v: %v", i, ev.Peer, err)
					}
					counts.add("server.receive", 1)
				case netloop.EventDisconnect:
					delete(next, ev.Peer)
					counts.add("server.disconnect", 1)
				}
			}
		})
	}
	runErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { runErr <- g.Run(ctx) }()
	var once sync.Once
	stopGroup := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-runErr:
				if err != nil {
					t.Errorf("group Run: %v", err)
				}
			case <-time.After(stepWait):
				t.Fatal("group Run did not return")
			}
			consumers.Wait()
		})
	}
	defer stopGroup()
	addr := hostAddr(g.Hosts()[0])

	newClient := func(i int) *node {
		return startNode(t, "", echoClient(i, counts, errs, false), netloop.WithPeers(perClient), netloop.WithSocketBuffers(1<<20, 1<<20), loadConnectTimeout)
	}

	tctx, tcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer tcancel()
	// Choose client hosts: each connects one peer, and is kept if the host
	// that peer reached has fewer than its share of client hosts.
	type chosen struct {
		*node
		key   int // its counters' suffix
		peers []netloop.Peer
	}
	var clients []*chosen
	taken := make([]int, servers)
	for attempt := 0; len(clients) < clientHosts; attempt++ {
		if attempt == 64+clientHosts {
			t.Fatalf("%d client hosts tried, served by %v", attempt, taken)
		}
		c := newClient(attempt)
		was := []int{counts.get("server.connect0"), counts.get("server.connect1")}
		p, err := c.Connect(tctx, addr, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		counts.await(t, fmt.Sprint("connect", attempt), 1, stepWait)
		counts.awaitFunc(t, "the server side of a connect", stepWait, func(n map[string]int) bool {
			return n["server.connect0"]+n["server.connect1"] > was[0]+was[1]
		})
		s := 0
		if counts.get("server.connect1") > was[1] {
			s = 1
		}
		if taken[s] == clientHosts/servers {
			if err := c.stop(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		taken[s]++
		clients = append(clients, &chosen{node: c, key: attempt, peers: []netloop.Peer{p}})
	}
	rejected := counts.get("client.connect") - clientHosts
	// each runs f for every client host at once and fails the test with
	// the first error.
	each := func(f func(c *chosen) error) {
		t.Helper()
		var g errgroup.Group
		for _, c := range clients {
			g.Go(func() error { return f(c) })
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	// throttle waits until at most window of the n operations started on
	// client c still wait for their event (counted under key+c.key).
	throttle := func(key string, c *chosen, n int) error {
		if n < window {
			return nil
		}
		k := fmt.Sprint(key, c.key)
		return counts.wait(fmt.Sprintf("%s to reach %d", k, n-window), stepWait, func(m map[string]int) bool { return m[k] >= n-window })
	}

	each(func(c *chosen) error {
		for j := 1; j < perClient; j++ {
			if err := throttle("connect", c, j); err != nil {
				return err
			}
			p, err := c.Connect(tctx, addr, 1, uint32(j))
			if err != nil {
				return fmt.Errorf("client %d: connect %d: %w", c.key, j, err)
			}
			c.peers = append(c.peers, p)
		}
		return nil
	})
	counts.await(t, "client.connect", peers+rejected, stepWait)
	counts.await(t, "server.connect", peers+rejected, stepWait)
	counts.await(t, "server.disconnect", rejected, stepWait)
	connected := time.Now()
	sum, per, err := g.Stats(tctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.ConnectedPeers != peers || per[0].ConnectedPeers != peers/servers {
		t.Fatalf("%d peers connected to the port, %d and %d on the hosts; want %d, %d each",
			sum.ConnectedPeers, per[0].ConnectedPeers, per[1].ConnectedPeers, peers, peers/servers)
	}

	each(func(c *chosen) error {
		for seq := range uint32(msgs) {
			for _, p := range c.peers {
				if err := c.Send(tctx, p, 0, numbered(0, seq, 32), netloop.Reliable); err != nil {
					return fmt.Errorf("client %d: send to %v: %w", c.key, p, err)
				}
			}
		}
		return nil
	})
	counts.await(t, "server.receive", peers*msgs, stepWait)
	counts.await(t, "client.echo", peers*msgs, stepWait)
	exchanged := time.Now()

	each(func(c *chosen) error {
		for j, p := range c.peers {
			if err := throttle("disconnect", c, j); err != nil {
				return err
			}
			if err := c.Disconnect(tctx, p, 0); err != nil {
				return fmt.Errorf("client %d: disconnect %v: %w", c.key, p, err)
			}
		}
		return nil
	})
	counts.await(t, "client.disconnect", peers+rejected, stepWait)
	counts.await(t, "server.disconnect", peers+rejected, stepWait)
	disconnected := time.Now()
	for _, c := range clients {
		if err := c.stop(); err != nil {
			t.Error(err)
		}
	}
	stopGroup()
	expectBaseline(t, base, 32<<20)
	t.Logf("%d peers on one port, %d per host, from %d client hosts (%d more tried): connected in %v, %d messages echoed in %v, disconnected in %v",
		peers, peers/servers, clientHosts, rejected, connected.Sub(start).Round(time.Millisecond), peers*msgs,
		exchanged.Sub(connected).Round(time.Millisecond), disconnected.Sub(exchanged).Round(time.Millisecond))
	if n := errs.count(); n > 0 {
		t.Errorf("%d errors", n)
	}
}

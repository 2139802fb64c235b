package integration

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/netloop"
)

// TestLoad connects 1000, then 4000 peers, from client hosts of 1000
// peers each, to one server host of 4095 slots: each exchanges a few
// messages, then all disconnect. Every Connect and Disconnect is seen on
// both sides, every message is echoed in order, and once the hosts have
// stopped, goroutines, ENet's live C allocations and the heap are back to
// where they were.
func TestLoad(t *testing.T) {
	t.Run("1000", func(t *testing.T) { testLoad(t, 1000) })
	t.Run("4000", func(t *testing.T) { testLoad(t, 4000) })
}

func testLoad(t *testing.T, peers int) {
	const (
		perHost = 1000
		msgs    = 3   // messages each peer sends, echoed
		window  = 100 // connects or disconnects in flight per client host
	)
	hosts := (peers + perHost - 1) / perHost
	base := measure()
	start := time.Now()
	counts := newTally()
	errs := &errorLimit{t: t, tally: counts}

	srv := startNode(t, "127.0.0.1:0", func(h *netloop.Host, ev netloop.Event) {
		switch ev.Kind {
		case netloop.EventConnect:
			counts.add("server.connect", 1)
		case netloop.EventReceive:
			if err := h.Send(context.Background(), ev.Peer, ev.Channel, ev.Payload, ev.Flag); err != nil {
				errs.Errorf("server: echo to %v: %v", ev.Peer, err)
			}
			counts.add("server.receive", 1)
		case netloop.EventDisconnect:
			if ev.Reason != netloop.ReasonRemote {
				errs.Errorf("server: %v disconnected (%v), want remote", ev.Peer, ev.Reason)
			}
			counts.add("server.disconnect", 1)
		}
	}, netloop.WithPeers(netloop.MaxPeers), netloop.WithSocketBuffers(4<<20, 4<<20))

	clients := make([]*node, hosts)
	for i := range clients {
		clients[i] = startNode(t, "", echoClient(i, counts, errs, true), netloop.WithPeers(perHost), loadConnectTimeout)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conns := make([][]netloop.Peer, hosts)
	// each runs f for every client host at once and fails the test with
	// the first error.
	each := func(f func(i int, c *node) error) {
		t.Helper()
		var g errgroup.Group
		for i, c := range clients {
			g.Go(func() error { return f(i, c) })
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	// throttle waits until at most window of the n operations started on
	// host i still wait for their event (counted under key+i).
	throttle := func(key string, i, n int) error {
		if n < window {
			return nil
		}
		k := fmt.Sprint(key, i)
		return counts.wait(fmt.Sprintf("%s to reach %d", k, n-window), stepWait, func(c map[string]int) bool { return c[k] >= n-window })
	}

	// Connect, window by window.
	each(func(i int, c *node) error {
		n := min(perHost, peers-i*perHost)
		for j := range n {
			if err := throttle("connect", i, j); err != nil {
				return err
			}
			p, err := c.Connect(ctx, hostAddr(srv.Host), 1, uint32(j))
			if err != nil {
				return fmt.Errorf("host %d: connect %d: %w", i, j, err)
			}
			conns[i] = append(conns[i], p)
		}
		return nil
	})
	if err := counts.wait(fmt.Sprintf("client.connect to reach %d", peers), loadConnectWait, func(c map[string]int) bool { return c["client.connect"] >= peers }); err != nil {
		// Say where the missing connections stand, on both sides.
		st := hostStats(t, srv.Host)
		t.Logf("server: %d connected, %d half-open, %d evicted, %d refused (%d by address), %d malformed datagrams",
			st.ConnectedPeers, st.HalfOpen, st.HalfOpenEvicted, st.ConnectsRefused, st.ConnectsRefusedAddress, st.Malformed)
		for i, c := range clients {
			for _, p := range conns[i] {
				if pi, err := c.PeerInfo(ctx, p); err == nil && pi.State != netloop.StateConnected {
					t.Logf("client %d: %v is %v (RTT %v, %d unacked commands, timeout %+v)", i, p, pi.State, pi.RTT, pi.UnackedCommands, pi.Timeout)
				}
			}
		}
		t.Fatal(err)
	}
	counts.await(t, "server.connect", peers, stepWait)
	connected := time.Now()
	busy := measure()

	// A few messages each, echoed.
	each(func(i int, c *node) error {
		for seq := range uint32(msgs) {
			for _, p := range conns[i] {
				if err := c.Send(ctx, p, 0, numbered(0, seq, 32), netloop.Reliable); err != nil {
					return fmt.Errorf("host %d: send to %v: %w", i, p, err)
				}
			}
		}
		return nil
	})
	counts.await(t, "server.receive", peers*msgs, stepWait)
	counts.await(t, "client.echo", peers*msgs, stepWait)
	exchanged := time.Now()

	// Everyone leaves.
	each(func(i int, c *node) error {
		for j, p := range conns[i] {
			if err := throttle("disconnect", i, j); err != nil {
				return err
			}
			if err := c.Disconnect(ctx, p, 0); err != nil {
				return fmt.Errorf("host %d: disconnect %v: %w", i, p, err)
			}
		}
		return nil
	})
	counts.await(t, "client.disconnect", peers, stepWait)
	counts.await(t, "server.disconnect", peers, stepWait)
	disconnected := time.Now()

	var cliDrops uint64
	for _, c := range clients {
		n, _ := udpDrops(c.Addr())
		cliDrops += n
	}
	srvDrops, _ := udpDrops(srv.Addr())
	st := hostStats(t, srv.Host)
	t.Logf("server read %d datagrams (%d wake-ups) and sent %d; the kernel dropped %d for the server and %d for the clients (full socket buffers)",
		st.ReceivedDatagrams, st.Wakes, st.SentDatagrams, srvDrops, cliDrops)
	if st.Connects != uint64(peers) || st.Disconnects != uint64(peers) || st.ConnectedPeers != 0 || st.Receives != uint64(peers*msgs) {
		t.Errorf("server stats: %d connects, %d disconnects, %d connected, %d receives; want %d, %d, 0, %d",
			st.Connects, st.Disconnects, st.ConnectedPeers, st.Receives, peers, peers, peers*msgs)
	}
	for _, c := range clients {
		if err := c.stop(); err != nil {
			t.Error(err)
		}
	}
	if err := srv.stop(); err != nil {
		t.Error(err)
	}
	stopped := time.Now()
	after := expectBaseline(t, base, 16<<20)
	t.Logf("%d peers on %d client hosts: connected in %v, %d messages echoed in %v, disconnected in %v, hosts stopped in %v",
		peers, hosts, connected.Sub(start).Round(time.Millisecond), peers*msgs, exchanged.Sub(connected).Round(time.Millisecond),
		disconnected.Sub(exchanged).Round(time.Millisecond), stopped.Sub(disconnected).Round(time.Millisecond))
	t.Logf("before: %v; all connected: %v; after: %v", base, busy, after)
	if n := errs.count(); n > 0 {
		t.Errorf("%d errors", n)
	}
}

// mailboxes routes a host's events to the goroutine that owns each peer.
// An event that comes before its peer is registered (a Connect can beat
// Connect's return to the caller) waits for the registration.
type mailboxes struct {
	mu    sync.Mutex
	box   map[netloop.Peer]chan netloop.Event
	early map[netloop.Peer][]netloop.Event
}

func newMailboxes() *mailboxes {
	return &mailboxes{box: make(map[netloop.Peer]chan netloop.Event), early: make(map[netloop.Peer][]netloop.Event)}
}

// deliver returns the host's event handler. It never blocks: a full
// mailbox is an error.
func (m *mailboxes) deliver(errs *errorLimit) func(*netloop.Host, netloop.Event) {
	return func(_ *netloop.Host, ev netloop.Event) {
		m.mu.Lock()
		defer m.mu.Unlock()
		ch, ok := m.box[ev.Peer]
		if !ok {
			m.early[ev.Peer] = append(m.early[ev.Peer], ev)
			return
		}
		select {
		case ch <- ev:
		default:
			errs.Errorf("mailbox of %v full: %v event dropped", ev.Peer, ev.Kind)
		}
	}
}

func (m *mailboxes) register(p netloop.Peer, ch chan netloop.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.box[p] = ch
	for _, ev := range m.early[p] {
		ch <- ev
	}
	delete(m.early, p)
}

func (m *mailboxes) unregister(p netloop.Peer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.box, p)
}

// TestSoak runs steady traffic from many peers, each reconnecting after a
// couple of hundred messages, for as long as ENETKIT_SOAK says (a Go
// duration, such as 5m); it is skipped when the variable is unset. At
// checkpoints it checks that goroutines, ENet's live C allocations and the
// heap do not grow, and that traffic flows; at the end, that everything is
// back to the baseline.
func TestSoak(t *testing.T) {
	env := os.Getenv("ENETKIT_SOAK")
	if env == "" {
		t.Skip("set ENETKIT_SOAK to a duration (e.g. 5m) to run the soak test")
	}
	d, err := time.ParseDuration(env)
	if err != nil || d <= 0 {
		t.Fatalf("ENETKIT_SOAK=%q: want a positive duration", env)
	}
	const (
		hosts   = 2
		perHost = 100 // virtual clients per client host
		cycle   = 200 // messages per connection before it reconnects
		gap     = 10 * time.Millisecond
	)
	every := max(d/10, 5*time.Second)
	base := measure()
	start := time.Now()
	counts := newTally()
	errs := &errorLimit{t: t, tally: counts}

	srv := startNode(t, "127.0.0.1:0", func(h *netloop.Host, ev netloop.Event) {
		if ev.Kind == netloop.EventReceive {
			if err := h.Send(context.Background(), ev.Peer, ev.Channel, ev.Payload, ev.Flag); err != nil {
				errs.Errorf("server: echo to %v: %v", ev.Peer, err)
			}
		}
	}, netloop.WithPeers(hosts*perHost+64), netloop.WithChannels(2))

	stop := make(chan struct{})
	var clients sync.WaitGroup
	nodes := make([]*node, hosts)
	for i := range nodes {
		boxes := newMailboxes()
		nodes[i] = startNode(t, "", boxes.deliver(errs), netloop.WithPeers(perHost), netloop.WithChannels(2), loadConnectTimeout)
		for j := range perHost {
			clients.Go(func() {
				if err := soakClient(nodes[i], boxes, hostAddr(srv.Host), byte(j), cycle, gap, stop, counts); err != nil {
					errs.Errorf("host %d client %d: %v", i, j, err)
				}
			})
		}
	}

	var first resources
	var lastMsgs int
	for n := 0; errs.count() == 0; n++ {
		remaining := time.Until(start.Add(d))
		if remaining <= 0 {
			break
		}
		// The soak's own clock: what it waits for is time passing.
		timer := time.NewTimer(min(every, remaining))
		<-timer.C
		now := measure()
		msgs, conns := counts.get("echo"), counts.get("connect")
		t.Logf("checkpoint %d at %v: %v; %d connections made, %d messages echoed (+%d)",
			n, time.Since(start).Round(time.Second), now, conns, msgs, msgs-lastMsgs)
		if msgs == lastMsgs {
			t.Errorf("no message echoed since the last checkpoint")
		}
		lastMsgs = msgs
		if n == 0 {
			first = now
			continue
		}
		if now.goroutines > first.goroutines+2 {
			t.Errorf("goroutines grew from %d to %d", first.goroutines, now.goroutines)
		}
		if now.live > first.live+5000 {
			t.Errorf("live C allocations grew from %d to %d", first.live, now.live)
		}
		if now.heap > first.heap+32<<20 {
			t.Errorf("heap grew from %.1f MiB to %.1f MiB", float64(first.heap)/(1<<20), float64(now.heap)/(1<<20))
		}
	}
	close(stop)
	clients.Wait()
	for _, c := range nodes {
		if err := c.stop(); err != nil {
			t.Error(err)
		}
	}
	if err := srv.stop(); err != nil {
		t.Error(err)
	}
	after := expectBaseline(t, base, 32<<20)
	t.Logf("soak of %v: %d connections, %d messages echoed; before %v, after %v",
		time.Since(start).Round(time.Second), counts.get("connect"), counts.get("echo"), base, after)
}

// soakClient connects, exchanges cycle messages one at a time with the
// server (each echoed, in order), disconnects, and starts over, until stop
// is closed.
func soakClient(c *node, boxes *mailboxes, addr string, tag byte, cycle int, gap time.Duration, stop <-chan struct{}, counts *tally) error {
	ctx := context.Background()
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for !closed(stop) {
		box := make(chan netloop.Event, 16)
		p, err := c.Connect(ctx, addr, 2, 0)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		boxes.register(p, box)
		ev, err := soakEvent(box)
		if err != nil || ev.Kind != netloop.EventConnect {
			return fmt.Errorf("connect: %v event (%v), %v", ev.Kind, ev.Reason, err)
		}
		counts.add("connect", 1)
		for seq := range uint32(cycle) {
			<-tick.C
			msg := numbered(tag, seq, 16+int(seq%100))
			if err := c.Send(ctx, p, uint8(seq%2), msg, netloop.Reliable); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			ev, err := soakEvent(box)
			if err != nil {
				return err
			}
			if got, n, ok := parseNumbered(ev.Payload); ev.Kind != netloop.EventReceive || !ok || got != tag || n != seq {
				return fmt.Errorf("%v event (%v): %d of %d, want echo %d of %d", ev.Kind, ev.Reason, n, got, seq, tag)
			}
			counts.add("echo", 1)
			if closed(stop) {
				break
			}
		}
		if err := c.Disconnect(ctx, p, 0); err != nil {
			return fmt.Errorf("disconnect: %w", err)
		}
		if ev, err := soakEvent(box); err != nil || ev.Kind != netloop.EventDisconnect || ev.Reason != netloop.ReasonLocal {
			return fmt.Errorf("disconnect: %v event (%v), %v", ev.Kind, ev.Reason, err)
		}
		boxes.unregister(p)
	}
	return nil
}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func soakEvent(box <-chan netloop.Event) (netloop.Event, error) {
	timer := time.NewTimer(stepWait)
	defer timer.Stop()
	select {
	case ev := <-box:
		return ev, nil
	case <-timer.C:
		return netloop.Event{}, fmt.Errorf("no event within %v", stepWait)
	}
}

// loadConnectTimeout is ENet's own connect timeout, for client hosts that
// open thousands of connections at once: with -race, beside the other
// packages' tests, a handshake may wait longer than netloop's default 5s.
var loadConnectTimeout = netloop.WithConnectTimeout(30 * time.Second)

// loadConnectWait is how long a load test waits for its connections:
// until ENet has decided each handshake. ENet retransmits a lost CONNECT
// or VERIFY_CONNECT after 0.5s and doubles the wait each time, so a
// handshake that lost datagrams in a row, as may happen while a burst of
// thousands overflows a socket buffer under -race, completes at 1.5, 3.5,
// 7.5 or 15.5s, plus however late the loaded loops serve their timers.
// By loadConnectTimeout (30s) it has completed or ended with a
// Disconnect, which the test reports as such.
const loadConnectWait = 35 * time.Second

// echoClient handles a load client host's events: it counts connects,
// echoes and disconnects (in all and for client host i, as "connect<i>",
// "disconnect<i>"), checks that each peer's echoes come back intact and in
// order, and, if local, that every disconnection is this side's.
func echoClient(i int, counts *tally, errs *errorLimit, local bool) func(*netloop.Host, netloop.Event) {
	next := make(map[netloop.Peer]uint32) // the host's consumer goroutine only
	return func(h *netloop.Host, ev netloop.Event) {
		switch ev.Kind {
		case netloop.EventConnect:
			counts.add(fmt.Sprint("connect", i), 1)
			counts.add("client.connect", 1)
		case netloop.EventReceive:
			_, seq, ok := parseNumbered(ev.Payload)
			if !ok || seq != next[ev.Peer] {
				errs.Errorf("client: %v: echo %d (intact: %v), want %d", ev.Peer, seq, ok, next[ev.Peer])
			}
			next[ev.Peer] = seq + 1
			counts.add("client.echo", 1)
		case netloop.EventDisconnect:
			if local && ev.Reason != netloop.ReasonLocal {
				errs.Errorf("client: %v disconnected (%v), want local", ev.Peer, ev.Reason)
			}
			counts.add(fmt.Sprint("disconnect", i), 1)
			counts.add("client.disconnect", 1)
		}
	}
}

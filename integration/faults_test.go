package integration

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enetkit/enetkit/integration/linkproxy"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// impaired is the link of TestImpairedDelivery, both ways: a poor mobile
// link.
var impaired = linkproxy.Link{
	Loss:      0.10,
	Delay:     50 * time.Millisecond,
	Jitter:    20 * time.Millisecond,
	Duplicate: 0.01,
	Reorder:   0.01,
}

// Channels of TestImpairedDelivery.
const (
	faultReliableChannels = 3 // 0, 1, 2: reliable
	faultChUnsequenced    = 3
	faultChUnreliable     = 4
	faultChBig            = 5 // reliable, fragmented
	faultChannels         = 6
)

// bigSizes are the fragmented messages of TestImpairedDelivery: above the
// MTU (1400) by far.
var bigSizes = []int{5 << 10, 100 << 10, 1 << 20}

// streamKey names one channel of one connection.
type streamKey struct {
	peer netloop.Peer
	ch   uint8
}

// deliveryChecker checks the guarantees of each flag on the messages one
// host receives. It is used by one consumer goroutine only.
type deliveryChecker struct {
	who   string
	errs  *errorLimit
	tally *tally
	big   map[int][sha256.Size]byte // expected hash by size

	next     map[streamKey]uint32              // reliable: next sequence number
	seen     map[streamKey]map[uint32]struct{} // unsequenced: numbers seen
	last     map[streamKey]uint32              // unreliable: last number seen
	bigIndex map[netloop.Peer]int              // big: index of the next size
}

func newDeliveryChecker(who string, errs *errorLimit, t *tally, big map[int][sha256.Size]byte) *deliveryChecker {
	return &deliveryChecker{
		who: who, errs: errs, tally: t, big: big,
		next:     make(map[streamKey]uint32),
		seen:     make(map[streamKey]map[uint32]struct{}),
		last:     make(map[streamKey]uint32),
		bigIndex: make(map[netloop.Peer]int),
	}
}

// check checks one received message and counts it in the tally under
// who+".reliable", ".unsequenced", ".unreliable" or ".big".
func (c *deliveryChecker) check(ev netloop.Event) {
	k := streamKey{ev.Peer, ev.Channel}
	if ev.Channel == faultChBig {
		i := c.bigIndex[ev.Peer]
		c.bigIndex[ev.Peer]++
		switch {
		case ev.Flag != netloop.Reliable:
			c.errs.Errorf("%s: big message with flag %v", c.who, ev.Flag)
		case i >= len(bigSizes):
			c.errs.Errorf("%s: big message %d of %d bytes: only %d were sent", c.who, i, len(ev.Payload), len(bigSizes))
		case len(ev.Payload) != bigSizes[i]:
			c.errs.Errorf("%s: big message %d has %d bytes, want %d (out of order or cut)", c.who, i, len(ev.Payload), bigSizes[i])
		case sha256.Sum256(ev.Payload) != c.big[bigSizes[i]]:
			c.errs.Errorf("%s: big message of %d bytes arrived corrupted", c.who, len(ev.Payload))
		}
		c.tally.add(c.who+".big", 1)
		return
	}
	tag, seq, ok := parseNumbered(ev.Payload)
	if !ok || tag != ev.Channel {
		c.errs.Errorf("%s: corrupted or misrouted message on channel %d (%v): tag %d, %d bytes", c.who, ev.Channel, ev.Flag, tag, len(ev.Payload))
		return
	}
	switch {
	case ev.Channel < faultReliableChannels:
		if ev.Flag != netloop.Reliable {
			c.errs.Errorf("%s: channel %d message with flag %v", c.who, ev.Channel, ev.Flag)
		}
		if want := c.next[k]; seq != want {
			c.errs.Errorf("%s: %v channel %d: reliable message %d, want %d (lost, duplicated or reordered)", c.who, ev.Peer, ev.Channel, seq, want)
		}
		c.next[k] = seq + 1
		c.tally.add(c.who+".reliable", 1)
	case ev.Channel == faultChUnsequenced:
		if ev.Flag != netloop.Unsequenced {
			c.errs.Errorf("%s: channel %d message with flag %v", c.who, ev.Channel, ev.Flag)
		}
		s := c.seen[k]
		if s == nil {
			s = make(map[uint32]struct{})
			c.seen[k] = s
		}
		if _, dup := s[seq]; dup {
			c.errs.Errorf("%s: %v: unsequenced message %d arrived twice", c.who, ev.Peer, seq)
		}
		s[seq] = struct{}{}
		c.tally.add(c.who+".unsequenced", 1)
	case ev.Channel == faultChUnreliable:
		if ev.Flag != netloop.Unreliable {
			c.errs.Errorf("%s: channel %d message with flag %v", c.who, ev.Channel, ev.Flag)
		}
		if last, ok := c.last[k]; ok && seq <= last {
			c.errs.Errorf("%s: %v: unreliable message %d after %d (duplicated or out of order)", c.who, ev.Peer, seq, last)
		}
		c.last[k] = seq
		c.tally.add(c.who+".unreliable", 1)
	default:
		c.errs.Errorf("%s: message on unused channel %d", c.who, ev.Channel)
	}
}

// TestImpairedDelivery runs 16 connections (4 client hosts of 4 peers)
// to one server through a lossy, slow, jittery link that also duplicates
// and reorders datagrams, one linkproxy per client host. Each connection
// sends 200 numbered reliable messages on each of 3 channels, and 200
// unsequenced and 200 unreliable ones on two more; one also sends 5 KiB,
// 100 KiB and 1 MiB messages. The server checks everything and echoes it,
// and the clients check the echoes: reliable messages arrive exactly once,
// in order, per connection and channel; unsequenced ones at most once;
// unreliable ones in strictly increasing order; big ones whole.
func TestImpairedDelivery(t *testing.T) {
	const (
		clientHosts  = 4
		peersPerHost = 4
		peers        = clientHosts * peersPerHost
		perChannel   = 200
		reliable     = peers * faultReliableChannels * perChannel
		deadline     = 60 * time.Second // the whole exchange
	)
	start := time.Now()
	counts := newTally()
	errs := &errorLimit{t: t, tally: counts}
	var draining atomic.Bool // the test is stopping: echoes may fail

	rng := rand.New(rand.NewPCG(7, 7))
	bigMsgs := make([][]byte, len(bigSizes))
	bigHash := make(map[int][sha256.Size]byte)
	for i, n := range bigSizes {
		bigMsgs[i] = make([]byte, n)
		for j := range bigMsgs[i] {
			bigMsgs[i][j] = byte(rng.Uint32())
		}
		bigHash[n] = sha256.Sum256(bigMsgs[i])
	}

	echo := func(h *netloop.Host, ev netloop.Event) {
		if err := h.Send(context.Background(), ev.Peer, ev.Channel, ev.Payload, ev.Flag); err != nil && !draining.Load() {
			errs.Errorf("server: echo to %v: %v", ev.Peer, err)
		}
	}
	srvCheck := newDeliveryChecker("server", errs, counts, bigHash)
	srv := startNode(t, "127.0.0.1:0", func(h *netloop.Host, ev netloop.Event) {
		switch ev.Kind {
		case netloop.EventConnect:
			counts.add("server.connect", 1)
		case netloop.EventReceive:
			srvCheck.check(ev)
			echo(h, ev)
		case netloop.EventDisconnect:
			if !draining.Load() {
				errs.Errorf("server: %v disconnected (%v) during the exchange", ev.Peer, ev.Reason)
			}
		}
	}, netloop.WithPeers(64), netloop.WithChannels(faultChannels))

	proxies := make([]*linkproxy.Proxy, clientHosts)
	stopProxies := make([]func(), clientHosts)
	clients := make([]*node, clientHosts)
	cliCheck := make([]*deliveryChecker, clientHosts)
	for i := range clientHosts {
		proxies[i], stopProxies[i] = startProxy(t, hostAddr(srv.Host), linkproxy.Config{Up: impaired, Down: impaired, Seed: int64(100 + i)})
		check := newDeliveryChecker("client", errs, counts, bigHash)
		cliCheck[i] = check
		clients[i] = startNode(t, "", func(h *netloop.Host, ev netloop.Event) {
			switch ev.Kind {
			case netloop.EventConnect:
				counts.add("client.connect", 1)
			case netloop.EventReceive:
				check.check(ev)
			case netloop.EventDisconnect:
				if !draining.Load() {
					errs.Errorf("client: %v disconnected (%v) during the exchange", ev.Peer, ev.Reason)
				}
			}
		}, netloop.WithPeers(peersPerHost), netloop.WithChannels(faultChannels), netloop.WithDrainTimeout(2*time.Second))
	}

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	conns := make([]netloop.Peer, 0, peers)
	for i, c := range clients {
		for range peersPerHost {
			p, err := c.Connect(ctx, proxies[i].Addr().String(), faultChannels, 0)
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			conns = append(conns, p)
		}
	}
	counts.await(t, "client.connect", peers, stepWait)
	counts.await(t, "server.connect", peers, stepWait)
	connected := time.Now()

	// Each connection sends a round of numbered messages every 2ms, so
	// that they spread over many datagrams and meet the link's loss,
	// duplication and reordering.
	var sent sync.WaitGroup
	for i, p := range conns {
		h := clients[i/peersPerHost]
		sent.Go(func() {
			send := func(ch uint8, data []byte, flag netloop.Flag) bool {
				if err := h.Send(ctx, p, ch, data, flag); err != nil {
					errs.Errorf("client: send on channel %d to %v: %v", ch, p, err)
					return false
				}
				return true
			}
			if i == 0 {
				for _, m := range bigMsgs {
					if !send(faultChBig, m, netloop.Reliable) {
						return
					}
				}
			}
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for seq := range uint32(perChannel) {
				<-tick.C
				for ch := range uint8(faultReliableChannels) {
					if !send(ch, numbered(ch, seq, 16+int(seq%64)), netloop.Reliable) {
						return
					}
				}
				if !send(faultChUnsequenced, numbered(faultChUnsequenced, seq, 24), netloop.Unsequenced) ||
					!send(faultChUnreliable, numbered(faultChUnreliable, seq, 24), netloop.Unreliable) {
					return
				}
			}
		})
	}
	sent.Wait()
	sentAt := time.Now()

	counts.await(t, "server.reliable", reliable, time.Until(start.Add(deadline)))
	counts.await(t, "client.reliable", reliable, time.Until(start.Add(deadline)))
	smallDone := time.Now()
	counts.await(t, "server.big", len(bigSizes), time.Until(start.Add(deadline)))
	counts.await(t, "client.big", len(bigSizes), time.Until(start.Add(deadline)))
	done := time.Now()

	// Connection figures, before the hosts stop.
	var loss, rtt float64
	for i, p := range conns {
		pi, err := clients[i/peersPerHost].PeerInfo(ctx, p)
		if err != nil {
			t.Fatalf("PeerInfo: %v", err)
		}
		loss += pi.PacketLoss
		rtt += float64(pi.RTT)
	}
	srvStats := hostStats(t, srv.Host)

	draining.Store(true)
	stopping := time.Now()
	for _, c := range clients {
		if err := c.stop(); err != nil {
			t.Errorf("client host: %v", err)
		}
	}
	if err := srv.stop(); err != nil {
		t.Errorf("server host: %v", err)
	}
	for _, stop := range stopProxies {
		stop()
	}
	stopped := time.Now()

	var total linkproxy.Stats
	for _, p := range proxies {
		s := p.Stats()
		for _, d := range []struct{ sum, s *linkproxy.DirStats }{{&total.Up, &s.Up}, {&total.Down, &s.Down}} {
			d.sum.Received += d.s.Received
			d.sum.Forwarded += d.s.Forwarded
			d.sum.Lost += d.s.Lost
			d.sum.Duplicated += d.s.Duplicated
			d.sum.Reordered += d.s.Reordered
			d.sum.Overflow += d.s.Overflow
			d.sum.Errors += d.s.Errors
		}
	}
	for _, d := range []struct {
		name string
		s    linkproxy.DirStats
	}{{"up", total.Up}, {"down", total.Down}} {
		t.Logf("link %s: %d datagrams read, %d lost (%.1f%%), %d duplicated, %d reordered, %d forwarded, %d overflow, %d errors",
			d.name, d.s.Received, d.s.Lost, 100*float64(d.s.Lost)/float64(max(d.s.Received, 1)), d.s.Duplicated, d.s.Reordered, d.s.Forwarded, d.s.Overflow, d.s.Errors)
	}
	sentEach := uint64(peers * perChannel)
	t.Logf("sent per flag: %d reliable + %d big, %d unsequenced, %d unreliable; server got %d, %d, %d, %d; clients got back %d, %d, %d, %d",
		reliable, len(bigSizes), sentEach, sentEach,
		counts.get("server.reliable"), counts.get("server.big"), counts.get("server.unsequenced"), counts.get("server.unreliable"),
		counts.get("client.reliable"), counts.get("client.big"), counts.get("client.unsequenced"), counts.get("client.unreliable"))
	t.Logf("ENet's estimate on the clients: mean packet loss %.1f%%, mean RTT %v; server sends rejected %d",
		100*loss/peers, time.Duration(rtt/peers).Round(time.Millisecond), srvStats.SendsRejected)
	t.Logf("time: connect %v, send %v, numbered messages all echoed %v and big ones %v after the last send, shutdown %v, total %v",
		connected.Sub(start).Round(time.Millisecond), sentAt.Sub(connected).Round(time.Millisecond),
		smallDone.Sub(sentAt).Round(time.Millisecond), done.Sub(sentAt).Round(time.Millisecond), stopped.Sub(stopping).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	if total.Up.Lost == 0 || total.Down.Lost == 0 || total.Up.Duplicated+total.Down.Duplicated == 0 || total.Up.Reordered+total.Down.Reordered == 0 {
		t.Errorf("the link did not impair the traffic: %+v", total)
	}
	if counts.get("server.unsequenced") == 0 || counts.get("server.unreliable") == 0 {
		t.Errorf("no unsequenced or unreliable message arrived at all")
	}
	for i, c := range cliCheck {
		for k, n := range c.next {
			if n != perChannel {
				t.Errorf("client host %d: %v channel %d: %d reliable echoes, want %d", i, k.peer, k.ch, n, perChannel)
			}
		}
	}
	for k, n := range srvCheck.next {
		if n != perChannel {
			t.Errorf("server: %v channel %d: %d reliable messages, want %d", k.peer, k.ch, n, perChannel)
		}
	}
	if n := errs.count(); n > 0 {
		t.Errorf("%d delivery errors", n)
	}
}

// Timeouts of TestTimeoutDetection.
var shortTimeout = netloop.Timeout{Limit: 4, Minimum: 300 * time.Millisecond, Maximum: 2 * time.Second}

const (
	// enetPingInterval is how long an idle ENet connection waits before it
	// sends a reliable ping, the first command a vanished peer leaves
	// unacknowledged.
	enetPingInterval = 500 * time.Millisecond
	// timeoutSlack covers scheduling on a loaded machine under -race, and
	// the loop's park interval.
	timeoutSlack = 1500 * time.Millisecond
)

// TestTimeoutDetection checks that ENet's timeouts, set small, end a
// connection whose link goes away, on both sides, and a connection attempt
// that is never answered.
func TestTimeoutDetection(t *testing.T) {
	t.Run("Vanished", testVanished)
	t.Run("HalfOpen", testHalfOpen)
}

// testVanished connects a client to a session.Server through a proxy,
// sets short timeouts on both ends, then blackholes the link: the server's
// session ends with session.ReasonTimeout and the client's connection with
// ReasonTimeout, each within the timeout maximum (plus the ping interval,
// since only an unacknowledged command can time out, and slack).
func testVanished(t *testing.T) {
	type ended struct {
		end *session.EndError
		at  time.Time
	}
	ready := make(chan struct{}, 1)
	ends := make(chan ended, 1)
	host, err := netloop.New("127.0.0.1:0", netloop.WithLogger(quietLogger(t)), netloop.WithDrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := session.New(host, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		if err := s.Server().Host().SetTimeout(ctx, s.Peer(), shortTimeout); err != nil {
			return err
		}
		ready <- struct{}{}
		for {
			m, err := s.Receive(ctx)
			if err != nil {
				var end *session.EndError
				if !errors.As(err, &end) {
					return err
				}
				ends <- ended{end, time.Now()}
				return nil
			}
			if err := s.Send(ctx, m.Channel, m.Data, m.Flag); err != nil {
				return err
			}
		}
	}), session.WithLogger(quietLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx) }()
	defer func() {
		stopSrv()
		if err := <-srvDone; err != nil {
			t.Errorf("server: %v", err)
		}
	}()

	proxy, _ := startProxy(t, hostAddr(host), linkproxy.Config{Seed: 1})
	evs := make(chan netloop.Event, 16)
	cli := startNode(t, "", forward(t, evs), netloop.WithPeers(1), netloop.WithDrainTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), stepWait)
	defer cancel()
	p, err := cli.Connect(ctx, proxy.Addr().String(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, evs, stepWait, "connect"); ev.Kind != netloop.EventConnect {
		t.Fatalf("%v event (%v), want connect", ev.Kind, ev.Reason)
	}
	if err := cli.SetTimeout(ctx, p, shortTimeout); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(stepWait):
		t.Fatal("the server's session did not start")
	}
	if err := cli.Send(ctx, p, 0, []byte("ping"), netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, evs, stepWait, "echo"); ev.Kind != netloop.EventReceive || string(ev.Payload) != "ping" {
		t.Fatalf("%v event %q, want the echo", ev.Kind, ev.Payload)
	}
	if pi, err := cli.PeerInfo(ctx, p); err != nil || pi.Timeout != shortTimeout {
		t.Fatalf("client timeouts %+v (%v), want %+v", pi.Timeout, err, shortTimeout)
	}

	cut := time.Now()
	proxy.Blackhole(true)
	limit := shortTimeout.Maximum + enetPingInterval + timeoutSlack

	ev := nextEvent(t, evs, limit, "the client's timeout")
	clientAfter := time.Since(cut)
	if ev.Kind != netloop.EventDisconnect || ev.Reason != netloop.ReasonTimeout || ev.Peer != p {
		t.Fatalf("client: %v event (%v) of %v, want a timeout of %v", ev.Kind, ev.Reason, ev.Peer, p)
	}
	var e ended
	select {
	case e = <-ends:
	case <-time.After(time.Until(cut.Add(limit))):
		t.Fatalf("the server's session did not end within %v of the cut", limit)
	}
	if e.end.Reason != session.ReasonTimeout {
		t.Errorf("server session ended with %v, want %v", e.end.Reason, session.ReasonTimeout)
	}
	s := proxy.Stats()
	t.Logf("timeouts %+v: client noticed after %v, server after %v (limit %v); blackholed %d up, %d down",
		shortTimeout, clientAfter.Round(time.Millisecond), e.at.Sub(cut).Round(time.Millisecond), limit, s.Up.Blackholed, s.Down.Blackholed)
	if st := srv.Stats(); st.Ended != 1 || st.Live != 0 {
		t.Errorf("server stats %+v, want one session ended", st)
	}
}

// connectTimeoutBound is when ENet gives up on a connect that is never
// answered, given the timeout maximum: it checks timeouts only when a
// retransmission falls due, and the connect's retransmission timeout starts
// at ENet's default RTT estimate (500ms) and doubles each time. So it is
// the first total of 500ms, 1s, 2s, ... at or beyond the maximum.
func connectTimeoutBound(maximum time.Duration) time.Duration {
	var total time.Duration
	for rto := 500 * time.Millisecond; total < maximum; rto *= 2 {
		total += rto
	}
	return total
}

// testHalfOpen connects through a link that is down from the start: the
// client's connect fails (ReasonConnectFailed, no Connect first) once its
// short timeout expires, and the server never hears of it.
func testHalfOpen(t *testing.T) {
	srvEvs := make(chan netloop.Event, 16)
	srv := startNode(t, "127.0.0.1:0", forward(t, srvEvs))
	proxy, _ := startProxy(t, hostAddr(srv.Host), linkproxy.Config{Seed: 2})
	proxy.Blackhole(true)
	evs := make(chan netloop.Event, 16)
	cli := startNode(t, "", forward(t, evs), netloop.WithPeers(1))

	ctx, cancel := context.WithTimeout(context.Background(), stepWait)
	defer cancel()
	start := time.Now()
	p, err := cli.Connect(ctx, proxy.Addr().String(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.SetTimeout(ctx, p, shortTimeout); err != nil {
		t.Fatalf("SetTimeout on a connecting peer: %v", err)
	}
	bound := connectTimeoutBound(shortTimeout.Maximum)
	ev := nextEvent(t, evs, bound+timeoutSlack, "the failed connect")
	after := time.Since(start)
	if ev.Kind != netloop.EventDisconnect || ev.Reason != netloop.ReasonConnectFailed || ev.Peer != p {
		t.Fatalf("%v event (%v) of %v, want the connect of %v to fail", ev.Kind, ev.Reason, ev.Peer, p)
	}
	if after < shortTimeout.Minimum {
		t.Errorf("connect failed after %v, before the timeout minimum %v", after, shortTimeout.Minimum)
	}
	select {
	case ev := <-srvEvs:
		t.Errorf("server saw a %v event through a dead link", ev.Kind)
	default:
	}
	if st := hostStats(t, srv.Host); st.Connects != 0 || st.Malformed != 0 {
		t.Errorf("server: %d connects, %d bad datagrams through a dead link", st.Connects, st.Malformed)
	}
	s := proxy.Stats()
	t.Logf("connect failed after %v (ENet's bound for a %v maximum: %v); %d connect attempts blackholed",
		after.Round(time.Millisecond), shortTimeout.Maximum, bound, s.Up.Blackholed)
	if s.Up.Blackholed == 0 {
		t.Errorf("the proxy saw no connect attempt")
	}
}

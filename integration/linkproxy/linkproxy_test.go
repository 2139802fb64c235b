package linkproxy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const timeout = 5 * time.Second // fails a test that waits longer

// window is how many datagrams a test sends before waiting for the proxy:
// far fewer than a default socket receive buffer holds.
const window = 50

type packet struct {
	data string
	from netip.AddrPort
	at   time.Time // when the test socket read it
}

// An endpoint is a test UDP socket; a goroutine reads it into in.
type endpoint struct {
	conn *net.UDPConn
	in   chan packet
}

// listen returns an endpoint on a fresh loopback port; dial one connected
// to addr.
func listen(t *testing.T) *endpoint {
	t.Helper()
	return newEndpoint(t)(net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}))
}

func dial(t *testing.T, addr *net.UDPAddr) *endpoint {
	t.Helper()
	return newEndpoint(t)(net.DialUDP("udp", nil, addr))
}

func newEndpoint(t *testing.T) func(*net.UDPConn, error) *endpoint {
	return func(conn *net.UDPConn, err error) *endpoint {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return readInto(t, conn)
	}
}

func readInto(t *testing.T, conn *net.UDPConn) *endpoint {
	e := &endpoint{conn: conn, in: make(chan packet, 1<<12)} // more than a test sends between reads
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			select {
			case e.in <- packet{string(buf[:n]), from, time.Now()}:
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); conn.Close(); <-done })
	return e
}

func (e *endpoint) send(t *testing.T, s string) {
	t.Helper()
	if _, err := e.conn.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func (e *endpoint) sendTo(t *testing.T, s string, to netip.AddrPort) {
	t.Helper()
	if _, err := e.conn.WriteToUDPAddrPort([]byte(s), to); err != nil {
		t.Fatal(err)
	}
}

func (e *endpoint) recv(t *testing.T) packet {
	t.Helper()
	select {
	case p := <-e.in:
		return p
	case <-time.After(timeout):
		t.Fatalf("no datagram on %v within %v", e.conn.LocalAddr(), timeout)
		return packet{}
	}
}

// decisions receives a value each time a pipe has decided a datagram's fate.
type decisions chan struct{}

func watch(p *pipe) decisions {
	d := make(decisions, 1<<14) // more than a test sends: the hook never blocks
	p.decided = func() { d <- struct{}{} }
	return d
}

func (d decisions) wait(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-d:
		case <-time.After(timeout):
			t.Fatalf("proxy decided %d of %d datagrams within %v", i, n, timeout)
		}
	}
}

// A rig is a running proxy in front of a test server.
type rig struct {
	p        *Proxy
	server   *endpoint
	up, down decisions
}

// start runs a proxy; the test's cleanup cancels it and checks that Run
// returns nil.
func start(t *testing.T, cfg Config) *rig {
	t.Helper()
	server := listen(t)
	p, err := New("127.0.0.1:0", server.conn.LocalAddr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{p: p, server: server, up: watch(p.up), down: watch(p.down)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(timeout):
			t.Errorf("Run did not return within %v of cancel", timeout)
		}
	})
	return r
}

func (r *rig) client(t *testing.T) *endpoint {
	t.Helper()
	return dial(t, r.p.Addr())
}

// sendAll sends msgs from c in windows, waiting after each window until the
// proxy has decided on all of it.
func (r *rig) sendAll(t *testing.T, c *endpoint, msgs []string) {
	t.Helper()
	for i, m := range msgs {
		c.send(t, m)
		if (i+1)%window == 0 || i == len(msgs)-1 {
			r.up.wait(t, i%window+1)
		}
	}
}

// fence makes the upstream link perfect, sends "fence" from c and returns
// what the server received before it. With no delay in force and every
// earlier datagram decided, all forwarded ones precede the fence.
func (r *rig) fence(t *testing.T, c *endpoint) []string {
	t.Helper()
	if err := r.p.SetLink(Upstream, Link{}); err != nil {
		t.Fatal(err)
	}
	c.send(t, "fence")
	var got []string
	for p := r.server.recv(t); p.data != "fence"; p = r.server.recv(t) {
		got = append(got, p.data)
	}
	return got
}

func numbers(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}

func TestForwardInOrder(t *testing.T) {
	r := start(t, Config{})
	c := r.client(t)
	msgs := numbers(200)
	var session netip.AddrPort
	for i := 0; i < len(msgs); i += window {
		for _, m := range msgs[i : i+window] {
			c.send(t, m)
		}
		for _, m := range msgs[i : i+window] {
			p := r.server.recv(t)
			if p.data != m {
				t.Fatalf("server got %q, want %q", p.data, m)
			}
			if !session.IsValid() {
				session = p.from
			} else if p.from != session {
				t.Fatalf("datagram from %v, want the session's %v", p.from, session)
			}
			r.server.sendTo(t, "re"+p.data, p.from)
		}
		for _, m := range msgs[i : i+window] {
			if p := c.recv(t); p.data != "re"+m {
				t.Fatalf("client got %q, want %q", p.data, "re"+m)
			}
		}
	}
	n := uint64(len(msgs))
	want := Stats{Up: DirStats{Received: n, Forwarded: n}, Down: DirStats{Received: n, Forwarded: n}}
	if got := r.p.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestLossAll(t *testing.T) {
	r := start(t, Config{Up: Link{Loss: 1}})
	c := r.client(t)
	r.sendAll(t, c, numbers(100))
	if s := r.p.Stats().Up; s.Lost != 100 || s.Forwarded != 0 {
		t.Errorf("Up stats = %+v, want 100 lost, none forwarded", s)
	}
	if got := r.fence(t, c); len(got) != 0 {
		t.Errorf("server got %d datagrams, want none", len(got))
	}
}

// dropped sends n numbered datagrams (n a multiple of window) through a
// proxy with cfg and returns the numbers that did not arrive. After each
// window it waits for the proxy's decisions, then for the survivors the
// Stats promise at the server.
func dropped(t *testing.T, cfg Config, n int) []int {
	t.Helper()
	r := start(t, cfg)
	c := r.client(t)
	msgs := numbers(n)
	arrived := make([]bool, n)
	got := 0
	for i := 0; i < n; i += window {
		for _, m := range msgs[i : i+window] {
			c.send(t, m)
		}
		r.up.wait(t, window)
		s := r.p.Stats().Up
		for ; got < i+window-int(s.Lost+s.BurstLost); got++ {
			m := r.server.recv(t).data
			j, err := strconv.Atoi(m)
			if err != nil || arrived[j] {
				t.Fatalf("server got %q: unknown or twice", m)
			}
			arrived[j] = true
		}
	}
	if extra := r.fence(t, c); len(extra) != 0 {
		t.Errorf("server got %d datagrams more than Stats says", len(extra))
	}
	var lost []int
	for i, ok := range arrived {
		if !ok {
			lost = append(lost, i)
		}
	}
	return lost
}

func TestLossSeeded(t *testing.T) {
	const n = 2000
	cfg := Config{Up: Link{Loss: 0.3}, Seed: 7}
	a := dropped(t, cfg, n)
	if len(a) < 500 || len(a) > 700 { // 600 expected, σ ≈ 20
		t.Errorf("dropped %d of %d at loss 0.3", len(a), n)
	}
	if b := dropped(t, cfg, n); !slices.Equal(a, b) {
		t.Errorf("same seed dropped different datagrams:\n%v\n%v", a, b)
	}
	cfg.Seed = 8
	if b := dropped(t, cfg, n); slices.Equal(a, b) {
		t.Error("seeds 7 and 8 dropped the same datagrams")
	}
}

func TestBurstLoss(t *testing.T) {
	const n = 2000
	lost := dropped(t, Config{Up: Link{BurstEnter: 0.05, BurstExit: 0.25}, Seed: 3}, n)
	// Bad a sixth of the time: 333 expected; bursts last 4 on average.
	if len(lost) < 200 || len(lost) > 470 {
		t.Errorf("dropped %d of %d", len(lost), n)
	}
	longest, run := 0, 0
	for i := range lost {
		if i > 0 && lost[i] == lost[i-1]+1 {
			run++
		} else {
			run = 1
		}
		longest = max(longest, run)
	}
	if longest < 4 {
		t.Errorf("longest burst %d datagrams, want >= 4", longest)
	}
}

func TestDuplicate(t *testing.T) {
	r := start(t, Config{Up: Link{Duplicate: 1}})
	c := r.client(t)
	msgs := numbers(50)
	for i := 0; i < len(msgs); i += 10 {
		count := map[string]int{}
		for _, m := range msgs[i : i+10] {
			c.send(t, m)
		}
		for range 20 {
			count[r.server.recv(t).data]++
		}
		for _, m := range msgs[i : i+10] {
			if count[m] != 2 {
				t.Errorf("%q arrived %d times, want 2", m, count[m])
			}
		}
	}
	if s := r.p.Stats().Up; s.Duplicated != 50 || s.Forwarded != 100 {
		t.Errorf("Up stats = %+v, want 50 duplicated, 100 forwarded", s)
	}
}

func TestDelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		link Link
		min  time.Duration
	}{
		{"fixed", Link{Delay: 30 * time.Millisecond}, 30 * time.Millisecond},
		{"jitter", Link{Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond}, 20 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, Config{Up: tc.link, Down: tc.link, Seed: 1})
			c := r.client(t)
			for i := range 5 {
				sent := time.Now()
				c.send(t, strconv.Itoa(i))
				p := r.server.recv(t)
				if d := p.at.Sub(sent); d < tc.min {
					t.Errorf("upstream datagram %d took %v, want >= %v", i, d, tc.min)
				}
				sent = time.Now()
				r.server.sendTo(t, p.data, p.from)
				if d := c.recv(t).at.Sub(sent); d < tc.min {
					t.Errorf("downstream datagram %d took %v, want >= %v", i, d, tc.min)
				}
			}
		})
	}
}

func TestReorder(t *testing.T) {
	r := start(t, Config{Up: Link{Reorder: 0.3, ReorderDelay: 50 * time.Millisecond}, Seed: 1})
	c := r.client(t)
	const n = 40
	for _, m := range numbers(n) {
		c.send(t, m)
	}
	late, last := 0, -1
	seen := map[int]bool{}
	for range n {
		i, _ := strconv.Atoi(r.server.recv(t).data)
		if i < last {
			late++
		}
		last = max(last, i)
		seen[i] = true
	}
	if late == 0 {
		t.Error("no datagram arrived out of order")
	}
	if len(seen) != n {
		t.Errorf("%d distinct datagrams arrived, want %d", len(seen), n)
	}
	if s := r.p.Stats().Up; s.Reordered == 0 || s.Forwarded != n {
		t.Errorf("Up stats = %+v, want some reordered, %d forwarded", s, n)
	}
}

func TestBlackhole(t *testing.T) {
	r := start(t, Config{})
	c := r.client(t)
	c.send(t, "hello")
	session := r.server.recv(t).from
	r.up.wait(t, 1)

	r.p.Blackhole(true)
	for i := range 10 {
		c.send(t, fmt.Sprint("up", i))
		r.server.sendTo(t, fmt.Sprint("down", i), session)
	}
	r.up.wait(t, 10)
	r.down.wait(t, 10)
	if s := r.p.Stats(); s.Up.Blackholed != 10 || s.Down.Blackholed != 10 {
		t.Errorf("Stats = %+v, want 10 blackholed each way", s)
	}

	r.p.Blackhole(false)
	c.send(t, "up-again")
	if p := r.server.recv(t); p.data != "up-again" || p.from != session {
		t.Errorf("server got %q from %v, want %q from %v", p.data, p.from, "up-again", session)
	}
	r.server.sendTo(t, "down-again", session)
	if p := c.recv(t); p.data != "down-again" {
		t.Errorf("client got %q, want %q", p.data, "down-again")
	}
}

func TestClients(t *testing.T) {
	r := start(t, Config{})
	clients := []*endpoint{r.client(t), r.client(t), r.client(t)}
	sessions := map[string]netip.AddrPort{}
	for round := range 2 {
		for i, c := range clients {
			c.send(t, fmt.Sprint("c", i))
			p := r.server.recv(t)
			if s, ok := sessions[p.data]; round > 0 && (!ok || s != p.from) {
				t.Errorf("round %d: %s came from %v, earlier from %v", round, p.data, p.from, s)
			}
			sessions[p.data] = p.from
			r.server.sendTo(t, "re"+p.data, p.from)
		}
		for i, c := range clients {
			if p := c.recv(t); p.data != fmt.Sprint("rec", i) {
				t.Errorf("client %d got %q", i, p.data)
			}
		}
	}
	distinct := map[netip.AddrPort]bool{}
	for _, s := range sessions {
		distinct[s] = true
	}
	if len(distinct) != len(clients) {
		t.Errorf("server saw sources %v, want %d distinct", sessions, len(clients))
	}
}

func TestOverflow(t *testing.T) {
	t.Run("queue", func(t *testing.T) {
		r := start(t, Config{Up: Link{Delay: time.Hour}, MaxQueue: 4})
		c := r.client(t)
		r.sendAll(t, c, numbers(10))
		if s := r.p.Stats().Up; s.Overflow != 6 {
			t.Errorf("Up stats = %+v, want 6 overflow", s)
		}
	})
	t.Run("size", func(t *testing.T) {
		r := start(t, Config{MaxDatagram: 8})
		c := r.client(t)
		c.send(t, "123456789")
		if got := r.fence(t, c); len(got) != 0 {
			t.Errorf("server got %q, want nothing before the fence", got)
		}
		if s := r.p.Stats().Up; s.Overflow != 1 || s.Received != 2 {
			t.Errorf("Up stats = %+v, want 2 received, 1 overflow", s)
		}
	})
}

func TestInvalid(t *testing.T) {
	const listen, target = "127.0.0.1:0", "127.0.0.1:9"
	for _, tc := range []struct {
		name           string
		listen, target string
		cfg            Config
	}{
		{"negative loss", listen, target, Config{Up: Link{Loss: -0.1}}},
		{"loss above 1", listen, target, Config{Down: Link{Loss: 1.5}}},
		{"NaN loss", listen, target, Config{Up: Link{Loss: math.NaN()}}},
		{"burst enter", listen, target, Config{Up: Link{BurstEnter: 2}}},
		{"burst exit", listen, target, Config{Down: Link{BurstExit: -1}}},
		{"duplicate", listen, target, Config{Up: Link{Duplicate: 1.01}}},
		{"reorder", listen, target, Config{Up: Link{Reorder: -0.5}}},
		{"delay", listen, target, Config{Up: Link{Delay: -time.Millisecond}}},
		{"jitter", listen, target, Config{Down: Link{Jitter: -1}}},
		{"reorder delay", listen, target, Config{Up: Link{ReorderDelay: -1}}},
		{"max datagram", listen, target, Config{MaxDatagram: -1}},
		{"huge datagram", listen, target, Config{MaxDatagram: 1 << 16}},
		{"max queue", listen, target, Config{MaxQueue: -1}},
		{"target without port", listen, "127.0.0.1", Config{}},
		{"target port 0", listen, "127.0.0.1:0", Config{}},
		{"bad target port", listen, "127.0.0.1:x", Config{}},
		{"bad listen", "127.0.0.1:x", target, Config{}},
		{"listen not local", "192.0.2.1:0", target, Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := New(tc.listen, tc.target, tc.cfg); err == nil {
				t.Errorf("New(%q, %q, %+v) succeeded, want an error", tc.listen, tc.target, tc.cfg)
				p.Run(canceled())
			}
		})
	}
	t.Run("SetLink", func(t *testing.T) {
		p, err := New(listen, target, Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Run(canceled())
		if err := p.SetLink(Downstream, Link{Loss: 2}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("SetLink = %v, want ErrInvalidConfig", err)
		}
		if err := p.SetLink(Direction(2), Link{}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("SetLink(Direction(2)) = %v, want ErrInvalidConfig", err)
		}
		if l := *p.down.link.Load(); l != (Link{}) {
			t.Errorf("link = %+v after a failed SetLink, want unchanged", l)
		}
	})
	t.Run("ErrInvalidConfig", func(t *testing.T) {
		if _, err := New(listen, target, Config{Up: Link{Loss: 2}}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New = %v, want ErrInvalidConfig", err)
		}
	})
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestRun(t *testing.T) {
	p, err := New("127.0.0.1:0", "127.0.0.1:9", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr().Port == 0 {
		t.Errorf("Addr() = %v, want a bound port", p.Addr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(timeout):
		t.Fatal("Run did not return after cancel")
	}
	if err := p.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}

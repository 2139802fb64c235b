package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/enetkit/enetkit/integration/linkproxy"
	"github.com/enetkit/enetkit/netloop"
)

// Helpers of faults_test.go, hostile_test.go, load_test.go and
// lifecycle_test.go. None of those tests calls t.Parallel: they compare
// netloop.LiveAllocations, which counts ENet's C allocations process-wide,
// and goroutine counts, so they must not overlap other in-process hosts.

// stepWait is the longest a test waits for one step (a connect, an echo,
// a shutdown) on loopback, under -race, on a loaded 2-core machine. It is a
// deadline that fails the test, never a pause.
const stepWait = 20 * time.Second

// quietLogger logs warnings and errors into the test's log; the debug lines
// of thousands of connections would only bury them.
func quietLogger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

// A node is a netloop host run by a test, with one goroutine consuming its
// events. It is stopped when the test ends, if the test did not stop it.
type node struct {
	*netloop.Host
	*runner
}

// runner is what stops a node. The test's cleanup holds it, not the host,
// so that a test that runs many hosts one after another does not keep them
// all in memory until it ends.
type runner struct {
	cancel   context.CancelFunc
	runErr   chan error    // Run's result
	consumed chan struct{} // closed when the consumer has seen Events close

	once sync.Once
	err  error
}

// startNode creates a host on addr ("" for a client host) and runs it. Every
// event is passed to handle, in order, on one goroutine; handle must not
// block for long (it may call the host's methods), and may be nil to
// discard events. The host's logger and a 3s drain timeout come first in
// opts, so opts may override them.
func startNode(t testing.TB, addr string, handle func(*netloop.Host, netloop.Event), opts ...netloop.Option) *node {
	t.Helper()
	// Test clients all come from 127.0.0.1: lift the per-address limit
	// (tests of the limit set it again).
	opts = append([]netloop.Option{netloop.WithLogger(quietLogger(t)), netloop.WithDrainTimeout(3 * time.Second), netloop.WithPerAddressLimit(netloop.MaxPeers)}, opts...)
	h, err := netloop.New(addr, opts...)
	if err != nil {
		t.Fatalf("netloop.New(%q): %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, runErr: make(chan error, 1), consumed: make(chan struct{})}
	go func() { r.runErr <- h.Run(ctx) }()
	go func() {
		defer close(r.consumed)
		for ev := range h.Events() {
			if handle != nil {
				handle(h, ev)
			}
		}
	}()
	name := h.Addr().String()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("host %s: %v", name, err)
		}
	})
	return &node{Host: h, runner: r}
}

// stop cancels the host's Run, waits for it to return and for the consumer
// to see Events close, and returns Run's error. It is idempotent.
func (r *runner) stop() error {
	r.once.Do(func() {
		r.cancel()
		timer := time.NewTimer(stepWait)
		defer timer.Stop()
		select {
		case r.err = <-r.runErr:
		case <-timer.C:
			r.err = errors.New("Run did not return")
			return
		}
		select {
		case <-r.consumed:
		case <-timer.C:
			r.err = errors.New("Events not closed after Run returned")
		}
	})
	return r.err
}

// forward returns an event handler that puts events on ch, for a test
// reading them one by one. It fails the test (instead of blocking the
// consumer) if ch is full.
func forward(t testing.TB, ch chan<- netloop.Event) func(*netloop.Host, netloop.Event) {
	return func(_ *netloop.Host, ev netloop.Event) {
		select {
		case ch <- ev:
		default:
			t.Errorf("event channel full: %v event of %v dropped", ev.Kind, ev.Peer)
		}
	}
}

// nextEvent returns the next event on ch, failing the test after d.
func nextEvent(t testing.TB, ch <-chan netloop.Event, d time.Duration, what string) netloop.Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case ev := <-ch:
		return ev
	case <-timer.C:
		t.Fatalf("no event within %v: waiting for %s", d, what)
	}
	return netloop.Event{}
}

// startProxy runs a linkproxy from a free loopback port to target until the
// test ends; stop (idempotent) stops it earlier.
func startProxy(t testing.TB, target string, cfg linkproxy.Config) (p *linkproxy.Proxy, stop func()) {
	t.Helper()
	p, err := linkproxy.New("127.0.0.1:0", target, cfg)
	if err != nil {
		t.Fatalf("linkproxy.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("proxy: %v", err)
				}
			case <-time.After(stepWait):
				t.Errorf("proxy did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return p, stop
}

// hostAddr is the address a client dials to reach h.
func hostAddr(h *netloop.Host) string {
	return fmt.Sprintf("127.0.0.1:%d", h.Addr().Port())
}

// A tally is a set of counters that event consumers bump and tests wait
// on. Each change wakes every waiter: waiting polls nothing.
type tally struct {
	mu      sync.Mutex
	n       map[string]int
	changed chan struct{} // closed, and replaced, at each change
}

func newTally() *tally {
	return &tally{n: make(map[string]int), changed: make(chan struct{})}
}

func (c *tally) add(key string, d int) {
	c.mu.Lock()
	c.n[key] += d
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *tally) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// await waits until counter key reaches want, failing the test after d.
func (c *tally) await(t testing.TB, key string, want int, d time.Duration) {
	t.Helper()
	c.awaitFunc(t, fmt.Sprintf("%s to reach %d", key, want), d, func(n map[string]int) bool { return n[key] >= want })
}

// awaitFunc waits until cond holds for the counters, failing the test
// after d. cond runs with the counters locked.
func (c *tally) awaitFunc(t testing.TB, what string, d time.Duration, cond func(map[string]int) bool) {
	t.Helper()
	if err := c.wait(what, d, cond); err != nil {
		t.Fatal(err)
	}
}

// wait is awaitFunc for goroutines other than the test's: it returns an
// error instead of failing the test.
func (c *tally) wait(what string, d time.Duration, cond func(map[string]int) bool) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		c.mu.Lock()
		ok, aborted, changed := cond(c.n), c.n[abortKey] > 0, c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		if aborted {
			return fmt.Errorf("gave up waiting for %s: errors were reported", what)
		}
		select {
		case <-changed:
		case <-timer.C:
			c.mu.Lock()
			defer c.mu.Unlock()
			return fmt.Errorf("timed out after %v waiting for %s; counters: %v", d, what, c.n)
		}
	}
}

// poll waits until cond holds, checking every few milliseconds, failing
// the test after d. It is for state that produces no event: host Stats,
// goroutine counts.
func poll(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

// hostStats returns h's Stats or fails the test.
func hostStats(t testing.TB, h *netloop.Host) netloop.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepWait)
	defer cancel()
	s, err := h.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// errorLimit reports failures from consumer goroutines through t.Errorf,
// up to a limit, so that a broken stream does not print a million lines.
// If tally is set, each error also counts there under abortKey, which ends
// every wait on that tally at once: a test that has failed stops waiting
// for messages that will never come.
type errorLimit struct {
	t     testing.TB
	tally *tally
	n     atomic.Int64
}

// abortKey is the tally counter of errors that ends waits.
const abortKey = "!errors"

func (e *errorLimit) Errorf(format string, args ...any) {
	e.t.Helper()
	switch n := e.n.Add(1); {
	case n <= 20:
		e.t.Errorf(format, args...)
	case n == 21:
		e.t.Errorf("more errors follow; not shown")
	}
	if e.tally != nil {
		e.tally.add(abortKey, 1)
	}
}

func (e *errorLimit) count() int64 { return e.n.Load() }

// A resources snapshot is what a test checks for leaks.
type resources struct {
	goroutines int
	heap       uint64 // HeapAlloc after two GCs
	live       int64  // netloop.LiveAllocations
}

func measure() resources {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return resources{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, live: netloop.LiveAllocations()}
}

func (r resources) String() string {
	return fmt.Sprintf("%d goroutines, heap %.1f MiB, %d live C allocations", r.goroutines, float64(r.heap)/(1<<20), r.live)
}

// expectBaseline waits (goroutines end a little after the hosts that
// started them) until the goroutine count and ENet's live allocations are
// back to base, and checks the heap is within heapSlack of it. It returns
// the final snapshot.
func expectBaseline(t testing.TB, base resources, heapSlack uint64) resources {
	t.Helper()
	var now resources
	deadline := time.Now().Add(stepWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		now = measure()
		if now.goroutines <= base.goroutines && now.live == base.live {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("not back to baseline after %v: before %v; now %v\n%s", stepWait, base, now, buf)
		}
		<-tick.C
	}
	if now.heap > base.heap+heapSlack {
		t.Errorf("heap %.1f MiB after, %.1f MiB before: grew by more than %.0f MiB", float64(now.heap)/(1<<20), float64(base.heap)/(1<<20), float64(heapSlack)/(1<<20))
	}
	return now
}

// A numbered message carries a stream tag, a sequence number and filler
// that depends on both, so that a corrupted or misdelivered one shows.
// Layout: tag (1 byte), seq (4 bytes, big endian), filler.
func numbered(tag byte, seq uint32, size int) []byte {
	b := make([]byte, max(size, 5))
	b[0] = tag
	binary.BigEndian.PutUint32(b[1:], seq)
	for i := 5; i < len(b); i++ {
		b[i] = byte(uint32(i)*31 + seq*7 + uint32(tag))
	}
	return b
}

// parseNumbered returns a numbered message's tag and sequence number; ok
// is false if b is not an intact numbered message.
func parseNumbered(b []byte) (tag byte, seq uint32, ok bool) {
	if len(b) < 5 {
		return 0, 0, false
	}
	tag, seq = b[0], binary.BigEndian.Uint32(b[1:])
	for i := 5; i < len(b); i++ {
		if b[i] != byte(uint32(i)*31+seq*7+uint32(tag)) {
			return tag, seq, false
		}
	}
	return tag, seq, true
}

// freeTCPAddr returns a loopback TCP address that was free a moment ago.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

package netloop_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// Benchmarks over real loopback ENet. Run them with
//
//	go test -run '^$' -bench . -benchmem ./netloop
//
// Allocation counts are process-wide (both hosts of a benchmark run in the
// test process), so each benchmark arranges for the side it does not
// measure to allocate nothing per message:
//
//   - BenchmarkSend's receiver drops every message inside its loop before
//     copying it (WithEventBuffer(0), WithMaxPending(0), WithSlowPolicy(SlowDropAll)): allocs/op is the
//     sender's cost per message, the Send call and the loop's hand-off to
//     ENet included.
//   - BenchmarkReceive's sender is a netloop host, whose sends cost no Go
//     allocation: allocs/op is the receiver's cost per message, from the
//     datagram to the consumer.
//
// One op is one message. A benchmark's hosts are created, connected and
// stopped for each b.N; setup and shutdown are outside the timer.

// benchTimeout bounds every wait of a benchmark.
const benchTimeout = 2 * time.Minute

// benchCtx returns a context that ends with the benchmark, or after benchTimeout.
func benchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	b.Cleanup(cancel)
	return ctx
}

// benchHost creates a host without logging and runs it until the benchmark
// ends. The cleanup stops it, drains its remaining events and waits until
// Run has returned and Events is closed: no goroutine outlives it.
func benchHost(b *testing.B, addr string, opts ...netloop.Option) *netloop.Host {
	b.Helper()
	h, err := netloop.New(addr, append([]netloop.Option{netloop.WithDrainTimeout(time.Second)}, opts...)...)
	if err != nil {
		b.Fatalf("New(%q): %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		drained := make(chan struct{})
		go func() { // a benchmark's own consumer may range over Events too: both end when it closes
			for range h.Events() {
			}
			close(drained)
		}()
		select {
		case err := <-errc:
			if err != nil {
				b.Errorf("Run: %v", err)
			}
		case <-time.After(benchTimeout):
			b.Errorf("Run did not return")
		}
		<-drained
	})
	return h
}

// benchEvent returns the next event of h, of kind k.
func benchEvent(ctx context.Context, b *testing.B, h *netloop.Host, k netloop.Kind) netloop.Event {
	b.Helper()
	select {
	case ev, ok := <-h.Events():
		if !ok || ev.Kind != k {
			b.Fatalf("event %+v (open %v), want %v", ev, ok, k)
		}
		return ev
	case <-ctx.Done():
		b.Fatalf("no %v event: %v", k, ctx.Err())
	}
	return netloop.Event{}
}

// benchPair runs a server and a client host with the given options (the
// server's after common), connects them and consumes both Connect events.
func benchPair(b *testing.B, srvOpts, cliOpts []netloop.Option) (srv, cli *netloop.Host, sp, cp netloop.Peer) {
	b.Helper()
	ctx := benchCtx(b)
	srv = benchHost(b, "127.0.0.1:0", srvOpts...)
	cli = benchHost(b, "", cliOpts...)
	cp, err := cli.Connect(ctx, fmt.Sprintf("127.0.0.1:%d", srv.Addr().Port()), 1, 0)
	if err != nil {
		b.Fatalf("Connect: %v", err)
	}
	benchEvent(ctx, b, cli, netloop.EventConnect)
	sp = benchEvent(ctx, b, srv, netloop.EventConnect).Peer
	return srv, cli, sp, cp
}

// benchUntil polls h's Stats until cond holds. Each poll costs a few
// allocations (a command to the loop); at one poll per millisecond that is
// far below one per message.
func benchUntil(ctx context.Context, b *testing.B, h *netloop.Host, what string, cond func(netloop.Stats) bool) netloop.Stats {
	b.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		s, err := h.Stats(ctx)
		if err != nil {
			b.Fatalf("Stats: %v", err)
		}
		if cond(s) {
			return s
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			b.Fatalf("waiting for %s: %v (stats %+v)", what, ctx.Err(), s)
		}
	}
}

// benchSizes are the payload sizes of the throughput benchmarks.
var benchSizes = []int{64, 1024}

// BenchmarkSend measures Host.Send of reliable messages to a connected peer,
// until the receiving host's ENet has them all: ns/op is the sustained time
// per message; ns/send is the time of the Send calls alone (the caller's
// view: the loop has the message). The payload is one buffer, reused
// read-only. Target: 0 allocs/op.
//
//   - unbounded: Send as fast as it returns. Send has no backpressure
//     beyond the command channel, so the messages ENet cannot send yet
//     (its reliable window is full) pile up in its queue, in C memory:
//     C-allocs-peak is the most live ENet allocations seen (process-wide,
//     sampled at every poll: a lower bound).
//   - window1024: the sender stays at most 1024 messages ahead of the
//     receiver (it reads the receiver's Stats every 256 messages; that
//     costs a few allocations per 256 messages, which allocs/op rounds away).
func BenchmarkSend(b *testing.B) {
	for _, size := range benchSizes {
		for _, window := range []int{0, 1024} {
			name := fmt.Sprintf("%dB/unbounded", size)
			if window > 0 {
				name = fmt.Sprintf("%dB/window%d", size, window)
			}
			b.Run(name, func(b *testing.B) { benchSend(b, size, window) })
		}
	}
}

func benchSend(b *testing.B, size, window int) {
	// Unbounded means it: the sender's outbound limit is out of the way.
	srv, cli, _, cp := benchPair(b, []netloop.Option{netloop.WithEventBuffer(0), netloop.WithMaxPending(0), netloop.WithSlowPolicy(netloop.SlowDropAll)}, []netloop.Option{netloop.WithOutboundLimit(1 << 30), netloop.WithOutboundPolicy(netloop.OutboundDropUnreliable)})
	ctx := benchCtx(b)
	payload := make([]byte, size)
	cpeak := netloop.LiveAllocations()
	sample := func() bool { // at every poll of the receiver
		cpeak = max(cpeak, netloop.LiveAllocations())
		return true
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if window > 0 && i%256 == 0 && i >= window {
			benchUntil(ctx, b, srv, "the receiver to catch up", func(s netloop.Stats) bool {
				return sample() && s.EventsDropped+uint64(window) >= uint64(i)
			})
		}
		if err := cli.Send(ctx, cp, 0, payload, netloop.Reliable); err != nil {
			b.Fatalf("Send: %v", err)
		}
	}
	sent := b.Elapsed()
	s := benchUntil(ctx, b, srv, "the receiver to get every message", func(s netloop.Stats) bool {
		return sample() && s.EventsDropped >= uint64(b.N)
	})
	b.StopTimer()
	if s.EventsDropped != uint64(b.N) || s.Receives != 0 {
		b.Fatalf("receiver dropped %d and delivered %d messages, want %d and 0", s.EventsDropped, s.Receives, b.N)
	}
	cs := benchUntil(ctx, b, cli, "sender stats", func(netloop.Stats) bool { return true })
	if cs.SentByFlag[netloop.Reliable] != uint64(b.N) || cs.SendsRejected != 0 {
		b.Fatalf("sender handed %d messages to ENet, rejected %d; want %d, 0", cs.SentByFlag[netloop.Reliable], cs.SendsRejected, b.N)
	}
	b.ReportMetric(float64(sent.Nanoseconds())/float64(b.N), "ns/send")
	b.ReportMetric(float64(cs.Iterations)/float64(b.N), "iter/msg")
	b.ReportMetric(float64(cpeak), "C-allocs-peak")
}

// BenchmarkReceive measures reliable messages from a netloop sender (which
// allocates nothing per message) to the receiving host's consumer:
// allocs/op is the receiver's cost per message (target: at most 1, the
// payload).
//
//   - buffered: the default Events buffer (1024) and a sender as fast as
//     ENet's flow control lets it be.
//   - queued: an Events buffer of 16 and a sender at most 1024 messages ahead
//     of the consumer (as a request/response or windowed protocol is), so
//     that events keep overflowing the channel into the loop's pending
//     queue: this is the path of a consumer that has fallen behind.
func BenchmarkReceive(b *testing.B) {
	for _, size := range benchSizes {
		for _, mode := range []struct {
			name   string
			window int // 0: unlimited
			opts   []netloop.Option
		}{
			{"buffered", 0, nil},
			{"queued", 1024, []netloop.Option{netloop.WithEventBuffer(16)}},
		} {
			b.Run(fmt.Sprintf("%s/%dB", mode.name, size), func(b *testing.B) {
				benchReceive(b, size, mode.window, mode.opts)
			})
		}
	}
}

func benchReceive(b *testing.B, size, window int, srvOpts []netloop.Option) {
	srv, cli, sp, cp := benchPair(b, srvOpts, nil)
	ctx := benchCtx(b)
	payload := make([]byte, size)
	var credit chan struct{} // with a window: one token per message sent and not yet consumed
	if window > 0 {
		credit = make(chan struct{}, window)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	wg.Go(func() {
		for range b.N {
			if credit != nil {
				select {
				case credit <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
			if err := cli.Send(ctx, cp, 0, payload, netloop.Reliable); err != nil {
				errc <- err
				return
			}
		}
	})
	var bytes int
	for n := 0; n < b.N; n++ {
		select {
		case ev := <-srv.Events():
			if ev.Kind != netloop.EventReceive || ev.Peer != sp {
				b.Fatalf("after %d messages: event %+v", n, ev)
			}
			bytes += len(ev.Payload)
			if credit != nil {
				<-credit
			}
		case err := <-errc:
			b.Fatalf("Send: %v", err)
		case <-ctx.Done():
			b.Fatalf("received %d of %d messages: %v", n, b.N, ctx.Err())
		}
	}
	b.StopTimer()
	wg.Wait()
	if bytes != b.N*size {
		b.Fatalf("received %d bytes, want %d", bytes, b.N*size)
	}
}

// BenchmarkEcho measures the round trip of one reliable 64-byte message
// between two hosts, one in flight (window 1): the client sends, the
// server's consumer sends the payload back, the client's consumer gets it.
// µs-p50 and µs-p99 are round-trip percentiles; allocs/op counts both sides
// (two received payloads).
func BenchmarkEcho(b *testing.B) {
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait) // registered first, so it runs after the hosts' cleanups, which close Events
	srv, cli, _, cp := benchPair(b, nil, nil)
	ctx := benchCtx(b)
	wg.Go(func() {
		for ev := range srv.Events() {
			if ev.Kind == netloop.EventReceive {
				srv.Send(ctx, ev.Peer, ev.Channel, ev.Payload, ev.Flag) // an error means shutdown
			}
		}
	})
	echoRounds(ctx, b, cli, cp)
}

// echoRounds sends b.N reliable 64-byte messages from cli to cp, one in
// flight, each after the echo of the last, and reports allocations and
// round-trip percentiles.
func echoRounds(ctx context.Context, b *testing.B, cli *netloop.Host, cp netloop.Peer) {
	payload := make([]byte, 64)
	rtts := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := cli.Send(ctx, cp, 0, payload, netloop.Reliable); err != nil {
			b.Fatalf("Send: %v", err)
		}
		select {
		case ev := <-cli.Events():
			if ev.Kind != netloop.EventReceive || len(ev.Payload) != len(payload) {
				b.Fatalf("event %+v, want the echo", ev)
			}
		case <-ctx.Done():
			b.Fatalf("echo %d: %v", i, ctx.Err())
		}
		rtts[i] = time.Since(t0)
	}
	b.StopTimer()
	reportPercentiles(b, rtts)
}

// reportPercentiles reports the nearest-rank p50 and p99 of samples, in µs.
func reportPercentiles(b *testing.B, samples []time.Duration) {
	slices.Sort(samples)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(samples)))) - 1
		return float64(samples[max(i, 0)]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "µs-p50")
	b.ReportMetric(at(0.99), "µs-p99")
}

package session_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// Benchmarks over real loopback ENet: a netloop client host and a session
// server in the test process. Run them with
//
//	go test -run '^$' -bench . -benchmem ./session
//
// Allocation counts are process-wide: both hosts, the server and the
// client count. One op is one message echoed (a round trip).

// benchTimeout bounds every wait of a benchmark.
const benchTimeout = 2 * time.Minute

// benchEcho is the handler of the benchmarks: it sends every message back.
func benchEcho(ctx context.Context, s *session.Session) error {
	for {
		m, err := s.Receive(ctx)
		if err != nil {
			return nil // the session ended
		}
		if err := s.Send(ctx, m.Channel, m.Data, m.Flag); err != nil {
			return nil // the session is ending
		}
	}
}

// benchRun runs run(ctx) in a goroutine until the benchmark ends; the
// cleanup cancels ctx, drains events (if not nil) until it is closed, and
// waits for run to return nil.
func benchRun(b *testing.B, what string, run func(ctx context.Context) error, events <-chan netloop.Event) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	b.Cleanup(func() {
		cancel()
		drained := make(chan struct{})
		go func() {
			if events != nil {
				for range events {
				}
			}
			close(drained)
		}()
		defer func() { <-drained }()
		select {
		case err := <-errc:
			if err != nil {
				b.Errorf("%s: %v", what, err)
			}
		case <-time.After(benchTimeout):
			b.Errorf("%s did not return", what)
		}
	})
}

// benchSession runs a session server with handler h on loopback and a
// client host connected to it, until the benchmark ends. It returns the
// client and its peer, connected.
func benchSession(ctx context.Context, b *testing.B, h session.Handler) (*netloop.Host, netloop.Peer) {
	b.Helper()
	host, err := netloop.New("127.0.0.1:0", netloop.WithDrainTimeout(time.Second))
	if err != nil {
		b.Fatalf("netloop.New: %v", err)
	}
	srv, err := session.New(host, h)
	if err != nil {
		b.Fatal(err)
	}
	benchRun(b, "server Run", srv.Run, nil)
	cli, err := netloop.New("", netloop.WithDrainTimeout(time.Second))
	if err != nil {
		b.Fatalf("netloop.New: %v", err)
	}
	benchRun(b, "client Run", cli.Run, cli.Events())
	p, err := cli.Connect(ctx, fmt.Sprintf("127.0.0.1:%d", host.Addr().Port()), 1, 0)
	if err != nil {
		b.Fatalf("Connect: %v", err)
	}
	select {
	case ev := <-cli.Events():
		if ev.Kind != netloop.EventConnect {
			b.Fatalf("client event %+v, want connect", ev)
		}
	case <-ctx.Done():
		b.Fatalf("no connect: %v", ctx.Err())
	}
	return cli, p
}

// BenchmarkSessionRoundTrip measures a client echoing 64-byte reliable
// messages through a session handler (Receive, Send), with 1 and with 64
// messages in flight. µs-p50 and µs-p99 are round-trip percentiles;
// allocs/op counts the whole process per message (the two received
// payloads, one per host, are the floor).
func BenchmarkSessionRoundTrip(b *testing.B) {
	for _, window := range []int{1, 64} {
		b.Run(fmt.Sprintf("window%d", window), func(b *testing.B) {
			benchRoundTrip(b, session.HandlerFunc(benchEcho), window, 64)
		})
	}
}

// benchRoundTrip sends b.N messages of size bytes through the server
// behind h, at most window in flight, and waits for every echo. Each
// message carries its sequence number and send time; its buffer is reused
// once its echo is back (then ENet has long copied it).
func benchRoundTrip(b *testing.B, h session.Handler, window, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	b.Cleanup(cancel)
	cli, p := benchSession(ctx, b, h)
	bufs := make([][]byte, window)
	for i := range bufs {
		bufs[i] = make([]byte, max(size, 16))
	}
	rtts := make([]time.Duration, b.N)
	epoch := time.Now()
	send := func(seq int) {
		m := bufs[seq%window]
		binary.LittleEndian.PutUint64(m, uint64(seq))
		binary.LittleEndian.PutUint64(m[8:], uint64(time.Since(epoch)))
		if err := cli.Send(ctx, p, 0, m, netloop.Reliable); err != nil {
			b.Fatalf("Send %d: %v", seq, err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for ; sent < min(window, b.N); sent++ {
		send(sent)
	}
	for got := 0; got < b.N; got++ {
		select {
		case ev := <-cli.Events():
			if ev.Kind != netloop.EventReceive || len(ev.Payload) != len(bufs[0]) {
				b.Fatalf("event %+v, want echo %d", ev, got)
			}
			if seq := binary.LittleEndian.Uint64(ev.Payload); seq != uint64(got) {
				b.Fatalf("echo %d, want %d", seq, got)
			}
			rtts[got] = time.Since(epoch) - time.Duration(binary.LittleEndian.Uint64(ev.Payload[8:]))
		case <-ctx.Done():
			b.Fatalf("echo %d: %v", got, ctx.Err())
		}
		if sent < b.N {
			send(sent)
			sent++
		}
	}
	b.StopTimer()
	benchPercentiles(b, rtts)
}

// benchPercentiles reports the nearest-rank p50 and p99 of samples, in µs.
func benchPercentiles(b *testing.B, samples []time.Duration) {
	slices.Sort(samples)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(samples)))) - 1
		return float64(samples[max(i, 0)]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "µs-p50")
	b.ReportMetric(at(0.99), "µs-p99")
}

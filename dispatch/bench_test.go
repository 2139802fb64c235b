package dispatch_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// Benchmarks of the wire format, the codecs and routing. Run them with
//
//	go test -run '^$' -bench . -benchmem ./dispatch
//
// BenchmarkParseMessage, BenchmarkRoute and BenchmarkEncode run in memory.
// A Mux only serves a *session.Session, which only a session server
// creates, so BenchmarkMuxRoundTrip measures the whole path over loopback:
// a client host, a session server with a Mux, typed handlers that decode
// and answer with Route.Send.

// benchTimeout bounds every wait of a benchmark.
const benchTimeout = 2 * time.Minute

// Message types of the benchmarks.
const (
	benchTypeRaw   = 1
	benchTypeJSON  = 2
	benchTypeProto = 3
)

// benchPoint is the JSON message of the benchmarks.
type benchPoint struct {
	Name string `json:"name"`
	X    int    `json:"x"`
	Y    int    `json:"y"`
}

// benchCodec is one codec with a value of about 40 bytes encoded, and
// Handle[T]'s decoding of it, as the Mux runs it.
type benchCodec struct {
	name   string
	typ    uint32
	codec  dispatch.Codec
	value  any
	decode func(payload []byte) error // var v T; codec.Unmarshal(payload, &v); use v
}

// decodeAs returns what dispatch.Handle[T] does with a payload before it
// calls the handler; the decoded value goes to a sink of type T, as it goes
// to the handler's parameter, so that decoding is not optimised away.
func decodeAs[T any](c dispatch.Codec) func([]byte) error {
	sink := new(T)
	return func(payload []byte) error {
		var v T
		if err := c.Unmarshal(payload, &v); err != nil {
			return err
		}
		*sink = v
		return nil
	}
}

func benchCodecs() []benchCodec {
	raw := make([]byte, 40)
	for i := range raw {
		raw[i] = byte('a' + i%26)
	}
	return []benchCodec{
		{"raw-bytes", benchTypeRaw, dispatch.Raw, raw, decodeAs[[]byte](dispatch.Raw)},
		{"raw-string", benchTypeRaw, dispatch.Raw, string(raw), decodeAs[string](dispatch.Raw)},
		{"json", benchTypeJSON, dispatch.JSON, benchPoint{Name: "benchmark-point", X: 1234, Y: -5678}, decodeAs[benchPoint](dispatch.JSON)},
		{"proto", benchTypeProto, dispatch.Proto, wrapperspb.String(string(raw)), decodeAs[*wrapperspb.StringValue](dispatch.Proto)},
	}
}

// BenchmarkParseMessage splits messages whose type takes 1, 2 and 5 bytes.
// Target: 0 allocs/op.
func BenchmarkParseMessage(b *testing.B) {
	payload := make([]byte, 32)
	for _, typ := range []uint32{1, 300, dispatch.MaxType} {
		msg := dispatch.AppendMessage(nil, typ, payload)
		b.Run(fmt.Sprintf("type%d", typ), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, p, err := dispatch.ParseMessage(msg)
				if err != nil || got != typ || len(p) != len(payload) {
					b.Fatalf("ParseMessage = %d, %d bytes, %v", got, len(p), err)
				}
			}
		})
	}
}

// BenchmarkRoute runs what a Mux does with a typed message before the
// handler's own code, in memory: ParseMessage, the lookup of the type's
// handler in a map, and Handle[T]'s decoding of the payload with the
// type's codec. "lookup" stops before decoding.
func BenchmarkRoute(b *testing.B) {
	codecs := benchCodecs()
	handlers := make(map[uint32]func([]byte) error)
	for typ := uint32(10); typ < 40; typ++ { // a Mux of a few dozen types
		handlers[typ] = func([]byte) error { return nil }
	}
	run := func(b *testing.B, msg []byte, decode bool) {
		b.ReportAllocs()
		for b.Loop() {
			typ, payload, err := dispatch.ParseMessage(msg)
			if err != nil {
				b.Fatal(err)
			}
			h, ok := handlers[typ]
			if !ok {
				b.Fatalf("no handler for type %d", typ)
			}
			if decode {
				if err := h(payload); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	for i, c := range codecs {
		typ := uint32(100 + i)
		handlers[typ] = c.decode
		msg, err := dispatch.Encode(c.codec, typ, c.value)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.Run("lookup", func(b *testing.B) { run(b, msg, false) })
		}
		b.Run(c.name, func(b *testing.B) { run(b, msg, true) })
	}
}

// BenchmarkEncode encodes a message per codec: "encode" with
// dispatch.Encode (a new buffer per message, as Route.Send does),
// "append" with AppendMessage and Codec.Append into a reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, c := range benchCodecs() {
		b.Run(c.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dispatch.Encode(c.codec, c.typ, c.value); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/append", func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = c.codec.Append(dispatch.AppendMessage(buf[:0], c.typ, nil), c.value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMuxRoundTrip sends b.N typed messages from a client host to a
// session server whose Mux decodes each with the type's codec (Handle[T])
// and answers it with the route's Send in the same codec; the client waits
// for every answer. With window1, one message is in flight (µs-p50, µs-p99
// are round-trip percentiles); with window64, 64. The client sends one
// pre-encoded message, so allocs/op is the server's whole path (host,
// session, Mux, decode, encode) plus the client host's receive (1).
func BenchmarkMuxRoundTrip(b *testing.B) {
	codecs := benchCodecs()
	mux, err := dispatch.NewMux()
	if err != nil {
		b.Fatal(err)
	}
	raw := dispatch.NewRoute[[]byte](benchTypeRaw, dispatch.Raw, 0, netloop.Reliable)
	raw.Handle(mux, func(ctx context.Context, s *session.Session, v []byte) error { return raw.Send(ctx, s, v) })
	json := dispatch.NewRoute[benchPoint](benchTypeJSON, dispatch.JSON, 0, netloop.Reliable)
	json.Handle(mux, func(ctx context.Context, s *session.Session, v benchPoint) error { return json.Send(ctx, s, v) })
	proto := dispatch.NewRoute[*wrapperspb.StringValue](benchTypeProto, dispatch.Proto, 0, netloop.Reliable)
	proto.Handle(mux, func(ctx context.Context, s *session.Session, v *wrapperspb.StringValue) error {
		return proto.Send(ctx, s, v)
	})
	for _, c := range []benchCodec{codecs[0], codecs[2], codecs[3]} {
		msg, err := dispatch.Encode(c.codec, c.typ, c.value)
		if err != nil {
			b.Fatal(err)
		}
		for _, window := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/window%d", c.name, window), func(b *testing.B) {
				benchMuxRoundTrip(b, mux, msg, c.typ, window)
			})
		}
	}
}

func benchMuxRoundTrip(b *testing.B, mux *dispatch.Mux, msg []byte, typ uint32, window int) {
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	b.Cleanup(cancel)
	cli, p := benchServe(ctx, b, mux)
	sentAt := make([]time.Duration, window) // by sequence number modulo window: echoes come in order
	rtts := make([]time.Duration, b.N)
	epoch := time.Now()
	send := func(seq int) {
		sentAt[seq%window] = time.Since(epoch)
		if err := cli.Send(ctx, p, 0, msg, netloop.Reliable); err != nil {
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
			if ev.Kind != netloop.EventReceive || len(ev.Payload) != len(msg) || ev.Payload[0] != byte(typ) {
				b.Fatalf("event %+v, want answer %d (%d bytes of type %d)", ev, got, len(msg), typ)
			}
			rtts[got] = time.Since(epoch) - sentAt[got%window]
		case <-ctx.Done():
			b.Fatalf("answer %d: %v", got, ctx.Err())
		}
		if sent < b.N {
			send(sent)
			sent++
		}
	}
	b.StopTimer()
	slices.Sort(rtts)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(rtts)))) - 1
		return float64(rtts[max(i, 0)]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "µs-p50")
	b.ReportMetric(at(0.99), "µs-p99")
	if st := mux.Stats(); st.Unknown+st.Malformed+st.Undecodable+st.Failed != 0 {
		b.Fatalf("mux stats %+v", st)
	}
}

// benchServe runs a session server with mux on loopback and a client host
// connected to it until the benchmark ends; the cleanups stop both, drain
// the client's events and wait for every goroutine.
func benchServe(ctx context.Context, b *testing.B, mux *dispatch.Mux) (*netloop.Host, netloop.Peer) {
	b.Helper()
	host, err := netloop.New("127.0.0.1:0", netloop.WithDrainTimeout(time.Second))
	if err != nil {
		b.Fatalf("netloop.New: %v", err)
	}
	srv, err := session.New(host, mux)
	if err != nil {
		b.Fatal(err)
	}
	benchGo(b, "server Run", srv.Run, nil)
	cli, err := netloop.New("", netloop.WithDrainTimeout(time.Second))
	if err != nil {
		b.Fatalf("netloop.New: %v", err)
	}
	benchGo(b, "client Run", cli.Run, cli.Events())
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

// benchGo runs run(ctx) in a goroutine until the benchmark ends; the
// cleanup cancels ctx, drains events (if not nil) until it is closed, and
// waits for run to return nil.
func benchGo(b *testing.B, what string, run func(ctx context.Context) error, events <-chan netloop.Event) {
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

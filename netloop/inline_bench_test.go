package netloop_test

import (
	"fmt"
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

// BenchmarkEchoInline is BenchmarkEcho with the server's echo in an inline
// handler (WithInline) instead of a consumer goroutine: allocs/op counts
// both sides, as there, and must not exceed it.
func BenchmarkEchoInline(b *testing.B) {
	ctx := benchCtx(b)
	srv := benchHost(b, "127.0.0.1:0", netloop.WithInline(func(in *netloop.Inline, ev netloop.Event) {
		if ev.Kind == netloop.EventReceive {
			in.Send(ev.Peer, ev.Channel, ev.Payload, ev.Flag) // an error means shutdown
		}
	}))
	cli := benchHost(b, "")
	cp, err := cli.Connect(ctx, fmt.Sprintf("127.0.0.1:%d", srv.Addr().Port()), 1, 0)
	if err != nil {
		b.Fatalf("Connect: %v", err)
	}
	benchEvent(ctx, b, cli, netloop.EventConnect)
	echoRounds(ctx, b, cli, cp)
}

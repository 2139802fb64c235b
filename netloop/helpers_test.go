package netloop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait is the longest any test waits for one thing to happen on loopback.
const wait = netlooptest.Timeout

// start creates a host and runs it until the test ends.
func start(t *testing.T, addr string, opts ...netloop.Option) *netloop.Host {
	t.Helper()
	opts = append([]netloop.Option{netloop.WithLogger(zaptest.NewLogger(t)), netloop.WithDrainTimeout(time.Second)}, opts...)
	return netlooptest.Start(t, addr, opts...)
}

// next returns the next event, failing the test after a deadline.
func next(t *testing.T, h *netloop.Host) netloop.Event {
	t.Helper()
	return netlooptest.Next(t, h)
}

// expect returns the next event, which must be of kind k.
func expect(t *testing.T, h *netloop.Host, k netloop.Kind) netloop.Event {
	t.Helper()
	return netlooptest.Expect(t, h, k)
}

// pair connects a client host to a server host and returns both ends.
func pair(t *testing.T, channels int, opts ...netloop.Option) (srv, cli *netloop.Host, sp, cp netloop.Peer) {
	t.Helper()
	srv = start(t, "127.0.0.1:0", append([]netloop.Option{netloop.WithChannels(channels)}, opts...)...)
	cli = start(t, "", append([]netloop.Option{netloop.WithChannels(channels)}, opts...)...)
	cp, err := cli.Connect(ctx(t), srv.Addr().String(), channels, 7)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if ev := expect(t, cli, netloop.EventConnect); ev.Peer != cp {
		t.Fatalf("client connect peer %v, want %v", ev.Peer, cp)
	}
	ev := expect(t, srv, netloop.EventConnect)
	if ev.Data != 7 {
		t.Fatalf("connect data %d, want 7", ev.Data)
	}
	return srv, cli, ev.Peer, cp
}

func ctx(t *testing.T) context.Context { return netlooptest.Context(t) }

// eventually: see netlooptest.Eventually.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	netlooptest.Eventually(t, what, cond)
}

func is(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

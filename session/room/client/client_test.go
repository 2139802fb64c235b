package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session/room/client"
	"github.com/enetkit/enetkit/session/room/internal/roomtest"
)

func TestMain(m *testing.M) { roomtest.Main(m) }

func TestOptions(t *testing.T) {
	if _, err := client.NewHost(0); !errors.Is(err, client.ErrOption) {
		t.Fatalf("NewHost(0): %v", err)
	}
	h, err := client.NewHost(2)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Netloop().Close()
	for _, o := range []client.Option{client.WithLiveness(time.Millisecond), client.WithReconnectWindow(0), client.WithInbox(0)} {
		if _, err := h.Client("127.0.0.1:1", o); !errors.Is(err, client.ErrOption) {
			t.Errorf("option: %v, want ErrOption", err)
		}
	}
	c, err := h.Client("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	route := dispatch.NewRoute[int](1, dispatch.JSON, 0, netloop.Reliable)
	if err := route.Send(context.Background(), c, 1); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("Send before connecting: %v", err)
	}
	if err := c.Drop(context.Background()); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("Drop before connecting: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("second handler for a type: no panic")
		}
	}()
	client.Handle(c, route, func(int) {})
	client.Handle(c, route, func(int) {})
}

// A client with no server keeps trying for its reconnection window, then
// Run gives up with an error.
func TestNoServer(t *testing.T) {
	h, err := client.NewHost(2, netloop.WithConnectTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	netlooptest.Go(t, h.Run)
	c, err := h.Client("127.0.0.1:9", client.WithReconnectWindow(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), netlooptest.Timeout)
	defer cancel()
	if err := c.Run(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Run without a server: %v (ctx %v)", err, ctx.Err())
	}
}

// A client whose Host stops ends at once with ErrClosed.
func TestHostStops(t *testing.T) {
	h, err := client.NewHost(2)
	if err != nil {
		t.Fatal(err)
	}
	stop := netlooptest.Go(t, h.Run)
	c, err := h.Client("127.0.0.1:9", client.WithReconnectWindow(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, client.ErrClosed) {
			t.Fatalf("Run: %v, want ErrClosed", err)
		}
	case <-time.After(netlooptest.Timeout):
		t.Fatal("Run did not end after its Host stopped")
	}
}

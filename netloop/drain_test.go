package netloop_test

import (
	"context"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
)

// TestShutdownDeliversAfterSlowDrain: when peers never acknowledge the
// shutdown's disconnects, the drain timeout runs out; the Disconnect events
// that follow must still all reach a consumer that keeps reading, even
// through a one-event buffer.
func TestShutdownDeliversAfterSlowDrain(t *testing.T) {
	const n = 8
	srv, err := netloop.New("127.0.0.1:0", netloop.WithEventBuffer(1), netloop.WithDrainTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	defer cancel()

	cli := start(t, "")
	for i := 0; i < n; i++ {
		p := netlooptest.Dial(t, cli, srv.Addr().String(), 1, 0)
		expect(t, srv, netloop.EventConnect)
		// Vanish without a word: the server's disconnect will go unanswered.
		if err := cli.Reset(ctx(t), p); err != nil {
			t.Fatal(err)
		}
		expect(t, cli, netloop.EventDisconnect)
	}
	cancel()
	got := 0
	for ev := range srv.Events() {
		if ev.Kind != netloop.EventDisconnect || ev.Reason != netloop.ReasonShutdown {
			t.Fatalf("event %+v, want Disconnect with ReasonShutdown", ev)
		}
		got++
	}
	if got != n {
		t.Fatalf("%d Disconnect events, want %d", got, n)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

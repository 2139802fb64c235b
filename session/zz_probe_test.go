package session_test

import (
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

func TestZZProbeImmediateDisconnect(t *testing.T) {
	srv := startServer(t, session.HandlerFunc(echo), nil)
	cli := startClient(t)
	lost := 0
	for i := range 1000 {
		p := dial(t, cli, srv.addr, 1, uint32(i))
		if err := cli.Disconnect(testCtx(t), p, 0); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-cli.Events():
			if ev.Kind != netloop.Disconnect {
				t.Fatalf("%+v", ev)
			}
		case <-time.After(2 * time.Second):
			lost++
			start := time.Now()
			for ev := range cli.Events() {
				if ev.Kind == netloop.Disconnect {
					t.Logf("late disconnect reason %v after %v more", ev.Reason, time.Since(start))
					break
				}
			}
		}
	}
	t.Logf("%d of 1000 immediate disconnects unanswered within 2s; server started %d sessions", lost, srv.Stats().Started)
}

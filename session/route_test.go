package session_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

// TestServe runs sessions over a host run by the caller, its events fed to
// Serve (the channel path, which Run no longer takes): messages are echoed
// in order, the session ends Remote on the peer's disconnect and Shutdown
// at the host's, and Serve returns once every handler has.
func TestServe(t *testing.T) {
	const n = 500 // fewer than the inbox holds: no slow-consumer policy, however slow the handler under -race
	host, err := netloop.New("127.0.0.1:0", netloop.WithLogger(netlooptest.Logger(t)), netloop.WithChannels(2), netloop.WithDrainTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := newSessions()
	srv, err := session.New(host, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		got <- s
		return echo(ctx, s)
	}), session.WithLogger(netlooptest.Logger(t)), session.WithInbox(2*n))
	if err != nil {
		t.Fatal(err)
	}
	stop := netlooptest.Go(t, host.Run)
	served := make(chan struct{})
	go func() {
		srv.Serve(host.Events())
		close(served)
	}()
	addr := "127.0.0.1:" + strconv.Itoa(int(host.Addr().Port()))

	cli := startClient(t)
	p := dial(t, cli, addr, 2, 0)
	first := got.next(t)
	for i := range n {
		send(t, cli, p, uint8(i%2), seqMsg(uint32(i), 32), netloop.Reliable)
	}
	var want [2]uint32
	for range n {
		ev := expect(t, cli, netloop.EventReceive)
		if seq := seqOf(ev.Payload); seq%2 != uint32(ev.Channel) || seq < want[ev.Channel] {
			t.Fatalf("echo %d on channel %d after %d", seq, ev.Channel, want[ev.Channel])
		} else {
			want[ev.Channel] = seq + 1
		}
	}
	if err := cli.Disconnect(netlooptest.Context(t), p, 3); err != nil {
		t.Fatal(err)
	}
	if end := ended(t, first); end.Reason != session.ReasonRemote || end.Data != 3 {
		t.Fatalf("end %v, want remote, data 3", end)
	}
	expect(t, cli, netloop.EventDisconnect)

	q := dial(t, cli, addr, 2, 0)
	second := got.next(t)
	roundTrip(t, cli, q, "still")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if end := ended(t, second); end.Reason != session.ReasonShutdown {
		t.Fatalf("end %v, want shutdown", end)
	}
	select {
	case <-served:
	case <-time.After(wait):
		t.Fatal("Serve did not return")
	}
	if s := srv.Stats(); s.Started != 2 || s.Ended != 2 || s.Live != 0 {
		t.Fatalf("stats %+v, want 2 started and ended", s)
	}
}

// TestRunHostTaken: Run refuses a host that already runs (its events
// would have two consumers) and one that is closed.
func TestRunHostTaken(t *testing.T) {
	host, err := netloop.New("127.0.0.1:0", netloop.WithLogger(netlooptest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := session.New(host, session.HandlerFunc(echo))
	if err != nil {
		t.Fatal(err)
	}
	stop := netlooptest.Go(t, host.Run)
	cli := startClient(t)
	dial(t, cli, "127.0.0.1:"+strconv.Itoa(int(host.Addr().Port())), 1, 0) // the host runs
	go func() {
		for range host.Events() {
		}
	}()
	if err := srv.Run(netlooptest.Context(t)); !errors.Is(err, netloop.ErrRunning) {
		t.Fatalf("Run on a running host: %v, want ErrRunning", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(netlooptest.Context(t)); !errors.Is(err, netloop.ErrClosed) {
		t.Fatalf("Run on a closed host: %v, want ErrClosed", err)
	}
}

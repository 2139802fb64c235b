package netloop_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// echo answers every message srv receives with the same bytes, until srv
// stops.
func echo(t *testing.T, srv *netloop.Host) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range srv.Events() {
			if ev.Kind == netloop.EventReceive {
				srv.Send(ctx(t), ev.Peer, ev.Channel, ev.Payload, ev.Flag)
			}
		}
	}()
	t.Cleanup(func() { srv.Close(); <-done })
}

// pingPong sends n reliable messages from cli to the echoing server, one at
// a time, and checks each answer.
func pingPong(t *testing.T, cli *netloop.Host, cp netloop.Peer, n int) {
	t.Helper()
	for i := range n {
		msg := seqMsg(1, uint32(i), 32)
		send(t, cli, cp, 0, msg, netloop.Reliable)
		if ev := receive(t, cli, cp); !bytes.Equal(ev.Payload, msg) {
			t.Fatalf("answer %d: %x, want %x", i, ev.Payload, msg)
		}
	}
}

// echoDatagrams returns how many datagrams a server sends per echoed
// message, over n request-reply exchanges with one client.
func echoDatagrams(t *testing.T, n int, opts ...netloop.Option) (float64, netloop.Stats) {
	srv := start(t, "127.0.0.1:0", opts...)
	cli := start(t, "")
	cp := dial(t, cli, srv, 1, 0)
	expect(t, srv, netloop.EventConnect)
	echo(t, srv)
	pingPong(t, cli, cp, 20) // settle
	before := stats(t, srv)
	pingPong(t, cli, cp, n)
	after := stats(t, srv)
	return float64(after.SentDatagrams-before.SentDatagrams) / float64(n), after
}

func TestAcksShareDatagramsWithAnswers(t *testing.T) {
	const n = 300
	held, st := echoDatagrams(t, n)
	immediate, _ := echoDatagrams(t, n, netloop.WithImmediateAcks())
	t.Logf("server datagrams per echo: %.2f with held acknowledgements (%d holds), %.2f with immediate ones", held, st.HeldAcks, immediate)
	if immediate < 1.9 {
		t.Errorf("immediate acknowledgements: %.2f datagrams per echo, want ENet's 2 (acknowledgement, then answer)", immediate)
	}
	if held > 1.5 {
		t.Errorf("held acknowledgements: %.2f datagrams per echo, want about 1", held)
	}
	if st.HeldAcks == 0 {
		t.Error("Stats.HeldAcks is 0")
	}
}

// A host whose consumer never answers still acknowledges at once: held
// acknowledgements go out before the loop waits.
func TestHeldAcksLeaveWithoutAnswers(t *testing.T) {
	srv := start(t, "127.0.0.1:0")
	cli := start(t, "")
	cp := dial(t, cli, srv, 1, 0)
	sp := expect(t, srv, netloop.EventConnect).Peer
	for i := range 50 {
		msg := seqMsg(2, uint32(i), 100)
		send(t, cli, cp, 0, msg, netloop.Reliable)
		ev := expect(t, srv, netloop.EventReceive)
		if ev.Peer != sp || !bytes.Equal(ev.Payload, msg) {
			t.Fatalf("message %d: %x from %v", i, ev.Payload, ev.Peer)
		}
		// The client's reliable message is acknowledged promptly, with
		// nothing to carry the acknowledgement but the host's own flush.
		t0 := time.Now()
		eventually(t, "acknowledgement", func() bool { return info(t, cli, cp).UnackedCommands == 0 })
		if d := time.Since(t0); d > 500*time.Millisecond {
			t.Fatalf("message %d acknowledged after %v: ENet retransmitted it", i, d)
		}
	}
	if pi := info(t, cli, cp); pi.PacketsLost != 0 {
		t.Errorf("client counted %d lost packets: acknowledgements came too late", pi.PacketsLost)
	}
}

func TestSpin(t *testing.T) {
	for _, d := range []time.Duration{-time.Microsecond, 2 * time.Millisecond} {
		if _, err := netloop.New("127.0.0.1:0", netloop.WithSpin(d)); !errors.Is(err, netloop.ErrRange) {
			t.Errorf("WithSpin(%v): %v, want ErrRange", d, err)
		}
	}
	// A request-reply exchange brings each request soon after the loop went
	// idle: with a generous budget the loop polls for it, and without one
	// it never does.
	spins := func(opts ...netloop.Option) netloop.Stats {
		srv := start(t, "127.0.0.1:0", opts...)
		cli := start(t, "")
		cp := dial(t, cli, srv, 1, 0)
		expect(t, srv, netloop.EventConnect)
		echo(t, srv)
		pingPong(t, cli, cp, 300)
		return stats(t, srv)
	}
	if st := spins(netloop.WithSpin(time.Millisecond)); st.Spins == 0 {
		t.Errorf("WithSpin(1ms): no spin in 300 exchanges (%d parks)", st.Parks)
	}
	if st := spins(netloop.WithSpin(0)); st.Spins != 0 || st.Parks == 0 {
		t.Errorf("WithSpin(0): %d spins, %d parks; want 0 spins", st.Spins, st.Parks)
	}
}

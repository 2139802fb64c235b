package netloop_test

import (
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

// TestBatchedReads: datagrams that wait on the socket while the loop is
// busy are read several to a system call (netloop's enet_socket_receive,
// which reads with recvmmsg), and every message still arrives, in order.
func TestBatchedReads(t *testing.T) {
	const n, size = 40, 1000 // one datagram each; 40 KB, within ENet's reliable window
	gate, held := make(chan struct{}), make(chan struct{})
	rec := newRecorder(n + 8)
	first := true
	srv, _ := launch(t, "127.0.0.1:0", netloop.WithInline(func(in *netloop.Inline, ev netloop.Event) {
		if ev.Kind == netloop.EventReceive && first {
			// Hold the loop, so that what the client sends next waits
			// on the socket.
			first = false
			close(held)
			<-gate
		}
		rec.record(t, ev)
	}))
	cli := start(t, "")
	cp := dial(t, cli, srv, 1, 0)
	rec.next(t, netloop.EventConnect)

	send(t, cli, cp, 0, seqMsg(0, 0, size), netloop.Reliable)
	<-held
	before := stats(t, cli).SentDatagrams
	for i := 1; i <= n; i++ {
		send(t, cli, cp, 0, seqMsg(0, uint32(i), size), netloop.Reliable)
	}
	eventually(t, "the client to send its messages", func() bool { return stats(t, cli).SentDatagrams >= before+n })
	close(gate)

	for i := range n + 1 {
		ev := rec.next(t, netloop.EventReceive)
		if _, seq := parseSeq(t, ev.Payload); seq != uint32(i) {
			t.Fatalf("message %d arrived as number %d", seq, i)
		}
	}
	st := stats(t, srv)
	t.Logf("%d datagrams in %d reads", st.ReceivedDatagrams, st.Reads)
	if st.Reads == 0 || st.Reads*2 > st.ReceivedDatagrams {
		t.Fatalf("%d datagrams in %d reads: want batches", st.ReceivedDatagrams, st.Reads)
	}
}

// TestBatchedSends: a broadcast to many peers leaves in few system calls
// (netloop's enet_socket_send batches datagrams for sendmmsg), and every
// peer gets it.
func TestBatchedSends(t *testing.T) {
	const n = 40
	srv := start(t, "127.0.0.1:0", netloop.WithPeers(n), netloop.WithPerAddressLimit(n))
	cli := start(t, "", netloop.WithPeers(n))
	cps := make(map[netloop.Peer]bool)
	for i := range n {
		cps[dial(t, cli, srv, 1, uint32(i))] = true
		expect(t, srv, netloop.EventConnect)
	}
	before := stats(t, srv)
	const rounds = 5
	for r := range rounds {
		if err := srv.Broadcast(ctx(t), 0, seqMsg(0, uint32(r), 100), netloop.Reliable); err != nil {
			t.Fatal(err)
		}
	}
	for range n * rounds {
		ev := expect(t, cli, netloop.EventReceive)
		if !cps[ev.Peer] {
			t.Fatalf("message for %v, not one of the client's peers", ev.Peer)
		}
	}
	after := stats(t, srv)
	sent, writes := after.SentDatagrams-before.SentDatagrams, after.Writes-before.Writes
	t.Logf("%d datagrams in %d writes", sent, writes)
	if sent < n || writes == 0 || writes*2 > sent {
		t.Fatalf("%d datagrams in %d writes: want batches", sent, writes)
	}
}

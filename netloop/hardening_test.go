package netloop_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// TestSendRetainsNothing reuses one buffer for every send, as a game's
// per-tick snapshot buffer is reused: the receiver must see each payload as
// it was when Send returned.
func TestSendRetainsNothing(t *testing.T) {
	const n = 100_000
	srv, cli, sp, cp := pair(t, 1)
	buf := make([]byte, 64)
	done := make(chan error, 1)
	go func() {
		for i := range n {
			want := uint32(i)
			ev, ok := <-srv.Events()
			if !ok || ev.Kind != netloop.EventReceive || ev.Peer != sp {
				done <- errors.New("not a message from the client")
				return
			}
			if got := binary.BigEndian.Uint32(ev.Payload); got != want || !bytes.Equal(ev.Payload[4:], bytes.Repeat([]byte{byte(want)}, 60)) {
				done <- errors.New("payload changed after Send returned")
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		binary.BigEndian.PutUint32(buf, uint32(i))
		for j := 4; j < len(buf); j++ {
			buf[j] = byte(i)
		}
		if err := cli.Send(ctx(t), cp, 0, buf, netloop.Reliable); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		clear(buf) // the caller owns buf again at once
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(4 * wait):
		t.Fatal("not every message arrived")
	}
}

// TestMulticastRetainsNothing: Multicast's peer list and data may be
// reused when it returns.
func TestMulticastRetainsNothing(t *testing.T) {
	srv, cli, sp, _ := pair(t, 1)
	peers := []netloop.Peer{sp}
	data := []byte("first")
	if err := srv.Multicast(ctx(t), peers, 0, data, netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	peers[0] = netloop.Peer{}
	copy(data, "XXXXX")
	if ev := expect(t, cli, netloop.EventReceive); string(ev.Payload) != "first" {
		t.Fatalf("got %q, want first", ev.Payload)
	}
}

// TestUnreliableAboveMTU: unreliable and unsequenced messages stay
// unreliable at any size (ENet alone would send those above the MTU as
// reliable fragments), and the receiver's flag says so.
func TestUnreliableAboveMTU(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	for _, tc := range []struct {
		size int
		sent netloop.Flag
		want netloop.Flag
	}{
		{200, netloop.Unreliable, netloop.Unreliable},
		{1000, netloop.Unreliable, netloop.Unreliable},
		{1400, netloop.Unreliable, netloop.Unreliable},
		{3000, netloop.Unreliable, netloop.Unreliable},
		{20000, netloop.Unreliable, netloop.Unreliable},
		{200, netloop.Unsequenced, netloop.Unsequenced},
		{3000, netloop.Unsequenced, netloop.Unreliable}, // fragments are sequenced
		{3000, netloop.Reliable, netloop.Reliable},
	} {
		send(t, cli, cp, 0, seqMsg(1, uint32(tc.size), tc.size), tc.sent)
		ev := receive(t, srv, sp)
		if len(ev.Payload) != tc.size || ev.Flag != tc.want {
			t.Errorf("%d bytes sent %v: received %d bytes %v, want %v", tc.size, tc.sent, len(ev.Payload), ev.Flag, tc.want)
		}
	}
	if pi := info(t, cli, cp); pi.UnackedCommands != 0 && pi.QueuedBytes > 4096 {
		t.Errorf("unreliable messages wait in the reliable queue: %+v", pi)
	}
}

// TestPerAddressLimit: one address holds at most the limit; others are
// untouched, and a refused client learns at once why.
func TestPerAddressLimit(t *testing.T) {
	srv := start(t, "127.0.0.1:0", netloop.WithPerAddressLimit(2), netloop.WithPeers(8))
	cli := start(t, "127.0.0.1:0")
	for range 2 {
		dial(t, cli, srv, 1, 0)
		expect(t, srv, netloop.EventConnect)
	}
	p, err := cli.Connect(ctx(t), loopback(srv), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := disconnected(t, cli, p, netloop.ReasonRefused); ev.Data != netloop.RefusedAddress {
		t.Fatalf("refusal data %#x, want RefusedAddress", ev.Data)
	}
	// Another address is not affected.
	other := start(t, "127.0.0.2:0")
	dial(t, other, srv, 1, 0)
	expect(t, srv, netloop.EventConnect)
	if s := stats(t, srv); s.ConnectsRefusedAddress != 1 || s.ConnectedPeers != 3 {
		t.Fatalf("ConnectsRefusedAddress %d, ConnectedPeers %d; want 1, 3", s.ConnectsRefusedAddress, s.ConnectedPeers)
	}
}

// stuck connects a client and resets its end without telling the server:
// the server's peer stays connected and nothing it sends is acknowledged.
func stuck(t *testing.T, srv *netloop.Host) netloop.Peer {
	t.Helper()
	cli := start(t, "")
	cp := dial(t, cli, srv, 1, 0)
	sp := expect(t, srv, netloop.EventConnect).Peer
	if err := cli.Reset(ctx(t), cp); err != nil {
		t.Fatal(err)
	}
	disconnected(t, cli, cp, netloop.ReasonLocal)
	return sp
}

// TestOutboundLimit: what ENet holds for a peer that acknowledges nothing
// stays within the limit, by each policy.
func TestOutboundLimit(t *testing.T) {
	const limit = 64 << 10
	msg := make([]byte, 1024)
	t.Run("drop", func(t *testing.T) {
		srv := start(t, "127.0.0.1:0", netloop.WithOutboundLimit(limit), netloop.WithOutboundPolicy(netloop.OutboundDropUnreliable))
		sp := stuck(t, srv)
		// Unreliable messages beyond the limit are dropped and counted.
		for range 4 * limit / len(msg) {
			send(t, srv, sp, 0, msg, netloop.Unreliable)
		}
		// ENet sends unreliable messages whether or not they are
		// acknowledged: fill the queue with reliable ones.
		for i := 0; ; i++ {
			if i == 4*limit/len(msg) {
				t.Fatal("reliable messages beyond the limit did not disconnect the peer")
			}
			if err := srv.Send(ctx(t), sp, 0, msg, netloop.Reliable); err != nil {
				if !errors.Is(err, netloop.ErrStalePeer) {
					is(t, err, netloop.ErrNotConnected) // disconnecting
				}
				break
			}
			if pi, err := srv.PeerInfo(ctx(t), sp); err == nil && pi.QueuedBytes > limit+len(msg)+4096 {
				t.Fatalf("queued %d bytes, limit %d", pi.QueuedBytes, limit)
			}
		}
		disconnected(t, srv, sp, netloop.ReasonOutboundLimit)
		if s := stats(t, srv); s.PeersOverLimit != 1 {
			t.Fatalf("PeersOverLimit %d, want 1", s.PeersOverLimit)
		}
	})
	t.Run("wait", func(t *testing.T) {
		srv := start(t, "127.0.0.1:0", netloop.WithOutboundLimit(limit), netloop.WithOutboundPolicy(netloop.OutboundWait))
		sp := stuck(t, srv)
		// Send blocks once the queue is over the limit; it returns when the
		// context ends, with nothing queued.
		c, cancel := context.WithTimeout(ctx(t), 300*time.Millisecond)
		defer cancel()
		var err error
		for i := 0; err == nil; i++ {
			if i == 64*limit/len(msg) {
				t.Fatal("Send never waited")
			}
			err = srv.Send(c, sp, 0, msg, netloop.Reliable)
		}
		is(t, err, context.DeadlineExceeded)
		if pi := info(t, srv, sp); pi.QueuedBytes > 2*limit {
			t.Fatalf("queued %d bytes, limit %d", pi.QueuedBytes, limit)
		}
		// A waiting Send returns when the peer goes away.
		errc := make(chan error, 1)
		go func() { errc <- srv.Send(ctx(t), sp, 0, msg, netloop.Reliable) }()
		if err := srv.Reset(ctx(t), sp); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			is(t, err, netloop.ErrStalePeer)
		case <-time.After(wait):
			t.Fatal("Send still waits after its peer went away")
		}
	})
}

// TestCancelledCalls cancels every call's context at random moments: no
// result is written after its caller left (-race), and a Connect that
// returned an error leaves no connection behind.
func TestCancelledCalls(t *testing.T) {
	srv := start(t, "127.0.0.1:0", netloop.WithPeers(256), netloop.WithPerAddressLimit(256))
	cli := start(t, "", netloop.WithPeers(256))
	go func() {
		for range srv.Events() {
		}
	}()
	var (
		mu   sync.Mutex
		kept []netloop.Peer
	)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 100 {
				c, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(200))*time.Microsecond)
				switch rng.IntN(5) {
				case 0:
					if p, err := cli.Connect(c, loopback(srv), 1, 0); err == nil {
						mu.Lock()
						kept = append(kept, p)
						mu.Unlock()
					}
				case 1:
					cli.Stats(c)
				case 2:
					cli.Peers(c)
				case 3:
					cli.PeerAt(c, rng.IntN(256))
				case 4:
					mu.Lock()
					var p netloop.Peer
					if len(kept) > 0 {
						p = kept[rng.IntN(len(kept))]
					}
					mu.Unlock()
					if p != (netloop.Peer{}) {
						cli.PeerInfo(c, p)
					}
				}
				cancel()
			}
		})
	}
	wg.Wait()
	// Every connection left is one a Connect returned: end those, and the
	// client holds none.
	for _, p := range kept {
		if err := cli.DisconnectNow(ctx(t), p, 0); err != nil && !errors.Is(err, netloop.ErrStalePeer) {
			t.Fatal(err)
		}
	}
	eventually(t, "every connection to end", func() bool {
		for {
			if _, ok := cli.CheckEvents(); !ok {
				break
			}
		}
		peers, err := cli.Peers(ctx(t))
		return err == nil && len(peers) == 0
	})
}

// TestPendingBytes: events waiting for a consumer that has fallen behind
// are bounded in bytes as well as in count.
func TestPendingBytes(t *testing.T) {
	const size, bound = 16 << 10, 64 << 10
	srv := start(t, "127.0.0.1:0", netloop.WithEventBuffer(1), netloop.WithMaxPendingBytes(bound), netloop.WithMaxPending(1000), netloop.WithSlowPolicy(netloop.SlowDropAll))
	cli := start(t, "")
	cp := dial(t, cli, srv, 1, 0)
	const n = 20
	for i := range n {
		send(t, cli, cp, 0, seqMsg(0, uint32(i), size), netloop.Reliable)
	}
	eventually(t, "the messages past the byte bound to be dropped", func() bool {
		s := stats(t, srv)
		return s.EventsDropped > 0 && s.Receives+s.EventsDropped == n
	})
	if s := stats(t, srv); s.PendingBytes > bound {
		t.Fatalf("PendingBytes %d, bound %d", s.PendingBytes, bound)
	}
}

// TestThrottleCounted: unreliable messages that ENet's packet throttle
// drops unsent are counted, for the host and the peer. A host whose
// outgoing bandwidth is limited throttles its peers.
func TestThrottleCounted(t *testing.T) {
	srv, cli, sp, _ := pair(t, 1, netloop.WithBandwidth(0, 4096))
	go func() {
		for range cli.Events() {
		}
	}()
	msg := make([]byte, 512)
	eventually(t, "a throttled message", func() bool {
		for range 50 {
			send(t, srv, sp, 0, msg, netloop.Unreliable)
		}
		return stats(t, srv).Throttled > 0
	})
	s, pi := stats(t, srv), info(t, srv, sp)
	if pi.Throttled == 0 || pi.Throttled > s.Throttled {
		t.Fatalf("peer Throttled %d, host %d: want the peer's drops counted", pi.Throttled, s.Throttled)
	}
}

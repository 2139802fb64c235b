package integration

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/enetkit/enetkit/integration/linkproxy"
	"github.com/enetkit/enetkit/netloop"
)

// TestStuckPeer streams 60 Hz x 1 KiB of reliable state to 50 healthy peers
// and to one whose acknowledgements stop (a proxy drops everything it
// sends): the server's queue for the stuck peer stays within the outbound
// limit, the stuck peer ends with ReasonOutboundLimit, and the healthy ones
// receive every message in order.
//
// With ENETKIT_MEASURE=1 it also runs without a limit (ENet's default:
// none; here 1 GiB), for 3s, and logs what the server then holds for the
// stuck peer.
func TestStuckPeer(t *testing.T) {
	testStuckPeer(t, 64<<10)
	if os.Getenv("ENETKIT_MEASURE") != "" {
		t.Run("unlimited", func(t *testing.T) { testStuckPeer(t, 1<<30) })
	}
}

func testStuckPeer(t *testing.T, limit int) {
	const (
		healthy  = 50
		perHost  = 10
		msgSize  = 1024
		rate     = 60
		duration = 3 * time.Second
	)
	bounded := limit < 1<<30
	base := measure()
	events := make(chan netloop.Event, 256)
	srv := startNode(t, "127.0.0.1:0", forward(t, events), netloop.WithPeers(64), netloop.WithOutboundLimit(limit), netloop.WithOutboundPolicy(netloop.OutboundDropUnreliable))

	// The client behind the proxy connects first.
	proxy, _ := startProxy(t, hostAddr(srv.Host), linkproxy.Config{Seed: 1})
	stuckCli := startNode(t, "", nil, netloop.WithPeers(1))
	if _, err := stuckCli.Connect(context.Background(), proxy.Addr().String(), 1, 0); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events, stepWait, "the proxied client to connect")
	if ev.Kind != netloop.EventConnect {
		t.Fatalf("%v event, want the proxied client's Connect", ev.Kind)
	}
	stuck := ev.Peer
	peers := []netloop.Peer{stuck}

	// Healthy clients check order as they go.
	var (
		mu   sync.Mutex
		next = map[netloop.Peer]uint32{}
	)
	errs := &errorLimit{t: t}
	got := newTally()
	for range healthy / perHost {
		cli := startNode(t, "", func(_ *netloop.Host, ev netloop.Event) {
			if ev.Kind != netloop.EventReceive {
				return
			}
			_, seq, ok := parseNumbered(ev.Payload)
			mu.Lock()
			want := next[ev.Peer]
			next[ev.Peer] = seq + 1
			mu.Unlock()
			if !ok || seq != want {
				errs.Errorf("healthy peer %v: message %d (intact %v), want %d", ev.Peer, seq, ok, want)
			}
			got.add("received", 1)
		}, netloop.WithPeers(perHost))
		for range perHost {
			if _, err := cli.Connect(context.Background(), hostAddr(srv.Host), 1, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	for len(peers) < healthy+1 {
		ev := nextEvent(t, events, stepWait, "the healthy clients to connect")
		if ev.Kind != netloop.EventConnect {
			t.Fatalf("%v event of %v before every client connected", ev.Kind, ev.Peer)
		}
		peers = append(peers, ev.Peer)
	}
	// The stuck client's acknowledgements no longer reach the server.
	if err := proxy.SetLink(linkproxy.Upstream, linkproxy.Link{Loss: 1}); err != nil {
		t.Fatal(err)
	}

	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	var (
		sent      uint32
		maxQueued int
		ended     netloop.Event
		peak      = base
	)
	msg := make([]byte, msgSize)
	for end := time.Now().Add(duration); time.Now().Before(end); {
		select {
		case <-tick.C:
		case ev := <-events:
			if ev.Kind == netloop.EventDisconnect && ev.Peer == stuck {
				ended = ev
			} else {
				t.Fatalf("unexpected %v event of %v (%v)", ev.Kind, ev.Peer, ev.Reason)
			}
			continue
		}
		copy(msg, numbered(0, sent, msgSize)) // one buffer, reused: Multicast keeps no reference
		if err := srv.Multicast(context.Background(), peers, 0, msg, netloop.Reliable); err != nil {
			t.Fatal(err)
		}
		sent++
		if ended.Kind == 0 {
			if pi, err := srv.PeerInfo(context.Background(), stuck); err == nil {
				maxQueued = max(maxQueued, pi.QueuedBytes)
			}
		}
		if sent%rate == 0 {
			if m := measure(); m.live > peak.live {
				peak = m
			}
		}
	}
	if !bounded {
		t.Logf("no limit: after %v the server held %d bytes for the stuck peer (%d messages sent)", duration, maxQueued, sent)
		return
	}
	if ended.Kind == 0 {
		ended = nextEvent(t, events, stepWait, "the stuck peer to be disconnected")
	}
	if ended.Peer != stuck || ended.Reason != netloop.ReasonOutboundLimit {
		t.Fatalf("stuck peer ended with %v (%v), want ReasonOutboundLimit", ended.Peer, ended.Reason)
	}
	// One message may take the queue past the limit; ENet's own
	// bookkeeping for the connection adds a little.
	if maxQueued > limit+msgSize+4096 {
		t.Errorf("the server held up to %d bytes for the stuck peer, limit %d", maxQueued, limit)
	}
	got.await(t, "received", healthy*int(sent), stepWait)
	if errs.count() > 0 {
		t.Fatalf("%d delivery errors", errs.count())
	}
	s := hostStats(t, srv.Host)
	if s.PeersOverLimit != 1 {
		t.Errorf("PeersOverLimit %d, want 1", s.PeersOverLimit)
	}
	t.Logf("%d messages of %d bytes to %d healthy peers, all in order; stuck peer: at most %d bytes queued (limit %d), ended %v; peak: %v",
		sent, msgSize, healthy, maxQueued, limit, ended.Reason, peak)
}

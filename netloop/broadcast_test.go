package netloop_test

import (
	"bytes"
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

// TestBroadcastChannels: a connection's channel count is set by Connect and
// by the accepting host's channel limit, not by the WithChannels of the
// host that broadcasts. Broadcast must reach every peer that has the
// channel ("peers with fewer than ch+1 channels are skipped").
func TestBroadcastChannels(t *testing.T) {
	t.Run("outgoing connection with more channels than the host", func(t *testing.T) {
		srv := start(t, "127.0.0.1:0", netloop.WithChannels(3))
		cli := start(t, "") // WithChannels defaults to 1
		cp := dial(t, cli, srv, 3, 0)
		sp := expect(t, srv, netloop.EventConnect).Peer
		if c := info(t, cli, cp).Channels; c != 3 {
			t.Fatalf("connection has %d channels, want 3", c)
		}
		send(t, cli, cp, 2, []byte("send"), netloop.Reliable) // Send allows channel 2
		receive(t, srv, sp)
		if err := cli.Broadcast(ctx(t), 2, []byte("broadcast"), netloop.Reliable); err != nil {
			t.Fatalf("Broadcast on channel 2, which the only peer has: %v", err)
		}
		if ev := receive(t, srv, sp); ev.Channel != 2 || string(ev.Payload) != "broadcast" {
			t.Fatalf("got %+v", ev)
		}
		if err := cli.Multicast(ctx(t), []netloop.Peer{cp}, 2, []byte("multicast"), netloop.Reliable); err != nil {
			t.Fatalf("Multicast on channel 2, which the peer has: %v", err)
		}
		if ev := receive(t, srv, sp); ev.Channel != 2 || string(ev.Payload) != "multicast" {
			t.Fatalf("got %+v", ev)
		}
	})
	t.Run("channel limit raised", func(t *testing.T) {
		srv := start(t, "127.0.0.1:0", netloop.WithChannels(2))
		if err := srv.SetChannelLimit(ctx(t), 4); err != nil {
			t.Fatal(err)
		}
		cli := start(t, "", netloop.WithChannels(4))
		cp := dial(t, cli, srv, 4, 0)
		sp := expect(t, srv, netloop.EventConnect).Peer
		if c := info(t, srv, sp).Channels; c != 4 {
			t.Fatalf("connection has %d channels, want 4", c)
		}
		if err := srv.Broadcast(ctx(t), 3, []byte("broadcast"), netloop.Reliable); err != nil {
			t.Fatalf("Broadcast on channel 3, which the only peer has: %v", err)
		}
		if ev := receive(t, cli, cp); ev.Channel != 3 {
			t.Fatalf("got %+v", ev)
		}
	})
	t.Run("channel 255", func(t *testing.T) {
		// ENet's channel IDs end at 254: 255 is never valid.
		srv := start(t, "127.0.0.1:0", netloop.WithChannels(netloop.MaxChannels))
		is(t, srv.Broadcast(ctx(t), 255, []byte("x"), netloop.Reliable), netloop.ErrChannel)
	})
}

// TestMulticast sends one message to a list of peers: the connected ones
// in the list get it, once; stale, foreign and zero handles are skipped
// and counted as rejected; peers not in the list get nothing.
func TestMulticast(t *testing.T) {
	srv := start(t, "127.0.0.1:0", netloop.WithChannels(2))
	var clis []*netloop.Host
	var cps, sps []netloop.Peer
	for i := range 4 {
		c := start(t, "", netloop.WithChannels(2))
		clis = append(clis, c)
		cps = append(cps, dial(t, c, srv, 2, uint32(i)))
		sps = append(sps, expect(t, srv, netloop.EventConnect).Peer)
	}
	// Client 3 leaves: its server-side handle is stale.
	if err := clis[3].Disconnect(ctx(t), cps[3], 0); err != nil {
		t.Fatal(err)
	}
	disconnected(t, srv, sps[3], netloop.ReasonRemote)

	s0 := stats(t, srv)
	big := bytes.Repeat([]byte("m"), 10_000) // fragmented: the fragments share the packet
	list := []netloop.Peer{sps[0], sps[2], sps[3], cps[1], {}}
	if err := srv.Multicast(ctx(t), list, 1, big, netloop.Reliable); err != nil {
		t.Fatalf("Multicast: %v", err)
	}
	for _, i := range []int{0, 2} {
		if ev := receive(t, clis[i], cps[i]); ev.Channel != 1 || !bytes.Equal(ev.Payload, big) {
			t.Fatalf("client %d got channel %d, %d bytes", i, ev.Channel, len(ev.Payload))
		}
	}
	s1 := stats(t, srv)
	if d := s1.SentByFlag[netloop.Reliable] - s0.SentByFlag[netloop.Reliable]; d != 2 {
		t.Errorf("multicast reached %d peers, want 2", d)
	}
	if d := s1.SendsRejected - s0.SendsRejected; d != 3 {
		t.Errorf("SendsRejected grew by %d, want 3 (stale, foreign, zero)", d)
	}
	// Client 1 was not in the list: the next message it gets is this one.
	send(t, srv, sps[1], 1, []byte("marker"), netloop.Reliable)
	if ev := receive(t, clis[1], cps[1]); string(ev.Payload) != "marker" {
		t.Fatalf("client 1 got %d bytes before the marker", len(ev.Payload))
	}
	// Clients 0 and 2 got it once.
	for _, i := range []int{0, 2} {
		send(t, srv, sps[i], 1, []byte("marker"), netloop.Reliable)
		if ev := receive(t, clis[i], cps[i]); string(ev.Payload) != "marker" {
			t.Fatalf("client %d got another %d bytes before the marker", i, len(ev.Payload))
		}
	}
	if err := srv.Multicast(ctx(t), nil, 0, []byte("x"), netloop.Reliable); err != nil {
		t.Fatalf("Multicast to nobody: %v", err)
	}
	is(t, srv.Multicast(ctx(t), sps[:1], 0, nil, netloop.Reliable), netloop.ErrEmpty)
	is(t, srv.Multicast(ctx(t), sps[:1], 0, []byte("x"), netloop.Flag(9)), netloop.ErrFlag)
	is(t, srv.Multicast(ctx(t), sps[:1], 255, []byte("x"), netloop.Reliable), netloop.ErrChannel)
}

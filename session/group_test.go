package session_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

// groupClient is a client host with its peers, by connect data.
type groupClient struct {
	host  *netloop.Host
	peers map[netloop.Peer]uint32
}

// readUntil reads c's events until each peer in stop has received the
// message stop names for it; it returns every payload received per connect
// data, the last included. Any other kind of event fails the test.
func (c *groupClient) readUntil(t *testing.T, stop map[uint32]string) map[uint32][]string {
	t.Helper()
	got := make(map[uint32][]string)
	for left := len(stop); left > 0; {
		ev := expect(t, c.host, netloop.EventReceive)
		d, ok := c.peers[ev.Peer]
		last, want := stop[d]
		if !ok || !want {
			t.Fatalf("message %q for peer %v (data %d, known %v), not expected", ev.Payload, ev.Peer, d, ok)
		}
		got[d] = append(got[d], string(ev.Payload))
		if string(ev.Payload) == last {
			left--
		}
	}
	return got
}

func TestGroup(t *testing.T) {
	const (
		hosts   = 4
		perHost = 50
		total   = hosts * perHost
	)
	var grp atomic.Pointer[session.Group] // set before any client connects
	ss := newSessions()
	srv := startServer(t, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		if err := grp.Load().Add(s); err != nil {
			return err
		}
		ss <- s
		<-ctx.Done()
		return nil
	}), []netloop.Option{netloop.WithPeers(256)})
	g := srv.NewGroup()
	grp.Store(g)
	if g.Len() != 0 || len(g.Sessions()) != 0 {
		t.Fatalf("new group has %d members", g.Len())
	}
	// Broadcasting to an empty group sends nothing and is no error.
	if err := g.Broadcast(netlooptest.Context(t), 0, []byte("nobody"), netloop.Reliable); err != nil {
		t.Fatalf("Broadcast to an empty group: %v", err)
	}

	clients := make([]*groupClient, hosts)
	for h := range clients {
		c := &groupClient{host: startClient(t, netloop.WithPeers(64)), peers: make(map[netloop.Peer]uint32)}
		clients[h] = c
		for i := range perHost {
			d := uint32(h*perHost + i)
			p, err := c.host.Connect(netlooptest.Context(t), srv.addr, 1, d)
			if err != nil {
				t.Fatalf("Connect %d: %v", d, err)
			}
			c.peers[p] = d
		}
	}
	for _, c := range clients {
		for range perHost {
			if ev := expect(t, c.host, netloop.EventConnect); !hasPeer(c.peers, ev.Peer) {
				t.Fatalf("connect of unknown peer %v", ev.Peer)
			}
		}
	}
	byData := make(map[uint32]*session.Session)
	for range total {
		s := ss.next(t)
		byData[s.ConnectData()] = s
	}
	if len(byData) != total || g.Len() != total || len(g.Sessions()) != total {
		t.Fatalf("%d sessions, group of %d", len(byData), g.Len())
	}
	for _, s := range byData {
		if !g.Contains(s) {
			t.Fatalf("%v not in the group", s)
		}
	}

	// all expects msg last at every peer of clients[h].
	all := func(h int, msg string) map[uint32]string {
		m := make(map[uint32]string)
		for i := range perHost {
			m[uint32(h*perHost+i)] = msg
		}
		return m
	}

	// One broadcast reaches every member exactly once: "end", sent after,
	// arrives after it on the same reliable channel.
	for _, msg := range []string{"hello", "end"} {
		if err := g.Broadcast(netlooptest.Context(t), 0, []byte(msg), netloop.Reliable); err != nil {
			t.Fatalf("Broadcast: %v", err)
		}
	}
	for h, c := range clients {
		got := c.readUntil(t, all(h, "end"))
		for d, msgs := range got {
			if fmt.Sprint(msgs) != "[hello end]" {
				t.Fatalf("peer %d received %q, want hello once, then end", d, msgs)
			}
		}
	}

	// Sessions that end leave the group.
	for p := range clients[0].peers {
		if err := clients[0].host.Disconnect(netlooptest.Context(t), p, 0); err != nil {
			t.Fatal(err)
		}
	}
	for range perHost {
		expect(t, clients[0].host, netloop.EventDisconnect)
	}
	for i := range perHost {
		s := byData[uint32(i)]
		if end := srv.obs.endOf(t, s); end.Reason != session.ReasonRemote {
			t.Fatalf("end of %v: %v", s, end)
		}
		if g.Contains(s) {
			t.Fatalf("ended %v still in the group", s)
		}
	}
	if g.Len() != total-perHost || len(g.Sessions()) != total-perHost {
		t.Fatalf("group of %d after %d left, want %d", g.Len(), perHost, total-perHost)
	}
	gone := byData[0]
	err := g.Add(gone)
	if !errors.Is(err, session.ErrEnded) {
		t.Fatalf("Add of an ended session: %v, want %v", err, session.ErrEnded)
	}
	if g.Contains(gone) || g.Len() != total-perHost {
		t.Fatal("Add of an ended session added it")
	}

	// Remove takes a live session out; a broadcast then skips it.
	removed := byData[perHost] // on clients[1]
	left := total - perHost - 1
	if n := g.Remove(removed); n != left {
		t.Fatalf("Remove returned %d, want %d", n, left)
	}
	if n := g.Remove(removed); n != left { // twice is fine
		t.Fatalf("second Remove returned %d, want %d", n, left)
	}
	if n := g.Remove(gone); n != left { // so is a session not in it
		t.Fatalf("Remove of a non-member returned %d, want %d", n, left)
	}
	if g.Contains(removed) || g.Len() != total-perHost-1 {
		t.Fatalf("after Remove: contains %v, %d members", g.Contains(removed), g.Len())
	}
	for _, s := range g.Sessions() {
		if s == removed || s.Err() != nil {
			t.Fatalf("Sessions() has %v (err %v)", s, s.Err())
		}
	}
	if err := g.Broadcast(netlooptest.Context(t), 0, []byte("after"), netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	// Sent after the broadcast on the same channel: the removed peer's
	// first message would be "after" had it been sent one.
	if err := removed.Send(netlooptest.Context(t), 0, []byte("direct"), netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	for h := 1; h < hosts; h++ {
		want := all(h, "after")
		if h == 1 {
			want[removed.ConnectData()] = "direct"
		}
		for d, msgs := range clients[h].readUntil(t, want) {
			if len(msgs) != 1 || msgs[0] != want[d] {
				t.Fatalf("peer %d received %q, want only %q", d, msgs, want[d])
			}
		}
	}
	// Re-adding works.
	if err := g.Add(removed); err != nil || !g.Contains(removed) {
		t.Fatalf("Add after Remove: %v", err)
	}
	if err := g.Add(removed); err != nil || g.Len() != total-perHost {
		t.Fatalf("Add twice: %v, %d members", err, g.Len())
	}

	// A group of another server refuses this server's sessions.
	other, err := netloop.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	otherSrv, err := session.New(other, session.HandlerFunc(echo))
	if err != nil {
		t.Fatal(err)
	}
	if err := otherSrv.NewGroup().Add(removed); !errors.Is(err, session.ErrForeignSession) {
		t.Fatalf("Add to another server's group: %v, want %v", err, session.ErrForeignSession)
	}
}

func hasPeer(m map[netloop.Peer]uint32, p netloop.Peer) bool {
	_, ok := m[p]
	return ok
}

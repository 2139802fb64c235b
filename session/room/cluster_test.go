package room_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session/cluster"
	"github.com/enetkit/enetkit/session/cluster/clustertest"
	"github.com/enetkit/enetkit/session/room"
	"github.com/enetkit/enetkit/session/room/client"
)

// startNode starts a room server that is node id of the cluster at url,
// and waits until it has joined.
func startNode(t *testing.T, url, id string, opts ...room.Option) *fixture {
	t.Helper()
	opts = append([]room.Option{room.WithCluster(cluster.WithURL(url), cluster.WithID(id),
		cluster.WithTTL(1200*time.Millisecond))}, opts...)
	f := start(t, opts...)
	netlooptest.Eventually(t, "node "+id+" joined", f.srv.Node().Live)
	return f
}

// listed returns room id as f's directory lists it.
func listed(f *fixture, id string) (room.Info, bool) {
	for _, info := range f.srv.Directory("") {
		if info.ID == id {
			return info, true
		}
	}
	return room.Info{}, false
}

// seats waits until f's directory lists room id with n seats taken.
func seats(t *testing.T, f *fixture, id string, n int) room.Info {
	t.Helper()
	var info room.Info
	netlooptest.Eventually(t, "room "+id+" listed with "+string(rune('0'+n))+" seats", func() bool {
		var ok bool
		info, ok = listed(f, id)
		return ok && info.Members == n
	})
	return info
}

// joinAt has a new player join a counter room (with params) at node at
// and waits until node seen's directory lists it with that one seat
// taken; it returns the room's ID.
func joinAt(t *testing.T, at, seen *fixture, params map[string]string) string {
	t.Helper()
	p := dial(t, newHost(t), at.addr, "p1")
	j, err := p.Join(ctxT(t), room.JoinMsg{Kind: "counter", Params: params, Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	seats(t, seen, j.Room, 1)
	return j.Room
}

// A player that connects to node a and joins by kind is sent to the open
// room on node b, gets its seat there, plays, and reconnects to b; when
// that room is full, a join at a opens a room at a.
func TestClusterRedirect(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	h := newHost(t)
	p1 := dial(t, h, b.addr, "p1")
	j1, err := p1.Join(ctxT(t), room.JoinMsg{Kind: "counter", Params: map[string]string{"max": "2"}, Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(j1.Room, "@b") {
		t.Fatalf("room %q: want an id of node b", j1.Room)
	}
	if info := seats(t, a, j1.Room, 1); info.Node != "b" || info.Addr != b.addr || info.MaxMembers != 2 || info.Kind != "counter" {
		t.Fatalf("a lists %+v", info)
	}

	p2 := dial(t, h, a.addr, "p2")
	j2, err := p2.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	if j2.Room != j1.Room || j2.Seat != 1 || len(j2.Members) != 2 {
		t.Fatalf("p2 joined %+v; want seat 1 of %s", j2, j1.Room)
	}
	if st := p2.Stats(); st.Redirects != 1 || st.Disconnects != 0 {
		t.Fatalf("p2 stats %+v", st)
	}
	b.expect(t, "join p2 seat 1")
	if list := a.srv.List(""); len(list) != 0 {
		t.Fatalf("a opened rooms: %+v", list)
	}
	if ev := recv(t, p1.members, "member event"); ev.Event != room.EventJoined || ev.Member.Name != "p2" {
		t.Fatalf("p1 saw %+v", ev)
	}
	if err := routeAdd.Send(ctxT(t), p2, addMsg{N: 5}); err != nil {
		t.Fatal(err)
	}
	waitSum(t, p2, 5)
	seats(t, a, j1.Room, 2)

	// b is p2's server now: a lost connection comes back to b's seat.
	if err := p2.Drop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for j := recv(t, p2.joined, "joined"); !j.Resumed || j.Room != j1.Room; j = recv(t, p2.joined, "joined") {
	}

	// The room is full: a join at a opens a room there.
	p3 := dial(t, h, a.addr, "p3")
	j3, err := p3.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(j3.Room, "@a") || p3.Stats().Redirects != 0 {
		t.Fatalf("p3 joined %+v, stats %+v", j3, p3.Stats())
	}
	// Joining a room of another node by its ID goes there too.
	p4 := dial(t, h, b.addr, "p4")
	seats(t, b, j3.Room, 1)
	j4, err := p4.Join(ctxT(t), room.JoinMsg{Room: j3.Room, Meta: pass})
	if err != nil || j4.Room != j3.Room || p4.Stats().Redirects != 1 {
		t.Fatalf("p4 joined %+v, %v", j4, err)
	}
}

// A seat reserved for a redirected player counts against the room while
// it is held, so the room cannot overfill; if nobody claims it, it is
// given back when the reservation expires, and its ticket is refused.
func TestClusterReservationExpires(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	a := startNode(t, url, "a")
	b := startNode(t, url, "b", room.WithReservation(300*time.Millisecond))
	id := joinAt(t, b, a, map[string]string{"max": "2"})

	// A player that does not follow its redirect.
	r := rawDial(t, a.addr)
	if err := room.Hello.Send(ctxT(t), r, room.HelloMsg{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	next(t, r, room.Welcome)
	if err := room.JoinRequest.Send(ctxT(t), r, room.JoinMsg{Req: 7, Kind: "counter", Meta: pass}); err != nil {
		t.Fatal(err)
	}
	rd := next(t, r, room.Redirect)
	if rd.Req != 7 || rd.Room != id || rd.Node != "b" || rd.Addr != b.addr || rd.Ticket == "" || rd.TTLMillis != 300 {
		t.Fatalf("redirect %+v", rd)
	}
	// The reservation was made before the redirect was sent.
	if list := b.srv.List("counter"); len(list) != 1 || list[0].Members != 2 {
		t.Fatalf("b lists %+v while a seat is reserved", list)
	}
	// Meanwhile the room is full: another join at a opens a room there.
	p2 := dial(t, newHost(t), a.addr, "p2")
	j2, err := p2.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil || !strings.HasSuffix(j2.Room, "@a") {
		t.Fatalf("p2 joined %+v, %v; want a room of a", j2, err)
	}
	// The reservation expires.
	netlooptest.Eventually(t, "reservation expired", func() bool {
		list := b.srv.List("counter")
		return len(list) == 1 && list[0].Members == 1
	})
	seats(t, a, id, 1)
	late := rawDial(t, b.addr)
	if err := room.Hello.Send(ctxT(t), late, room.HelloMsg{Name: "late"}); err != nil {
		t.Fatal(err)
	}
	next(t, late, room.Welcome)
	if err := room.JoinRequest.Send(ctxT(t), late, room.JoinMsg{Req: 1, Room: rd.Room, Ticket: rd.Ticket}); err != nil {
		t.Fatal(err)
	}
	if ref := next(t, late, room.JoinRefused); ref.Reason != room.ErrTicket.Error() {
		t.Fatalf("expired ticket: %+v", ref)
	}
}

// A node that stops takes its rooms out of the directory.
func TestClusterNodeGone(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	id := joinAt(t, b, a, nil)
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	netlooptest.Eventually(t, "b's room gone from a's directory", func() bool {
		_, ok := listed(a, id)
		return !ok
	})
	// A join at a no longer goes to b.
	p2 := dial(t, newHost(t), a.addr, "p2")
	j2, err := p2.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil || !strings.HasSuffix(j2.Room, "@a") {
		t.Fatalf("p2 joined %+v, %v", j2, err)
	}
}

// Without NATS a node serves joins by kind with its own rooms (it does
// not wait for the cluster), and refuses a join by the ID of another
// node's room with cluster.ErrUnavailable's text.
func TestClusterNATSDown(t *testing.T) {
	ns, url := clustertest.StartNATS(t, 0)
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	id := joinAt(t, b, a, nil)
	ns.Shutdown()
	ns.WaitForShutdown()
	netlooptest.Eventually(t, "a off the cluster", func() bool { return !a.srv.Node().Live() })
	p2 := dial(t, newHost(t), a.addr, "p2")
	j2, err := p2.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil || !strings.HasSuffix(j2.Room, "@a") || p2.Stats().Redirects != 0 {
		t.Fatalf("p2 joined %+v, %v; want a room of a", j2, err)
	}
	p3 := dial(t, newHost(t), a.addr, "p3")
	_, err = p3.Join(ctxT(t), room.JoinMsg{Room: id, Meta: pass})
	if !errors.Is(err, client.ErrRefused) || !strings.Contains(err.Error(), cluster.ErrUnavailable.Error()) {
		t.Fatalf("join of b's room while NATS is down: %v", err)
	}
}

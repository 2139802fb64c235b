package room_test

import (
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session/room"
)

// holdJoin holds a join (in JoinAttempt) until the joining player's
// connection has ended, and then gives the join's session goroutine the
// time to give up on it and end the session, as it did before the fix
// (the Player then has no session any more). With the fix the session
// goroutine waits for the join, so the bound is spent in full: there is
// no event to wait on for something that must not happen.
func holdJoin(p *room.Player) {
	<-p.Session().Context().Done()
	deadline := time.Now().Add(200 * time.Millisecond)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for p.Session() != nil && time.Now().Before(deadline) {
		<-tick.C
	}
}

// A join whose connection ends while the room is deciding it leaves the
// seat count right: the member, seated after its connection ended, leaves
// again, and the listing counts no seat taken. (The session goroutine
// used to give up on the join when its context ended while the room went
// on to seat the player: the member stayed seated with a dead connection
// and no seat counted, or the seat was given back twice.)
func TestJoinEndsInFlight(t *testing.T) {
	f := start(t, room.WithEmptyGrace(time.Hour))
	r := rawDial(t, f.addr)
	if err := room.Hello.Send(ctxT(t), r, room.HelloMsg{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	next(t, r, room.Welcome)
	meta := map[string]string{"pass": "ok", "gate": "1"}
	join := room.JoinMsg{Req: 1, Kind: "counter", Params: map[string]string{"max": "2"}, Meta: meta}
	if err := room.JoinRequest.Send(ctxT(t), r, join); err != nil {
		t.Fatal(err)
	}
	f.expect(t, "attempt x")
	id := f.srv.List("counter")[0].ID
	if err := r.h.Disconnect(ctxT(t), r.p, 0); err != nil {
		t.Fatal(err)
	}
	netlooptest.Expect(t, r.h, netloop.EventDisconnect)
	f.expect(t, "join x seat 0")
	f.expect(t, "leave x left")
	if n, err := f.srv.Signal(ctxT(t), id, "count"); err != nil || n != 0 {
		t.Fatalf("room count %v, %v; want 0", n, err)
	}
	if list := f.srv.List("counter"); len(list) != 1 || list[0].Members != 0 {
		t.Fatalf("listing %+v, want one room with no seat taken", list)
	}
	// Both seats are free: two players get them.
	h := newHost(t)
	for _, name := range []string{"a", "b"} {
		if _, err := dial(t, h, f.addr, name).Join(ctxT(t), room.JoinMsg{Room: id, Meta: pass}); err != nil {
			t.Fatalf("join %s: %v", name, err)
		}
	}
}

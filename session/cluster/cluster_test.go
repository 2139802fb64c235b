package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session/cluster/clustertest"
)

func TestNodesJoinAndLeave(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	// A TTL far beyond the test's deadlines: a Left seen in time comes
	// from the clean leave, not from the TTL.
	a := startNode(t, url, "a", WithTTL(time.Minute), WithCapacity(64))
	a.expectEvent(t, NodeJoined, "a")
	b := startNode(t, url, "b", WithTTL(time.Minute))
	a.expectEvent(t, NodeJoined, "b")
	b.expectEvent(t, NodeJoined, "a")
	netlooptest.Eventually(t, "two nodes", func() bool { return len(a.Nodes()) == 2 })
	got := a.Nodes()
	if got[0].ID != "a" || got[1].ID != "b" || got[0].Capacity != 64 || got[1].Addr != b.host.Addr().String() {
		t.Fatalf("Nodes() = %+v", got)
	}
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	a.expectEvent(t, NodeLeft, "b")
	if n := len(a.Nodes()); n != 1 {
		t.Fatalf("%d nodes after b left, want 1", n)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	host := netlooptest.Start(t, "127.0.0.1:0")
	srv := sessionServer(t, host)
	for name, opts := range map[string][]Option{
		"no NATS":    nil,
		"both":       {WithURL("nats://127.0.0.1:1"), WithServer("")},
		"short TTL":  {WithURL("nats://127.0.0.1:1"), WithTTL(time.Millisecond)},
		"bad id":     {WithURL("nats://127.0.0.1:1"), WithID("")},
		"bad prefix": {WithURL("nats://127.0.0.1:1"), WithPrefix("a.b")},
		"bad policy": {WithURL("nats://127.0.0.1:1"), WithLoginPolicy(9)},
	} {
		if _, err := New(srv, opts...); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestDeadNode plays a node killed with SIGKILL: its entries are in the
// directory, and nobody heartbeats them any more.
func TestDeadNode(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	a := startNode(t, url, "a")
	room, _ := a.Group("room")
	cli, s := a.login(t, "alice")
	if err := room.Join(context.Background(), s); err != nil {
		t.Fatal(err)
	}

	dir := openDirectory(t, url)
	ctx := context.Background()
	mustPut(t, dir.get("nodes"), "ghost", `{"id":"ghost","addr":"127.0.0.1:1"}`)
	mustPut(t, dir.get("users"), "gus", `{"node":"ghost","session":1}`)
	mustPut(t, dir.get("groups"), memberKey("room", "gus"), "ghost")

	a.expectEvent(t, NodeJoined, "ghost")
	// The three buckets are watched apart: wait for the group and the binding.
	netlooptest.Eventually(t, "gus in room and bound", func() bool {
		_, bound := a.Where("gus")
		return room.Len() == 2 && bound
	})
	if node, ok := a.Where("gus"); !ok || node != "ghost" {
		t.Fatalf("Where(gus) = %q, %v", node, ok)
	}
	// A push to gus goes out to the ghost's subject, one message.
	before := a.Stats().Published
	if n, err := a.Push(ctx, []string{"gus", "alice"}, 0, []byte("hi"), netloop.Reliable); err != nil || n != 2 {
		t.Fatalf("Push = %d, %v", n, err)
	}
	if d := a.Stats().Published - before; d != 1 {
		t.Fatalf("push published %d messages, want 1", d)
	}
	expectData(t, cli, "hi")

	start := time.Now()
	e := a.expectEvent(t, NodeLeft, "ghost")
	if !slices.Equal(e.Lost["room"], []string{"gus"}) {
		t.Fatalf("Lost = %v", e.Lost)
	}
	t.Logf("ghost dropped %v after the test stopped waiting for its join (TTL %v)", time.Since(start), testTTL)
	if _, ok := a.Where("gus"); ok {
		t.Fatal("gus still bound")
	}
	if got := room.Members(); len(got) != 1 || got[0].User != "alice" {
		t.Fatalf("Members = %v", got)
	}
	// a, the lowest live node, cleans the directory.
	netlooptest.Eventually(t, "directory clean", func() bool {
		return !hasKey(t, dir.get("users"), "gus") && !hasKey(t, dir.get("groups"), memberKey("room", "gus")) && !hasKey(t, dir.get("nodes"), "ghost")
	})
}

// directory finds the cluster directory's key-value buckets by name ("nodes"
// is enetkit-nodes), over a NATS connection of the test's own, closed when
// the test ends.
type directory struct {
	t  *testing.T
	js jetstream.JetStream
}

func openDirectory(t *testing.T, url string) directory {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return directory{t, js}
}

// find returns bucket name, or an error while it does not exist.
func (b directory) find(name string) (jetstream.KeyValue, error) {
	return b.js.KeyValue(context.Background(), "enetkit-"+name)
}

// get returns bucket name, failing the test if it does not exist.
func (b directory) get(name string) jetstream.KeyValue {
	b.t.Helper()
	kv, err := b.find(name)
	if err != nil {
		b.t.Fatal(err)
	}
	return kv
}

func mustPut(t *testing.T, kv jetstream.KeyValue, key, val string) {
	t.Helper()
	if _, err := kv.Put(context.Background(), key, []byte(val)); err != nil {
		t.Fatal(err)
	}
}

func hasKey(t *testing.T, kv jetstream.KeyValue, key string) bool {
	_, err := kv.Get(context.Background(), key)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestLoginKicksOlderSession(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	a := startNode(t, url, "a")
	b := startNode(t, url, "b")
	ctx := context.Background()

	cliA, sA := a.login(t, "alice")
	room, _ := a.Group("room")
	if err := room.Join(ctx, sA); err != nil {
		t.Fatal(err)
	}
	netlooptest.Eventually(t, "b sees alice", func() bool { n, _ := b.Where("alice"); return n == "a" })

	_, sB := b.login(t, "alice")
	// The new session joins the room at once: a's cleanup of the older
	// membership must not remove the new one.
	roomB, _ := b.Group("room")
	if err := roomB.Join(ctx, sB); err != nil {
		t.Fatal(err)
	}
	netlooptest.Expect(t, cliA, netloop.EventDisconnect) // kicked on a
	<-sA.Context().Done()
	netlooptest.Eventually(t, "a sees alice on b", func() bool { n, _ := a.Where("alice"); return n == "b" })
	netlooptest.Eventually(t, "a kicked alice", func() bool { return a.Stats().Kicked == 1 })
	want := []Member{{User: "alice", Node: "b"}}
	netlooptest.Eventually(t, "alice in the room on b", func() bool {
		return slices.Equal(room.Members(), want) && slices.Equal(roomB.Members(), want)
	})
	if err := roomB.Leave(ctx, sB); err != nil {
		t.Fatal(err)
	}
	netlooptest.Eventually(t, "alice left the room", func() bool { return room.Len() == 0 && roomB.Len() == 0 })
	if u, ok := b.User(sB); !ok || u != "alice" {
		t.Fatalf("User = %q, %v", u, ok)
	}

	// On one node too.
	cliB2, _ := b.login(t, "bob")
	b.login(t, "bob")
	netlooptest.Expect(t, cliB2, netloop.EventDisconnect)

	// Rebinding is a no-op; binding to another user is refused.
	if err := b.Bind(ctx, sB, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := b.Bind(ctx, sB, "carol"); !errors.Is(err, ErrBound) {
		t.Fatalf("Bind to another user: %v, want ErrBound", err)
	}
	if err := a.Bind(ctx, sB, "carol"); err == nil {
		t.Fatal("a bound b's session")
	}
	if err := b.Bind(ctx, sB, ""); !errors.Is(err, ErrBadName) {
		t.Fatalf("Bind(\"\"): %v, want ErrBadName", err)
	}
}

func TestLoginRefused(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	a := startNode(t, url, "a", WithLoginPolicy(LoginRefuse))
	b := startNode(t, url, "b", WithLoginPolicy(LoginRefuse))
	ctx := context.Background()
	cliA, sA := a.login(t, "alice")
	_, sB := b.connect(t)
	if err := b.Bind(ctx, sB, "alice"); !errors.Is(err, ErrTaken) {
		t.Fatalf("second login: %v, want ErrTaken", err)
	}
	_, sA2 := a.connect(t)
	if err := a.Bind(ctx, sA2, "alice"); !errors.Is(err, ErrTaken) {
		t.Fatalf("second login on the same node: %v, want ErrTaken", err)
	}
	// The binding ends with its session.
	if err := cliA.Close(); err != nil {
		t.Fatal(err)
	}
	<-sA.Context().Done()
	netlooptest.Eventually(t, "alice free", func() bool { _, ok := b.Where("alice"); return !ok })
	if err := b.Bind(ctx, sB, "alice"); err != nil {
		t.Fatalf("login after logout: %v", err)
	}
}

func TestPushOneMessagePerNode(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	nodes := []*testNode{startNode(t, url, "a"), startNode(t, url, "b"), startNode(t, url, "c")}
	var clis []*netloop.Host
	var names []string
	for i, n := range nodes {
		for j := range 3 {
			name := string(rune('a'+i)) + string(rune('0'+j))
			cli, _ := n.login(t, name)
			clis = append(clis, cli)
			names = append(names, name)
		}
	}
	a := nodes[0]
	netlooptest.Eventually(t, "a sees 9 users", func() bool { return a.Stats().Users == 9 })
	before := a.Stats().Published
	got, err := a.Push(context.Background(), append(names, "nobody"), 1, []byte("news"), netloop.Reliable)
	if err != nil || got != 9 {
		t.Fatalf("Push = %d, %v; want 9", got, err)
	}
	if d := a.Stats().Published - before; d != 2 {
		t.Fatalf("push to users on 3 nodes published %d NATS messages, want 2 (one per other node)", d)
	}
	for _, cli := range clis {
		ev := netlooptest.Expect(t, cli, netloop.EventReceive)
		if string(ev.Payload) != "news" || ev.Channel != 1 {
			t.Fatalf("received %q on %d", ev.Payload, ev.Channel)
		}
	}
	if _, err := a.Push(context.Background(), names, 0, nil, netloop.Reliable); !errors.Is(err, netloop.ErrEmpty) {
		t.Fatalf("empty push: %v", err)
	}
}

func TestGroupAcrossNodes(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	nodes := []*testNode{startNode(t, url, "a"), startNode(t, url, "b"), startNode(t, url, "c")}
	ctx := context.Background()
	var clis []*netloop.Host
	var last *testNode
	for i, n := range nodes {
		g, err := n.Group("room 1") // a name with a space: escaped in keys and subjects
		if err != nil {
			t.Fatal(err)
		}
		for j := range 2 {
			cli, s := n.login(t, string(rune('a'+i))+string(rune('0'+j)))
			if err := g.Join(ctx, s); err != nil {
				t.Fatal(err)
			}
			if err := g.Join(ctx, s); err != nil {
				t.Fatalf("second join: %v", err)
			}
			clis = append(clis, cli)
		}
		last = n
	}
	ga, _ := nodes[0].Group("room 1")
	for _, n := range nodes {
		g, _ := n.Group("room 1")
		netlooptest.Eventually(t, "6 members on "+n.ID(), func() bool { return g.Len() == 6 })
	}
	if m := ga.Members(); m[0] != (Member{User: "a0", Node: "a"}) || m[5] != (Member{User: "c1", Node: "c"}) {
		t.Fatalf("Members = %v", m)
	}
	before := nodes[0].Stats().Published
	if err := ga.Broadcast(ctx, 0, []byte("hello room"), netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	if d := nodes[0].Stats().Published - before; d != 1 {
		t.Fatalf("broadcast published %d NATS messages, want 1", d)
	}
	for _, cli := range clis {
		expectData(t, cli, "hello room")
	}
	// A member that leaves, and one whose session ends.
	gc, _ := last.Group("room 1")
	local := gc.Local()
	if err := gc.Leave(ctx, local[0]); err != nil {
		t.Fatal(err)
	}
	if err := local[1].Kick(); err != nil {
		t.Fatal(err)
	}
	netlooptest.Eventually(t, "4 members on a", func() bool { return ga.Len() == 4 })
	netlooptest.Eventually(t, "c forgets the group", func() bool {
		last.mu.Lock()
		defer last.mu.Unlock()
		return len(last.groups) == 0
	})
	if _, err := nodes[0].Group(""); !errors.Is(err, ErrBadName) {
		t.Fatalf("Group(\"\"): %v", err)
	}
	// c has no members left, b still has: one publish still.
	before = nodes[0].Stats().Published
	if err := ga.Broadcast(ctx, 0, []byte("again"), netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	if d := nodes[0].Stats().Published - before; d != 1 {
		t.Fatalf("broadcast published %d, want 1", d)
	}
	for _, cli := range clis[:4] {
		expectData(t, cli, "again")
	}
}

func TestRequests(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	type sum struct{ A, B int }
	type total struct{ N int }
	release := make(chan struct{})
	a := startNodeSetup(t, url, "a", func(n *Node) {
		n.Handle("slow", func(context.Context, []byte) ([]byte, error) { <-release; return nil, nil })
		n.Handle("whoami", func(context.Context, []byte) ([]byte, error) { return []byte("a"), nil })
	})
	startNodeSetup(t, url, "b", func(n *Node) {
		n.Handle("whoami", func(context.Context, []byte) ([]byte, error) { return []byte("b"), nil })
		n.Handle("fail", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("no luck") })
		Serve(n, "add", dispatch.JSON, func(_ context.Context, s sum) (total, error) { return total{s.A + s.B}, nil })
	})
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		got, err := a.Request(ctx, "whoami", id, nil)
		if err != nil || string(got) != id {
			t.Fatalf("whoami on %s = %q, %v", id, got, err)
		}
	}
	seen := map[string]bool{}
	for range 40 {
		got, err := a.Request(ctx, "whoami", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		seen[string(got)] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("any-node requests reached %v, want both", seen)
	}
	if r, err := Call[sum, total](ctx, a.Node, "add", "", dispatch.JSON, sum{2, 3}); err != nil || r.N != 5 {
		t.Fatalf("add = %v, %v", r, err)
	}
	_, err := a.Request(ctx, "fail", "b", nil)
	var re *RemoteError
	if !errors.Is(err, ErrRemote) || !errors.As(err, &re) || re.Node != "b" || re.Text != "no luck" {
		t.Fatalf("fail: %v", err)
	}
	if _, err := a.Request(ctx, "add", "a", nil); !errors.Is(err, ErrNoService) {
		t.Fatalf("service on a node without it: %v", err)
	}
	if _, err := a.Request(ctx, "nothing", "", nil); !errors.Is(err, ErrNoService) {
		t.Fatalf("unknown service: %v", err)
	}
	if _, err := Call[sum, total](ctx, a.Node, "add", "b", dispatch.JSON, sum{}); err != nil {
		t.Fatal(err)
	}
	_, err = a.Request(ctx, "add", "b", []byte("not json"))
	if !errors.Is(err, ErrRemote) {
		t.Fatalf("bad request: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = a.Request(short, "slow", "", nil)
	close(release)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow service: %v, want ErrTimeout", err)
	}
	if _, err := a.Request(ctx, "bad\nname", "", nil); !errors.Is(err, ErrBadName) {
		t.Fatalf("bad service name: %v", err)
	}
}

// Another node that found a node dead purges its entries; a node whose own
// sweep has not run yet must still name the dead node's groups in its
// NodeLeft, rather than forget the members one purge at a time (as a chat
// server then never told its users that the dead node's users left).
func TestPurgeByAnotherNode(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	a := startNode(t, url, "a")
	room, _ := a.Group("room")
	dir := openDirectory(t, url)
	ctx := context.Background()
	groups, nodes := dir.get("groups"), dir.get("nodes")
	mustPut(t, nodes, "ghost", `{"id":"ghost","addr":"127.0.0.1:1"}`)
	mustPut(t, groups, memberKey("room", "gus"), "ghost")
	a.expectEvent(t, NodeJoined, "ghost")
	netlooptest.Eventually(t, "gus in room", func() bool { return room.Len() == 1 })

	// What the sweeping node does to the dead node's group members.
	if err := groups.Purge(ctx, memberKey("room", "gus")); err != nil {
		t.Fatal(err)
	}
	e := a.expectEvent(t, NodeLeft, "ghost")
	if !slices.Equal(e.Lost["room"], []string{"gus"}) {
		t.Fatalf("Lost = %v, want gus in room", e.Lost)
	}
	if room.Len() != 0 {
		t.Fatalf("room has %d members, want 0", room.Len())
	}
}

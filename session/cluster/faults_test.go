package cluster

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session/cluster/clustertest"
)

// TestNATSOutage stops the NATS server under two nodes and starts a fresh
// one (an empty directory) on the same port: local play goes on, cluster
// calls fail at once, and both nodes rejoin and restore the directory by
// themselves.
func TestNATSOutage(t *testing.T) {
	ns, url := clustertest.StartNATS(t, 0)
	a := startNode(t, url, "a")
	b := startNode(t, url, "b")
	ctx := context.Background()
	roomA, _ := a.Group("room")
	roomB, _ := b.Group("room")
	cliA, sA := a.login(t, "alice")
	cliB, sB := b.login(t, "bob")
	for _, j := range []struct {
		g   *Group
		err error
	}{{roomA, roomA.Join(ctx, sA)}, {roomB, roomB.Join(ctx, sB)}} {
		if j.err != nil {
			t.Fatal(j.err)
		}
	}
	// Bindings and memberships are separate keys: wait for both to reach
	// both replicas before NATS goes.
	netlooptest.Eventually(t, "room of 2 and both bindings", func() bool {
		na, _ := a.Where("bob")
		nb, _ := b.Where("alice")
		return roomA.Len() == 2 && roomB.Len() == 2 && na == "b" && nb == "a"
	})

	port := ns.Addr().(*net.TCPAddr).Port
	ns.Shutdown()
	ns.WaitForShutdown()
	netlooptest.Eventually(t, "nodes unavailable", func() bool { return !a.Live() && !b.Live() })

	// Local play goes on; cluster calls fail at once.
	_, s2 := a.connect(t)
	t0 := time.Now()
	err := a.Bind(ctx, s2, "carol")
	t.Logf("Bind failed in %v while NATS was down", time.Since(t0))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Bind while down: %v, want ErrUnavailable", err)
	}
	n, err := a.Push(ctx, []string{"alice", "bob"}, 0, []byte("push while down"), netloop.Reliable)
	if !errors.Is(err, ErrUnavailable) || n != 1 {
		t.Fatalf("Push while down = %d, %v; want 1, ErrUnavailable", n, err)
	}
	expectData(t, cliA, "push while down")
	if err := roomA.Broadcast(ctx, 0, []byte("room while down"), netloop.Reliable); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Broadcast while down: %v", err)
	}
	expectData(t, cliA, "room while down")
	if _, err := a.Request(ctx, "svc", "", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Request while down: %v", err)
	}
	if err := roomA.Join(ctx, s2); !errors.Is(err, ErrNotBound) {
		t.Fatalf("Join of an unbound session: %v", err)
	}
	st := a.Stats()
	if st.Lost != 2 || st.Refused < 3 || st.Connected {
		t.Fatalf("stats while down: %+v", st)
	}

	// A fresh server on the same port: an empty directory.
	clustertest.StartNATS(t, port)
	netlooptest.Eventually(t, "nodes rejoined", func() bool { return a.Live() && b.Live() })
	netlooptest.Eventually(t, "directory restored", func() bool {
		na, _ := a.Where("bob")
		nb, _ := b.Where("alice")
		return na == "b" && nb == "a" && roomA.Len() == 2 && roomB.Len() == 2
	})
	if n, err := a.Push(ctx, []string{"bob"}, 0, []byte("push after"), netloop.Reliable); err != nil || n != 1 {
		t.Fatalf("Push after = %d, %v", n, err)
	}
	expectData(t, cliB, "push after")
	if err := roomB.Broadcast(ctx, 0, []byte("room after"), netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	expectData(t, cliA, "room after")
	expectData(t, cliB, "room after")
	if r := a.Stats().Joins; r != 2 {
		t.Fatalf("a joined %d times, want 2", r)
	}
	// Nobody saw anybody leave.
	for _, n := range []*testNode{a, b} {
		for len(n.events) > 0 {
			if e := <-n.events; e.Kind == NodeLeft {
				t.Fatalf("node %s saw %s leave", n.ID(), e.Node.ID)
			}
		}
	}
}

// TestStartWhileNATSDown starts a node with no NATS server: local play
// works, and it joins when the server comes.
func TestStartWhileNATSDown(t *testing.T) {
	ns, url := clustertest.StartNATS(t, 0)
	port := ns.Addr().(*net.TCPAddr).Port
	ns.Shutdown()
	ns.WaitForShutdown()
	host, err := netloop.New("127.0.0.1:0", netloop.WithPeers(4))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(sessionServer(t, host), WithURL(url), WithTTL(testTTL))
	if err != nil {
		t.Fatal(err)
	}
	netlooptest.Go(t, n.Run)
	if _, err := n.Request(context.Background(), "x", "", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Request: %v", err)
	}
	clustertest.StartNATS(t, port)
	netlooptest.Eventually(t, "joined", n.Live)
}

// TestEmbeddedServer runs a node with its own NATS server, listening, and
// a second node that joins through it.
func TestEmbeddedServer(t *testing.T) {
	ns, _ := clustertest.StartNATS(t, 0) // only to find a free port
	addr := ns.Addr().String()
	ns.Shutdown()
	ns.WaitForShutdown()

	host, err := netloop.New("127.0.0.1:0", netloop.WithPeers(4))
	if err != nil {
		t.Fatal(err)
	}
	first, err := New(sessionServer(t, host), WithServer(addr), WithID("first"), WithTTL(testTTL))
	if err != nil {
		t.Fatal(err)
	}
	stop := netlooptest.Go(t, first.Run)
	netlooptest.Eventually(t, "first live", first.Live)
	second := startNode(t, "nats://"+addr, "second")
	netlooptest.Eventually(t, "two nodes", func() bool { return len(second.Nodes()) == 2 && len(first.Nodes()) == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	netlooptest.Eventually(t, "second unavailable", func() bool { return !second.Live() })
	if err := first.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
}

// TestInProcessServer runs a single node on an in-process NATS server.
func TestInProcessServer(t *testing.T) {
	host, err := netloop.New("127.0.0.1:0", netloop.WithPeers(4))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(sessionServer(t, host), WithServer(""))
	if err != nil {
		t.Fatal(err)
	}
	netlooptest.Go(t, n.Run)
	netlooptest.Eventually(t, "live", n.Live)
	if got := n.Nodes(); len(got) != 1 || got[0].ID != n.ID() || got[0].Addr != host.Addr().String() {
		t.Fatalf("Nodes = %+v", got)
	}
}

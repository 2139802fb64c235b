package cluster

import (
	"errors"
	"net"
	"testing"

	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session/cluster/clustertest"
	"github.com/nats-io/nats.go/jetstream"
)

// registryNode starts node id with registry "things".
func registryNode(t *testing.T, url, id string) (*testNode, *Registry) {
	t.Helper()
	var reg *Registry
	tn := startNodeSetup(t, url, id, func(n *Node) {
		var err error
		if reg, err = n.Registry("things"); err != nil {
			t.Fatal(err)
		}
	})
	return tn, reg
}

// has reports whether r lists key of node with value v.
func has(r *Registry, node, key, v string) bool {
	for _, e := range r.Entries() {
		if e.Node == node && e.Key == key {
			return string(e.Value) == v
		}
	}
	return false
}

// A node's entries reach the others, changes and deletions too; they are
// written again after NATS lost them, and go when their node stops.
func TestRegistry(t *testing.T) {
	ns, url := clustertest.StartNATS(t, 0)
	a, ra := registryNode(t, url, "a")
	_, rb := registryNode(t, url, "b")
	if _, err := a.Registry("late"); !errors.Is(err, ErrRunning) {
		t.Fatalf("Registry after Run: %v", err)
	}
	if err := ra.Put("", nil); !errors.Is(err, ErrBadName) {
		t.Fatalf("Put of an empty key: %v", err)
	}
	for _, k := range []string{"x.1", "y z"} {
		if err := ra.Put(k, []byte("v1")); err != nil {
			t.Fatal(err)
		}
	}
	if !has(ra, "a", "x.1", "v1") {
		t.Fatal("own entry not listed at once")
	}
	netlooptest.Eventually(t, "b sees a's entries", func() bool { return has(rb, "a", "x.1", "v1") && has(rb, "a", "y z", "v1") })
	if err := ra.Put("x.1", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	ra.Delete("y z")
	netlooptest.Eventually(t, "b sees the change", func() bool { return has(rb, "a", "x.1", "v2") && len(rb.Entries()) == 1 })

	// A fresh NATS server on the same port: an empty directory.
	port := ns.Addr().(*net.TCPAddr).Port
	ns.Shutdown()
	ns.WaitForShutdown()
	netlooptest.Eventually(t, "a unavailable", func() bool { return !a.Live() })
	if err := ra.Put("w", []byte("while down")); err != nil {
		t.Fatal(err)
	}
	clustertest.StartNATS(t, port)
	netlooptest.Eventually(t, "entries written again", func() bool {
		return has(rb, "a", "x.1", "v2") && has(rb, "a", "w", "while down") && len(rb.Entries()) == 2
	})

	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	netlooptest.Eventually(t, "a's entries gone", func() bool { return len(rb.Entries()) == 0 })
	// Deleted from the directory, not only hidden.
	netlooptest.Eventually(t, "a's entries deleted", func() bool {
		rb.mu.Lock()
		defer rb.mu.Unlock()
		return len(rb.replica["a"]) == 0
	})
}

// A dead node's entries are hidden when it is dropped, and purged from the
// directory a TTL later by the lowest live node.
func TestRegistryDeadNode(t *testing.T) {
	_, url := clustertest.StartNATS(t, 0)
	_, ra := registryNode(t, url, "a")
	dir := openDirectory(t, url)
	nodes := dir.get("nodes")
	var things jetstream.KeyValue
	netlooptest.Eventually(t, "registry bucket", func() bool {
		var err error
		things, err = dir.find("reg-things")
		return err == nil
	})
	mustPut(t, nodes, "ghost", `{"id":"ghost","addr":"127.0.0.1:1"}`)
	mustPut(t, things, "ghost.k", "v")
	netlooptest.Eventually(t, "ghost's entry listed", func() bool { return has(ra, "ghost", "k", "v") })
	netlooptest.Eventually(t, "ghost's entry hidden", func() bool { return !has(ra, "ghost", "k", "v") })
	netlooptest.Eventually(t, "ghost's entry purged", func() bool { return !hasKey(t, things, "ghost.k") })
}

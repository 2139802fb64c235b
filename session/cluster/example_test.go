package cluster_test

import (
	"context"
	"fmt"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
	"github.com/enetkit/enetkit/session/cluster"
)

// A node on an embedded, in-process NATS server: a cluster of one, which
// other processes could join had it listened with WithServer(addr).
func ExampleNode() {
	host, err := netloop.New("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	var node *cluster.Node
	srv, err := session.New(host, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		if err := node.Bind(ctx, s, "alice"); err != nil { // kicks any older "alice"
			return err
		}
		room, _ := node.Group("lobby")
		if err := room.Join(ctx, s); err != nil {
			return err
		}
		return room.Broadcast(ctx, 0, []byte("alice joined"), netloop.Reliable)
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	joined := make(chan cluster.NodeInfo, 1)
	node, err = cluster.New(srv, cluster.WithServer(""), cluster.WithID("node-1"),
		cluster.WithWatch(func(e cluster.NodeEvent) {
			if e.Kind == cluster.NodeJoined {
				joined <- e.Node
			}
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	select {
	case info := <-joined:
		fmt.Println(info.ID, "joined; live nodes:", len(node.Nodes()))
	case <-time.After(10 * time.Second):
		fmt.Println("no join")
	}
	cancel()
	fmt.Println("Run:", <-done)
	// Output:
	// node-1 joined; live nodes: 1
	// Run: <nil>
}

package room_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session/cluster"
	"github.com/enetkit/enetkit/session/room"
	"github.com/enetkit/enetkit/session/room/client"
)

// Two room servers form a cluster: node a runs the NATS server in its
// process, node b joins it. A player who connects to b and joins by kind
// is sent to the open room on a.
func ExampleWithCluster() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	natsAddr := freePort()
	node := func(id string, where cluster.Option) *room.Server {
		host, err := netloop.New("127.0.0.1:0", netloop.WithChannels(2))
		if err != nil {
			panic(err)
		}
		srv, err := room.New(host, room.WithCluster(where, cluster.WithID(id)))
		if err != nil {
			panic(err)
		}
		if err := srv.Register("adder", func() room.Handler { return &adder{} }); err != nil {
			panic(err)
		}
		return srv
	}
	a := node("a", cluster.WithServer(natsAddr))
	b := node("b", cluster.WithURL("nats://"+natsAddr))
	ch, err := client.NewHost(2)
	if err != nil {
		panic(err)
	}
	ann, err := ch.Client(a.Host().Addr().String())
	if err != nil {
		panic(err)
	}
	bob, err := ch.Client(b.Host().Addr().String())
	if err != nil {
		panic(err)
	}

	var g errgroup.Group
	srvCtx, stopServers := context.WithCancel(ctx)
	cliCtx, stopClients := context.WithCancel(ctx)
	g.Go(func() error { return a.Run(srvCtx) })
	g.Go(func() error { return b.Run(srvCtx) })
	g.Go(func() error { return ch.Run(cliCtx) })
	g.Go(func() error { return ann.Run(cliCtx) })
	g.Go(func() error { return bob.Run(cliCtx) })

	ja, err := ann.Join(ctx, room.JoinMsg{Kind: "adder"})
	if err != nil {
		panic(err)
	}
	fmt.Println("ann joined", ja.Room)
	for len(b.Directory("adder")) == 0 { // until b's replica of the directory has the room
		time.Sleep(10 * time.Millisecond)
	}
	jb, err := bob.Join(ctx, room.JoinMsg{Kind: "adder"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("bob joined %s, seat %d, after %d redirect\n", jb.Room, jb.Seat, bob.Stats().Redirects)

	stopClients()
	stopServers()
	if err := g.Wait(); err != nil {
		panic(err)
	}
	// Output:
	// ann joined adder-1@a
	// bob joined adder-1@a, seat 1, after 1 redirect
}

// freePort returns a loopback address with a port free right now.
func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

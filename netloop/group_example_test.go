package netloop_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/enetkit/enetkit/netloop"
)

// Two hosts on one port, each with its own loop and its own consumer; a
// client reaches one of them, and that host alone serves it.
func ExampleGroup() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup

	g, err := netloop.NewGroup("127.0.0.1:0", 2)
	if err != nil {
		log.Fatal(err)
	}
	addrs := g.Addrs()
	fmt.Println(len(addrs), "hosts on one port:", addrs[0] == addrs[1])
	wg.Go(func() { g.Run(ctx) })
	for _, h := range g.Hosts() { // one consumer per host
		wg.Go(func() {
			for ev := range h.Events() { // until Run has returned
				if ev.Kind == netloop.EventReceive {
					h.Send(ctx, ev.Peer, ev.Channel, ev.Payload, ev.Flag)
				}
			}
		})
	}

	cli, err := netloop.New("")
	if err != nil {
		log.Fatal(err)
	}
	wg.Go(func() { cli.Run(ctx) })
	server, err := cli.Connect(ctx, g.Addr().String(), 1, 0)
	if err != nil {
		log.Fatal(err)
	}
	for ev := range cli.Events() {
		switch ev.Kind {
		case netloop.EventConnect:
			cli.Send(ctx, server, 0, []byte("hello"), netloop.Reliable)
		case netloop.EventReceive:
			fmt.Println(string(ev.Payload))
			cancel() // stop the group and the client
		}
	}
	wg.Wait()
	// Output:
	// 2 hosts on one port: true
	// hello
}

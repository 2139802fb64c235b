package netloop_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/enetkit/enetkit/netloop"
)

// An echo server whose handler runs on the host's loop goroutine: each
// answer is handed to ENet at once, with no goroutine between.
func ExampleWithInline() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup

	srv, err := netloop.New("127.0.0.1:0", netloop.WithInline(func(in *netloop.Inline, ev netloop.Event) {
		if ev.Kind == netloop.EventReceive {
			in.Send(ev.Peer, ev.Channel, ev.Payload, ev.Flag) // never blocks
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
	wg.Go(func() { srv.Run(ctx) }) // Events carries nothing: nobody reads it

	cli, err := netloop.New("")
	if err != nil {
		log.Fatal(err)
	}
	wg.Go(func() { cli.Run(ctx) })
	server, err := cli.Connect(ctx, srv.Addr().String(), 1, 0)
	if err != nil {
		log.Fatal(err)
	}
	for ev := range cli.Events() {
		switch ev.Kind {
		case netloop.EventConnect:
			cli.Send(ctx, server, 0, []byte("hello"), netloop.Reliable)
		case netloop.EventReceive:
			fmt.Println(string(ev.Payload))
			cancel()
		}
	}
	wg.Wait()
	// Output: hello
}

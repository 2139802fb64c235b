package netloop_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/enetkit/enetkit/netloop"
)

// An echo server and a client on loopback.
func ExampleHost() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup

	// The server echoes every message back on the channel it came on.
	srv, err := netloop.New("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	wg.Go(func() { srv.Run(ctx) })
	wg.Go(func() {
		for ev := range srv.Events() { // until Run has returned
			if ev.Kind == netloop.EventReceive {
				srv.Send(ctx, ev.Peer, ev.Channel, ev.Payload, ev.Flag)
			}
		}
	})

	// The client connects, says hello and prints the answer.
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
			cancel() // stop both hosts
		}
	}
	wg.Wait()
	// Output: hello
}

// Messages sent reliably on one channel arrive in order.
func ExampleHost_Send() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	srv, err := netloop.New("127.0.0.1:0", netloop.WithChannels(2))
	if err != nil {
		log.Fatal(err)
	}
	cli, err := netloop.New("", netloop.WithChannels(2))
	if err != nil {
		log.Fatal(err)
	}
	wg.Go(func() { srv.Run(ctx) })
	wg.Go(func() { cli.Run(ctx) })

	server, err := cli.Connect(ctx, srv.Addr().String(), 2, 0)
	if err != nil {
		log.Fatal(err)
	}
	if ev := <-cli.Events(); ev.Kind != netloop.EventConnect {
		log.Fatal(ev.Kind)
	}
	wg.Go(func() {
		for range cli.Events() { // drain the rest, until Run has returned
		}
	})
	for _, m := range []string{"one", "two", "three"} {
		if err := cli.Send(ctx, server, 1, []byte(m), netloop.Reliable); err != nil {
			log.Fatal(err)
		}
	}
	n := 0
	for ev := range srv.Events() {
		if ev.Kind == netloop.EventReceive {
			fmt.Printf("channel %d, %s: %s\n", ev.Channel, ev.Flag, ev.Payload)
			if n++; n == 3 {
				cancel()
			}
		}
	}
	wg.Wait()
	// Output:
	// channel 1, reliable: one
	// channel 1, reliable: two
	// channel 1, reliable: three
}

func ExampleParseAddr() {
	for _, s := range []string{"127.0.0.1:8888", "*:6767", "localhost:*"} {
		a, err := netloop.ParseAddr(context.Background(), s, true)
		fmt.Println(a, err)
	}
	_, err := netloop.ParseAddr(context.Background(), "*:6767", false)
	fmt.Println(err)
	// Output:
	// 127.0.0.1:8888 <nil>
	// 0.0.0.0:6767 <nil>
	// 127.0.0.1:0 <nil>
	// netloop: bad address "*:6767": '*' is only valid for binding
}

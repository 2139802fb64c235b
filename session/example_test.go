package session_test

import (
	"context"
	"fmt"
	"log"
	"strconv"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// An echo server, and a client on loopback that prints what comes back.
func ExampleServer() {
	host, err := netloop.New("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := session.New(host, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		for {
			m, err := s.Receive(ctx)
			if err != nil {
				return nil // the session ended
			}
			if err := s.Send(ctx, m.Channel, m.Data, m.Flag); err != nil {
				return err
			}
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Run(ctx) }()

	// The client: a plain host, driven through its events.
	cli, err := netloop.New("")
	if err != nil {
		log.Fatal(err)
	}
	cctx, cstop := context.WithCancel(context.Background())
	defer cstop()
	ran := make(chan error, 1)
	go func() { ran <- cli.Run(cctx) }()
	peer, err := cli.Connect(cctx, "127.0.0.1:"+strconv.Itoa(int(host.Addr().Port())), 1, 0)
	if err != nil {
		log.Fatal(err)
	}
	for ev := range cli.Events() {
		switch ev.Kind {
		case netloop.EventConnect:
			cli.Send(cctx, peer, 0, []byte("hello, enet"), netloop.Reliable)
		case netloop.EventReceive:
			fmt.Printf("echo: %s\n", ev.Payload)
			cli.Disconnect(cctx, peer, 0)
		case netloop.EventDisconnect:
			cstop() // Events closes once the client's Run returns
		}
	}
	if err := <-ran; err != nil {
		log.Fatal(err)
	}
	stop()
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	// Output: echo: hello, enet
}

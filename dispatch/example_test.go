package dispatch_test

import (
	"context"
	"fmt"
	"log"
	"strconv"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// A server that answers JSON greetings, and a client on loopback.
func ExampleMux() {
	type Greeting struct{ Name string }
	type Reply struct{ Text string }
	// Routes: each message type declared once, for server and client alike.
	greeting := dispatch.NewRoute[Greeting](1, dispatch.JSON, 0, netloop.Reliable)
	reply := dispatch.NewRoute[Reply](2, dispatch.JSON, 0, netloop.Reliable)

	mux, err := dispatch.NewMux(dispatch.WithMaxSize(4096))
	if err != nil {
		log.Fatal(err)
	}
	greeting.Handle(mux, func(ctx context.Context, s *session.Session, g Greeting) error {
		return reply.Send(ctx, s, Reply{Text: "hello, " + g.Name})
	})
	host, err := netloop.New("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := session.New(host, mux)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Run(ctx) }()

	// The client: a plain host that speaks the same wire format.
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
			msg, err := greeting.Encode(Greeting{Name: "enet"})
			if err != nil {
				log.Fatal(err)
			}
			cli.Send(cctx, peer, greeting.Channel(), msg, greeting.Flag())
		case netloop.EventReceive:
			r, err := reply.Decode(ev.Payload)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(reply.Type(), r.Text)
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
	// Output: 2 hello, enet
}

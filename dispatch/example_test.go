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
	const (
		typeGreeting = 1
		typeReply    = 2
	)

	mux := dispatch.NewMux(dispatch.WithMaxSize(4096))
	dispatch.Handle(mux, typeGreeting, dispatch.JSON, func(ctx context.Context, s *session.Session, g Greeting) error {
		return dispatch.Send(ctx, s, 0, netloop.Reliable, dispatch.JSON, typeReply, Reply{Text: "hello, " + g.Name})
	})
	host, err := netloop.New("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := session.New(host, mux)
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
			msg, err := dispatch.Encode(dispatch.JSON, typeGreeting, Greeting{Name: "enet"})
			if err != nil {
				log.Fatal(err)
			}
			cli.Send(cctx, peer, 0, msg, netloop.Reliable)
		case netloop.EventReceive:
			typ, payload, err := dispatch.ParseMessage(ev.Payload)
			if err != nil {
				log.Fatal(err)
			}
			var r Reply
			if err := dispatch.JSON.Unmarshal(payload, &r); err != nil {
				log.Fatal(err)
			}
			fmt.Println(typ, r.Text)
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

package room_test

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session/room"
	"github.com/enetkit/enetkit/session/room/client"
)

// The routes server and client share.
var (
	Push  = dispatch.NewRoute[int](40, dispatch.JSON, 1, netloop.Reliable)
	Total = dispatch.NewRoute[int](41, dispatch.JSON, 1, netloop.Reliable)
)

// adder is a room that adds up its members' pushes and tells everyone the
// total on every tick that changed it. Its fields need no lock.
type adder struct {
	room.Base
	total int
}

func (a *adder) Init(r *room.Room, params map[string]string) (room.Config, error) {
	return room.Config{TickRate: 20, MaxMembers: 4}, nil
}

func (a *adder) Tick(r *room.Room, t *room.Tick) {
	for _, in := range t.Inputs {
		a.total += in.Value.(int)
	}
	if len(t.Inputs) > 0 {
		_ = Total.Broadcast(r.Context(), r, a.total) // leaves after the tick, one packet for all
	}
}

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The server: a host, a room server, a kind of room, an input route.
	host, err := netloop.New("127.0.0.1:0", netloop.WithChannels(2))
	if err != nil {
		panic(err)
	}
	srv, err := room.New(host)
	if err != nil {
		panic(err)
	}
	if err := srv.Register("adder", func() room.Handler { return &adder{} }); err != nil {
		panic(err)
	}
	room.HandleInput(srv, Push)

	// A client on a client host, with a handler for the totals.
	ch, err := client.NewHost(2)
	if err != nil {
		panic(err)
	}
	c, err := ch.Client(host.Addr().String(), client.WithName("ann"))
	if err != nil {
		panic(err)
	}
	totals := make(chan int, 16)
	client.Handle(c, Total, func(n int) { totals <- n })

	var g errgroup.Group
	srvCtx, stopServer := context.WithCancel(ctx)
	cliCtx, stopClient := context.WithCancel(ctx)
	g.Go(func() error { return srv.Run(srvCtx) })
	g.Go(func() error { return ch.Run(cliCtx) })
	g.Go(func() error { return c.Run(cliCtx) })

	j, err := c.Join(ctx, room.JoinMsg{Kind: "adder"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("joined %s, seat %d, %d Hz\n", j.Room, j.Seat, j.TickHz)
	for _, n := range []int{1, 2, 3} {
		if err := Push.Send(ctx, c, n); err != nil {
			panic(err)
		}
	}
	for total := 0; total != 6; {
		total = <-totals
	}
	fmt.Println("total 6")

	stopClient()
	stopServer()
	if err := g.Wait(); err != nil {
		panic(err)
	}
	// Output:
	// joined adder-1, seat 0, 20 Hz
	// total 6
}

// Command server is an ENet echo server, the Go version of server.lua in
// lua-enet's tutorial: it prints every message it receives and sends it back
// to its sender, on the same channel and with the same flag.
//
//	go run ./examples/echo/server -addr localhost:6789 [-metrics 127.0.0.1:9100]
//
// Talk to it with go run ./examples/echo/client, or with any ENet 1.3
// program: payloads travel as they are, without framing. It accepts as many
// channels as a client asks for. It runs until SIGINT or SIGTERM, then
// disconnects its clients and exits with status 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/metrics"
	"github.com/enetkit/enetkit/netloop"
)

func main() {
	addr := flag.String("addr", "localhost:6789", "`address` to listen on")
	metricsAddr := flag.String("metrics", "", "serve Prometheus metrics at http://`addr`/metrics (e.g. 127.0.0.1:9100)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *metricsAddr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr, metricsAddr string) error {
	host, err := netloop.New(addr, netloop.WithChannels(netloop.MaxChannels), netloop.WithTiming())
	if err != nil {
		return err
	}
	// New has bound the socket: clients can connect from now on.
	fmt.Println("listening on", host.Addr())

	g, ctx := errgroup.WithContext(ctx)
	if metricsAddr != "" {
		reg := prometheus.NewRegistry()
		m, err := metrics.New(metrics.WithRegisterer(reg), metrics.WithPeerMetrics())
		if err != nil {
			return err
		}
		m.AddHost("echo", host)
		g.Go(func() error { return metrics.Serve(ctx, metricsAddr, reg) })
	}
	g.Go(func() error { return host.Run(ctx) })
	g.Go(func() error { return echo(ctx, host) })
	return g.Wait()
}

// echo handles the host's events until Run closes the channel.
func echo(ctx context.Context, host *netloop.Host) error {
	for ev := range host.Events() { // every event carries its peer's address
		switch ev.Kind {
		case netloop.EventConnect:
			fmt.Println("Connected:", ev.Addr)
		case netloop.EventReceive:
			fmt.Printf("Got message: %s from %v\n", ev.Payload, ev.Addr)
			err := host.Send(ctx, ev.Peer, ev.Channel, ev.Payload, ev.Flag)
			if err != nil && !errors.Is(err, netloop.ErrClosed) && ctx.Err() == nil {
				// The client has gone: its Disconnect event follows.
				fmt.Fprintf(os.Stderr, "server: echo to %v: %v\n", ev.Addr, err)
			}
		case netloop.EventDisconnect:
			fmt.Printf("Disconnected: %v (%v)\n", ev.Addr, ev.Reason)
		}
	}
	return nil
}

// Command natsd runs an embedded NATS server with JetStream, for the
// cluster integration tests and demos:
//
//	go run ./integration/natsd -addr 127.0.0.1:4222
//
// It prints "listening on nats://<addr>" once it accepts connections and
// runs until SIGINT or SIGTERM. Its JetStream store is a temporary
// directory, removed on exit: a restarted natsd starts with an empty
// directory, as after the loss of a NATS server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "`address` to listen on (port 0: a free one)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string) error {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return err
	}
	if port == 0 {
		port = -1 // nats-server's "any free port"
	}
	dir, err := os.MkdirTemp("", "natsd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: host, Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		return err
	}
	ns.Start()
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("server did not start")
	}
	fmt.Println("listening on", ns.ClientURL())
	<-ctx.Done()
	return nil
}

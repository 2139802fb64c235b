// Package clustertest runs what cluster tests need: a NATS server with
// JetStream, in the test's process, that stops with the test.
package clustertest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartNATS starts a NATS server with JetStream on 127.0.0.1:port (0: a
// free one), storing in the test's temporary directory; it stops with the
// test unless stopped before. It returns the server and its client URL.
func StartNATS(tb testing.TB, port int) (ns *server.Server, url string) {
	tb.Helper()
	if port == 0 {
		port = -1
	}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: tb.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		tb.Fatal("clustertest: NATS server did not start")
	}
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns, ns.ClientURL()
}

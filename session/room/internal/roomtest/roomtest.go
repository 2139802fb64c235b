// Package roomtest holds what the tests of package room and package client
// share.
package roomtest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"github.com/enetkit/enetkit/netloop"
)

// Main runs the package's tests, then fails the run if a goroutine leaked
// or if ENet's C allocations are not back to where they were (every host
// destroyed). Call it from TestMain.
func Main(m *testing.M) { goleak.VerifyTestMain(allocCheck{m}) }

type allocCheck struct{ m *testing.M }

func (a allocCheck) Run() int {
	before := netloop.LiveAllocations()
	code := a.m.Run()
	if after := netloop.LiveAllocations(); code == 0 && after != before {
		fmt.Fprintf(os.Stderr, "ENet allocations: %d live after the tests, %d before\n", after, before)
		return 1
	}
	return code
}

// StartNATS starts a NATS server with JetStream on 127.0.0.1:port (0: a
// free one), for cluster tests; it stops with the test unless stopped
// before.
func StartNATS(t testing.TB, port int) (ns *server.Server, url string) {
	t.Helper()
	if port == 0 {
		port = -1
	}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns, ns.ClientURL()
}

// Eventually polls cond until it holds, failing the test after timeout. It
// is for state with no event to wait on (a replica catching up with the
// cluster's directory).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

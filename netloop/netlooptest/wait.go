package netlooptest

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
)

// Context returns a context that ends when the test does, or after Timeout.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	tb.Cleanup(cancel)
	return ctx
}

// Logger returns a logger that writes to the test at info level:
// per-message debug logs would drown a failure's output. For a fuzz test's
// *testing.F it logs nothing, since servers may outlive each input.
func Logger(tb testing.TB) *zap.Logger {
	if _, fuzz := tb.(*testing.F); fuzz {
		return zap.NewNop()
	}
	return zaptest.NewLogger(tb, zaptest.Level(zapcore.InfoLevel))
}

// Recv returns the next value from ch, failing the test with "no <what>"
// after Timeout.
func Recv[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	t := time.NewTimer(Timeout)
	defer t.Stop()
	select {
	case v := <-ch:
		return v
	case <-t.C:
		tb.Fatalf("netlooptest: no %s within %v", what, Timeout)
		panic("unreachable")
	}
}

// Eventually polls cond every few milliseconds until it holds, failing the
// test after Timeout. It is for state that produces no event to wait on,
// such as counters read with Stats or PeerInfo; where there is an event,
// wait for the event.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(Timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("netlooptest: timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// Package roomtest holds what the tests of package room and package client
// share.
package roomtest

import (
	"fmt"
	"os"
	"testing"

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

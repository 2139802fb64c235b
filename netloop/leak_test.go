package netloop_test

import (
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

// TestLiveAllocations checks that ENet's C allocations return to where they
// were once hosts that exchanged traffic, including messages never read,
// have stopped.
func TestLiveAllocations(t *testing.T) {
	before := netloop.LiveAllocations()
	func() {
		srv, cli, sp, cp := pair(t, 2)
		for i := 0; i < 100; i++ {
			if err := cli.Send(ctx(t), cp, uint8(i%2), make([]byte, 3000), netloop.Reliable); err != nil {
				t.Fatal(err)
			}
			if err := srv.Send(ctx(t), sp, 1, []byte("x"), netloop.Unreliable); err != nil {
				t.Fatal(err)
			}
		}
		expect(t, srv, netloop.EventReceive)
		if netloop.LiveAllocations() <= before {
			t.Fatalf("live allocations %d with two hosts, %d before", netloop.LiveAllocations(), before)
		}
		cli.Close()
		srv.Close()
	}()
	if after := netloop.LiveAllocations(); after != before {
		t.Fatalf("live C allocations: %d before, %d after closing", before, after)
	}
}

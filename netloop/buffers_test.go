package netloop_test

import (
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// TestBuffers runs a connection with small and zero event and command
// buffers, and a long park interval: calls must not wait for the loop's
// park interval to run out, whatever the buffers.
func TestBuffers(t *testing.T) {
	const park = time.Second
	for _, tc := range []struct {
		name string
		opts []netloop.Option
	}{
		{"defaults", nil},
		{"event buffer 0", []netloop.Option{netloop.WithEventBuffer(0)}},
		{"command buffer 1", []netloop.Option{netloop.WithCommandBuffer(1)}},
		{"command buffer 0", []netloop.Option{netloop.WithCommandBuffer(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]netloop.Option{netloop.WithParkInterval(park)}, tc.opts...)
			h, err := netloop.New("", opts...)
			if err != nil {
				// Refusing a buffer size is fine; misbehaving with it is not.
				is(t, err, netloop.ErrRange)
				return
			}
			h.Close()
			srv, cli, sp, cp := pair(t, 1, opts...)
			for range 5 {
				// A round trip is two Sends and two messages on loopback:
				// well under a millisecond, unless a call waits for the
				// loop to come out of ENet on its own after park.
				t0 := time.Now()
				roundTrip(t, cli, srv, cp, sp)
				if d := time.Since(t0); d > park/2 {
					t.Fatalf("a round trip took %v with a park interval of %v: calls wait for the park interval", d, park)
				}
			}
		})
	}
}

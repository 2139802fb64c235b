package netloop_test

import (
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// WithTimeout and WithThrottle configure every connection as it connects,
// incoming and outgoing (where they replace the connect timeout).
func TestHostWideTimeoutAndThrottle(t *testing.T) {
	to := netloop.Timeout{Limit: 8, Minimum: 2 * time.Second, Maximum: 4 * time.Second}
	th := netloop.Throttle{Interval: 2500 * time.Millisecond, Acceleration: 3, Deceleration: 4}
	srv, cli, sp, cp := pair(t, 1, netloop.WithTimeout(to), netloop.WithThrottle(th))
	for _, c := range []struct {
		name string
		h    *netloop.Host
		p    netloop.Peer
	}{{"server", srv, sp}, {"client", cli, cp}} {
		pi := info(t, c.h, c.p)
		if pi.Timeout != to {
			t.Errorf("%s: Timeout %+v, want %+v", c.name, pi.Timeout, to)
		}
		if pi.Throttle != th {
			t.Errorf("%s: Throttle %+v, want %+v", c.name, pi.Throttle, th)
		}
	}
	roundTrip(t, cli, srv, cp, sp)
}

// A zero field of Throttle, like one of Timeout, means ENet's default.
func TestThrottleZeroFieldsAreDefaults(t *testing.T) {
	_, cli, _, cp := pair(t, 1)
	if err := cli.ConfigureThrottle(ctx(t), cp, netloop.Throttle{Interval: time.Second}); err != nil {
		t.Fatal(err)
	}
	want := netloop.Throttle{Interval: time.Second, Acceleration: 2, Deceleration: 2}
	if got := info(t, cli, cp).Throttle; got != want {
		t.Fatalf("Throttle %+v, want %+v", got, want)
	}
	if err := cli.ConfigureThrottle(ctx(t), cp, netloop.Throttle{}); err != nil {
		t.Fatal(err)
	}
	want = netloop.Throttle{Interval: 5 * time.Second, Acceleration: 2, Deceleration: 2}
	if got := info(t, cli, cp).Throttle; got != want {
		t.Fatalf("Throttle %+v, want %+v", got, want)
	}
	// ENet's deceleration of 0 is Steady, and reads back as such.
	if err := cli.ConfigureThrottle(ctx(t), cp, netloop.Throttle{Deceleration: 7, Steady: true}); err != nil {
		t.Fatal(err)
	}
	want = netloop.Throttle{Interval: 5 * time.Second, Acceleration: 2, Steady: true}
	if got := info(t, cli, cp).Throttle; got != want {
		t.Fatalf("Throttle %+v, want %+v", got, want)
	}
}

func TestHostWideDefaultsValidate(t *testing.T) {
	for _, o := range []netloop.Option{
		netloop.WithTimeout(netloop.Timeout{Minimum: 2 * time.Second, Maximum: time.Second}),
		netloop.WithTimeout(netloop.Timeout{Maximum: -time.Second}),
		netloop.WithThrottle(netloop.Throttle{Interval: -time.Second}),
	} {
		h, err := netloop.New("", o)
		if err == nil {
			h.Close()
		}
		is(t, err, netloop.ErrRange)
	}
}

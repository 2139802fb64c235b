package netloop_test

import (
	"net"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// TestWithConnectTimeout: a connection to nothing fails within the connect
// timeout (plus ENet's retransmission granularity), and a connection that
// succeeds is left with ENet's default timeouts.
func TestWithConnectTimeout(t *testing.T) {
	// A port with nothing behind it: bound, so that nothing else takes it,
	// and never read.
	hole, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	cli := start(t, "", netloop.WithConnectTimeout(time.Second))
	begin := time.Now()
	p, err := cli.Connect(ctx(t), hole.LocalAddr().String(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := expect(t, cli, netloop.EventDisconnect)
	if ev.Peer != p || ev.Reason != netloop.ReasonConnectFailed {
		t.Fatalf("got %+v, want ReasonConnectFailed for %v", ev, p)
	}
	// ENet checks at retransmissions, 0.5s doubling: 0.5+1+2 s at most.
	if took := time.Since(begin); took > 4*time.Second {
		t.Fatalf("connect failed after %v, want within about 3.5s", took)
	}

	srv := start(t, "127.0.0.1:0")
	q, err := cli.Connect(ctx(t), srv.Addr().String(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, cli, netloop.EventConnect)
	info, err := cli.PeerInfo(ctx(t), q)
	if err != nil {
		t.Fatal(err)
	}
	if info.Timeout.Maximum != 30*time.Second || info.Timeout.Minimum != 5*time.Second {
		t.Fatalf("timeouts after connecting: %+v, want ENet's defaults", info.Timeout)
	}
}

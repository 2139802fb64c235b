package netloop_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

// TestWithSocketBuffers: the kernel grants the larger buffers, within its
// limit, and Stats reports them.
func TestWithSocketBuffers(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip("no /proc/sys/net/core/rmem_max")
	}
	rmax, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	const want = 1 << 20
	if rmax < want {
		t.Skipf("net.core.rmem_max is %d: the kernel would not grant %d", rmax, want)
	}
	plain := start(t, "127.0.0.1:0")
	big := start(t, "127.0.0.1:0", netloop.WithSocketBuffers(want, 0))
	ps, err := plain.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	bs, err := big.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if bs.SocketReceiveBuffer < want || bs.SocketReceiveBuffer <= ps.SocketReceiveBuffer {
		t.Fatalf("receive buffer %d with WithSocketBuffers(%d), %d without", bs.SocketReceiveBuffer, want, ps.SocketReceiveBuffer)
	}
	if bs.SocketSendBuffer != ps.SocketSendBuffer {
		t.Fatalf("send buffer %d, want the default %d", bs.SocketSendBuffer, ps.SocketSendBuffer)
	}
	if _, err := netloop.New("127.0.0.1:0", netloop.WithSocketBuffers(-1, 0)); err == nil {
		t.Fatal("negative buffer size: no error")
	}
}

// TestQueuedCommands: messages queued faster than ENet's reliable window
// lets them out show in PeerInfo, and drain once acknowledged.
func TestQueuedCommands(t *testing.T) {
	srv, cli, _, cp := pair(t, 1)
	msg := make([]byte, 1000)
	for i := 0; i < 1000; i++ {
		if err := cli.Send(ctx(t), cp, 0, msg, netloop.Reliable); err != nil {
			t.Fatal(err)
		}
	}
	info, err := cli.PeerInfo(ctx(t), cp)
	if err != nil {
		t.Fatal(err)
	}
	if info.QueuedCommands+info.UnackedCommands == 0 {
		t.Fatalf("nothing queued or in flight right after 1000 sends: %+v", info)
	}
	for i := 0; i < 1000; i++ {
		expect(t, srv, netloop.EventReceive)
	}
	eventually(t, "the queue to drain", func() bool {
		info, err := cli.PeerInfo(ctx(t), cp)
		return err == nil && info.QueuedCommands == 0 && info.UnackedCommands == 0
	})
}

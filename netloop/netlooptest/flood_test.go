package netlooptest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/enetkit/enetkit/netloop"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// checkAllocations fails the test if ENet's C allocations are not back to
// where they were once everything the test started has stopped. Call it
// first, so that its cleanup runs last.
func checkAllocations(t *testing.T) {
	before := netloop.LiveAllocations()
	t.Cleanup(func() {
		if after := netloop.LiveAllocations(); after != before {
			t.Errorf("live C allocations: %d before, %d after", before, after)
		}
	})
}

func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// listen returns a plain UDP socket on 127.0.0.1 that closes with the test.
func listen(t *testing.T) *net.UDPConn {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(Timeout))
	return c
}

// TestConnectWireFormat checks the forged CONNECT byte for byte against the
// one libenet itself sends for a client's Connect, with the random fields
// (sent time, outgoing peer ID, connect ID) taken from libenet's.
func TestConnectWireFormat(t *testing.T) {
	checkAllocations(t)
	l := listen(t)
	cli := Start(t, "")
	if _, err := cli.Connect(deadline(t, Timeout), l.LocalAddr().String(), 3, 0xCAFE0042); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, floodReadBuffer)
	n, err := l.Read(got)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:n]
	if n != connectLen {
		t.Fatalf("libenet's CONNECT is %d bytes, want %d: % x", n, connectLen, got)
	}
	be := binary.BigEndian
	want := make([]byte, connectLen)
	putConnect(want, be.Uint16(got[2:]), be.Uint16(got[8:]), 3, be.Uint32(got[44:]), 0xCAFE0042)
	if !bytes.Equal(got, want) {
		t.Fatalf("CONNECT differs from libenet's:\nlibenet % x\nforged  % x", got, want)
	}
}

// TestFloodSources checks what arrives at a plain socket: every datagram a
// CONNECT, from the configured number of distinct loopback sources, each
// source in turn, with distinct connect IDs.
func TestFloodSources(t *testing.T) {
	l := listen(t)
	target := l.LocalAddr().(*net.UDPAddr).AddrPort()
	// Fewer datagrams than the socket buffer holds (about 256 on Linux's
	// defaults, more with SetReadBuffer), so that none is lost whenever
	// the test reads.
	l.SetReadBuffer(1 << 20)
	const count, sources = 200, 100
	first := netip.MustParseAddr("127.9.0.250") // the sequence skips .255 and .0
	run := StartFlood(t, target, FloodConfig{Rate: 10000, Sources: sources, Count: count, FirstSource: first, Channels: 7, Data: 9})
	from := make(map[netip.Addr]int)
	ids := make(map[uint32]bool)
	buf := make([]byte, floodReadBuffer)
	for i := 0; i < count; i++ {
		n, src, err := l.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		b := buf[:n]
		want := make([]byte, connectLen)
		putConnect(want, binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint16(b[8:]), 7, binary.BigEndian.Uint32(b[44:]), 9)
		if !bytes.Equal(b, want) {
			t.Fatalf("datagram %d is not a CONNECT: % x", i, b)
		}
		if id := binary.BigEndian.Uint16(b[8:]); id >= headerPeerNone {
			t.Fatalf("outgoing peer ID %#x", id)
		}
		ids[binary.BigEndian.Uint32(b[44:])] = true
		a := src.Addr().As4()
		if a[0] != 127 || a[3] == 0 || a[3] == 255 {
			t.Fatalf("source %v", src)
		}
		from[src.Addr()]++
	}
	if st := run.Stop(); st.Sent != count || st.SendErrors != 0 {
		t.Fatalf("sent %d (%d errors), want %d", st.Sent, st.SendErrors, count)
	}
	if len(from) != sources {
		t.Fatalf("%d distinct sources, want %d", len(from), sources)
	}
	for a, n := range from {
		if n != count/sources {
			t.Fatalf("%d CONNECTs from %v, want %d", n, a, count/sources)
		}
	}
	for _, a := range []string{"127.9.0.250", "127.9.0.254", "127.9.1.1", "127.9.1.95"} { // 5 + 95 sources
		if from[netip.MustParseAddr(a)] == 0 {
			t.Errorf("nothing from %s", a)
		}
	}
	if n := from[netip.MustParseAddr("127.9.1.96")]; n != 0 {
		t.Errorf("%d CONNECTs from 127.9.1.96, the 101st source", n)
	}
	if len(ids) < count-2 { // 32-bit random IDs: a collision is rare, two is not plausible
		t.Fatalf("%d distinct connect IDs in %d CONNECTs", len(ids), count)
	}
}

// TestFloodTakesSlots floods a netloop host with a few CONNECTs, from many
// sources and from one: libenet gives each a slot and answers it with
// VERIFY_CONNECT, and the host's intercept finds nothing malformed.
func TestFloodTakesSlots(t *testing.T) {
	for _, tc := range []struct {
		name           string
		sources, count int
	}{
		{"many sources", 16, 16},
		{"one source", 1, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkAllocations(t)
			srv := Start(t, "127.0.0.1:0", netloop.WithPeers(32))
			run := StartFlood(t, srv.Addr(), FloodConfig{Sources: tc.sources, Count: tc.count, Rate: 5000})
			if err := run.WaitSlots(deadline(t, Timeout), tc.count); err != nil {
				t.Fatal(err)
			}
			st := run.Stop()
			if st.Sent != uint64(tc.count) || st.SendErrors != 0 || st.Slots != tc.count || st.VerifyConnects < uint64(tc.count) {
				t.Fatalf("stats %+v, want %d sent and slots", st, tc.count)
			}
			hs, err := srv.Stats(deadline(t, Timeout))
			if err != nil {
				t.Fatal(err)
			}
			if hs.Malformed != 0 || hs.Connects != 0 {
				t.Fatalf("host saw %d malformed datagrams and %d connects, want none", hs.Malformed, hs.Connects)
			}
		})
	}
}

func TestFloodConfigErrors(t *testing.T) {
	target := netip.MustParseAddrPort("127.0.0.1:9")
	for _, tc := range []struct {
		name   string
		target netip.AddrPort
		cfg    FloodConfig
	}{
		{"not loopback", netip.MustParseAddrPort("192.0.2.1:9"), FloodConfig{}},
		{"no port", netip.MustParseAddrPort("127.0.0.1:0"), FloodConfig{}},
		{"ipv6", netip.MustParseAddrPort("[::1]:9"), FloodConfig{}},
		{"negative rate", target, FloodConfig{Rate: -1}},
		{"rate too high", target, FloodConfig{Rate: MaxFloodRate + 1}},
		{"too many sources", target, FloodConfig{Sources: MaxFloodSources + 1}},
		{"negative duration", target, FloodConfig{Duration: -time.Second}},
		{"negative count", target, FloodConfig{Count: -1}},
		{"source not loopback", target, FloodConfig{FirstSource: netip.MustParseAddr("10.0.0.1")}},
		{"source ends in .0", target, FloodConfig{FirstSource: netip.MustParseAddr("127.1.2.0")}},
		{"sources leave 127/8", target, FloodConfig{FirstSource: netip.MustParseAddr("127.255.255.1"), Sources: 300}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Flood(context.Background(), tc.target, tc.cfg); !errors.Is(err, ErrFloodConfig) {
				t.Fatalf("err %v, want ErrFloodConfig", err)
			}
		})
	}
}

// TestFloodStopsAtDuration checks that a flood ends by itself and a
// cancelled one at once, without error.
func TestFloodStopsAtDuration(t *testing.T) {
	l := listen(t)
	target := l.LocalAddr().(*net.UDPAddr).AddrPort()
	st, err := Flood(deadline(t, Timeout), target, FloodConfig{Rate: 1000, Duration: 50 * time.Millisecond})
	if err != nil || st.Sent == 0 || st.Elapsed < 50*time.Millisecond {
		t.Fatalf("Flood: %+v, %v", st, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if st, err := Flood(ctx, target, FloodConfig{}); err != nil || st.Sent != 0 {
		t.Fatalf("cancelled Flood: %+v, %v", st, err)
	}
}

func TestConnectTime(t *testing.T) {
	checkAllocations(t)
	srv := Start(t, "127.0.0.1:0")
	d, err := ConnectTime(deadline(t, Timeout), srv.Addr().String())
	if err != nil || d <= 0 {
		t.Fatalf("ConnectTime: %v, %v", d, err)
	}
	Expect(t, srv, netloop.EventConnect)

	// Nothing listens on l: the connection fails by the host's timeout,
	// or by the context's.
	l := listen(t)
	if _, err := ConnectTime(deadline(t, Timeout), l.LocalAddr().String(), netloop.WithConnectTimeout(100*time.Millisecond)); !errors.Is(err, ErrConnectFailed) {
		t.Fatalf("ConnectTime to a silent address: %v, want ErrConnectFailed", err)
	}
	if _, err := ConnectTime(deadline(t, 100*time.Millisecond), l.LocalAddr().String()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ConnectTime past its deadline: %v, want DeadlineExceeded", err)
	}
}

// TestFloodDefended floods a 64-slot host with 2,000 forged CONNECTs a
// second from 1,000 sources: real clients still connect, during the flood
// and after it, and the host says what it did.
func TestFloodDefended(t *testing.T) {
	checkAllocations(t)
	srv := Start(t, "127.0.0.1:0", netloop.WithPeers(64))
	run := StartFlood(t, srv.Addr(), FloodConfig{Rate: 2000, Sources: 1000, Duration: 10 * time.Second})
	// The flood holds every slot it can; real clients still get in.
	run.WaitSlots(deadline(t, time.Second), 64)
	for i := range 3 {
		// Each try once the flood has sent another 2,000 CONNECTs.
		flooding := deadline(t, 5*time.Second)
		for tick := time.NewTicker(10 * time.Millisecond); run.Stats().Sent < uint64(2000*(i+1)); <-tick.C {
			if flooding.Err() != nil || run.Stats().Elapsed > 0 {
				t.Fatalf("the flood stopped early: %+v", run.Stats())
			}
		}
		d, err := ConnectTime(deadline(t, 5*time.Second), srv.Addr().String(), netloop.WithConnectTimeout(5*time.Second))
		if err != nil {
			t.Fatalf("real client %d during the flood: %v (flood %+v)", i, err, run.Stats())
		}
		t.Logf("real client %d connected in %v during the flood", i, d)
	}
	st := run.Stop()
	d, err := ConnectTime(deadline(t, 5*time.Second), srv.Addr().String(), netloop.WithConnectTimeout(5*time.Second))
	if err != nil {
		t.Fatalf("real client after the flood: %v", err)
	}
	// The client is connected once the server's VERIFY_CONNECT reaches it;
	// the server counts the connection when the client's acknowledgement
	// of it arrives, a moment later.
	var s netloop.Stats
	waiting := deadline(t, 5*time.Second)
	for tick := time.NewTicker(time.Millisecond); ; <-tick.C {
		if s, err = srv.Stats(waiting); err != nil || s.Connects >= 4 {
			tick.Stop()
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.HalfOpenEvicted == 0 || s.Connects != 4 {
		t.Fatalf("host stats %+v: want half-open slots evicted and 4 real connections", s)
	}
	t.Logf("after the flood: connected in %v; flood: %d CONNECTs (%.0f/s), %d slots; host: %d half-open, %d evicted",
		d, st.Sent, st.Rate(), st.Slots, s.HalfOpen, s.HalfOpenEvicted)
}

// exampleServer runs a netloop host on loopback, its events drained,
// until stop is called.
func exampleServer(opts ...netloop.Option) (srv *netloop.Host, stop func()) {
	srv, err := netloop.New("127.0.0.1:0", opts...)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	go func() {
		for range srv.Events() { // closed when Run returns
		}
	}()
	return srv, func() { cancel(); <-done }
}

func ExampleFlood() {
	srv, stop := exampleServer(netloop.WithPeers(16))
	defer stop()

	// 10 forged CONNECTs from 10 loopback addresses, at 1,000 a second;
	// the server's answers are read until 300ms have passed.
	st, err := Flood(context.Background(), srv.Addr(), FloodConfig{Rate: 1000, Sources: 10, Count: 10, Duration: 300 * time.Millisecond})
	fmt.Println(st.Sent, st.SendErrors, st.Slots, err)
	// Output: 10 0 10 <nil>
}

func ExampleConnectTime() {
	srv, stop := exampleServer()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := ConnectTime(ctx, srv.Addr().String(), netloop.WithConnectTimeout(5*time.Second))
	fmt.Println(d < 5*time.Second, err)
	// Output: true <nil>
}

package integration

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
)

// ENet 1.3 wire format (enet/protocol.h), to forge datagrams.
const (
	wireMaxPeerID      = 0xFFF   // ENET_PROTOCOL_MAXIMUM_PEER_ID: "no peer yet"
	wireSentTime       = 1 << 15 // ENET_PROTOCOL_HEADER_FLAG_SENT_TIME
	wireCompressed     = 1 << 14 // ENET_PROTOCOL_HEADER_FLAG_COMPRESSED
	wireAck            = 0x80    // ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE
	wireCmdAck         = 1
	wireCmdConnect     = 2
	wireCmdVerify      = 3
	wireCmdReliable    = 6
	wireConnectSize    = 48 // sizeof(ENetProtocolConnect)
	wireVerifySize     = 44 // sizeof(ENetProtocolVerifyConnect)
	wireAckSize        = 8  // sizeof(ENetProtocolAcknowledge)
	wireMaxMTU         = 4096
	oversizeFailsUntil = 17 // libenet 1.3.<=17 fails a service call per datagram over 4096 bytes
)

// wireConnect is an ENet CONNECT command in a datagram of its own, as
// enet_host_connect sends it: the server answers with VERIFY_CONNECT and
// keeps a half-open peer until it times out.
func wireConnect(connectID uint32, outgoingPeerID uint16, channels uint32) []byte {
	b := make([]byte, 0, 4+wireConnectSize)
	b = binary.BigEndian.AppendUint16(b, wireMaxPeerID|wireSentTime)
	b = binary.BigEndian.AppendUint16(b, uint16(connectID)) // sent time
	b = append(b, wireCmdConnect|wireAck, 0xFF)             // command, channel
	b = binary.BigEndian.AppendUint16(b, 1)                 // reliable sequence number
	b = binary.BigEndian.AppendUint16(b, outgoingPeerID)
	b = append(b, 0xFF, 0xFF) // incoming, outgoing session ID: the server picks
	for _, v := range []uint32{
		1400,     // mtu
		65536,    // window size
		channels, // channel count
		0, 0,     // incoming, outgoing bandwidth
		5000, 2, 2, // throttle interval, acceleration, deceleration
		connectID,
		0, // data
	} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// wireForged is a datagram that claims to come from the peer in slot idx:
// a reliable message on channel 0.
func wireForged(idx int, session uint16, seq uint16, payload []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(idx)|session<<12|wireSentTime)
	b = binary.BigEndian.AppendUint16(b, 4321)
	b = append(b, wireCmdReliable|wireAck, 0)
	b = binary.BigEndian.AppendUint16(b, seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	return append(b, payload...)
}

// hasVerifyConnect reports whether d, a datagram from an ENet host, carries
// a VERIFY_CONNECT command (possibly after an acknowledgement).
func hasVerifyConnect(d []byte) bool {
	if len(d) < 2 {
		return false
	}
	off := 2
	if binary.BigEndian.Uint16(d)&wireSentTime != 0 {
		off = 4
	}
	for off+4 <= len(d) {
		switch d[off] & 0x0F {
		case wireCmdVerify:
			return true
		case wireCmdAck:
			off += wireAckSize
		default:
			return false
		}
	}
	return false
}

// surelyMalformed reports whether the server's intercept counts d as
// malformed whatever its state (given that no peer slot has the sender's
// address): too short for its header, or uncompressed and addressed to a
// slot that is not the sender's. Other junk may be counted too.
func surelyMalformed(d []byte) bool {
	if len(d) < 2 {
		return true
	}
	w := binary.BigEndian.Uint16(d)
	if w&wireSentTime != 0 && len(d) < 4 {
		return true
	}
	if w&wireCompressed != 0 {
		return false // ENet cannot decompress it; the scan cannot look inside
	}
	return w&0x0FFF != wireMaxPeerID
}

// udpDrops returns how many datagrams the kernel dropped for the UDP socket
// bound to addr (a full receive buffer), from /proc/net/udp.
func udpDrops(addr netip.AddrPort) (uint64, bool) {
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	b := addr.Addr().As4() // /proc shows the address as a little-endian word
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", b[3], b[2], b[1], b[0], addr.Port())
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 13 && fields[1] == local {
			n, err := strconv.ParseUint(fields[len(fields)-1], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// TestHostileInput floods a server's port from raw UDP sockets with random
// junk, truncated headers, forged peer IDs, a connect flood that fills
// every free peer slot with half-open connections, and datagrams over
// ENet's 4096-byte limit, while four connected peers play ping-pong with
// it. Every ping is answered, in order; the junk is counted; memory, ENet's
// C allocations and goroutines stay bounded during the flood and return to
// their baseline once the hosts have stopped.
func TestHostileInput(t *testing.T) {
	const (
		slots       = 64
		players     = 4
		junk        = 20000
		truncated   = 1000
		forgedEach  = 16
		connectSrcs = 100
		connectsPer = 5
		oversized   = 50
		sockets     = 8
		window      = 32 // datagrams in flight: a fraction of a socket buffer
	)
	start := time.Now()
	base := measure()
	counts := newTally()
	errs := &errorLimit{t: t, tally: counts}

	// The server answers each ping with the same message; pings from each
	// peer must come in order, and nothing else may arrive.
	next := make(map[netloop.Peer]uint32)
	srv := startNode(t, "127.0.0.1:0", func(h *netloop.Host, ev netloop.Event) {
		switch ev.Kind {
		case netloop.EventConnect:
			counts.add("server.connect", 1)
		case netloop.EventReceive:
			tag, seq, ok := parseNumbered(ev.Payload)
			if !ok || tag >= players || seq != next[ev.Peer] {
				errs.Errorf("server: %v sent %q (tag %d, seq %d, want %d): not a ping in order", ev.Peer, ev.Payload, tag, seq, next[ev.Peer])
				return
			}
			next[ev.Peer]++
			if err := h.Send(context.Background(), ev.Peer, ev.Channel, ev.Payload, netloop.Reliable); err != nil {
				errs.Errorf("server: pong to %v: %v", ev.Peer, err)
			}
		case netloop.EventDisconnect:
			counts.add("server.disconnect", 1)
		}
	}, netloop.WithPeers(slots), netloop.WithChannels(2))
	srvAddr := net.UDPAddrFromAddrPort(srv.Addr())

	pongs := make([]chan uint32, players)
	for i := range pongs {
		pongs[i] = make(chan uint32, 1)
	}
	cli := startNode(t, "", func(h *netloop.Host, ev netloop.Event) {
		switch ev.Kind {
		case netloop.EventConnect:
			counts.add("client.connect", 1)
		case netloop.EventReceive:
			tag, seq, ok := parseNumbered(ev.Payload)
			if !ok || tag >= players {
				errs.Errorf("client: bad pong %q", ev.Payload)
				return
			}
			select {
			case pongs[tag] <- seq:
			default:
				errs.Errorf("client: unexpected pong %d for player %d", seq, tag)
			}
		case netloop.EventDisconnect:
			counts.add("client.disconnect", 1)
		}
	}, netloop.WithPeers(players), netloop.WithChannels(2))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	peers := make([]netloop.Peer, players)
	for i := range peers {
		p, err := cli.Connect(ctx, hostAddr(srv.Host), 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		peers[i] = p
	}
	counts.await(t, "client.connect", players, stepWait)
	counts.await(t, "server.connect", players, stepWait)

	// Ping-pong: each player sends a ping every 2ms or so and waits for its
	// pong, at most stepWait.
	stopPlay := make(chan struct{})
	var play sync.WaitGroup
	for i, p := range peers {
		play.Go(func() {
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for seq := uint32(0); ; seq++ {
				select {
				case <-stopPlay:
					return
				case <-tick.C:
				}
				if err := cli.Send(ctx, p, uint8(seq%2), numbered(byte(i), seq, 32+int(seq%200)), netloop.Reliable); err != nil {
					errs.Errorf("player %d: ping %d: %v", i, seq, err)
					return
				}
				select {
				case got := <-pongs[i]:
					if got != seq {
						errs.Errorf("player %d: pong %d, want %d", i, got, seq)
						return
					}
					counts.add(fmt.Sprint("rounds", i), 1)
				case <-time.After(stepWait):
					errs.Errorf("player %d: no pong for ping %d within %v", i, seq, stepWait)
					return
				case <-stopPlay:
					return
				}
			}
		})
	}
	stopPlaying := sync.OnceFunc(func() {
		close(stopPlay)
		play.Wait()
	})
	defer stopPlaying()
	rounds := func() []int {
		r := make([]int, players)
		for i := range r {
			r[i] = counts.get(fmt.Sprint("rounds", i))
		}
		return r
	}
	// Each player must go on playing: wait for more rounds from each.
	keepPlaying := func(phase string, more int) {
		t.Helper()
		from := rounds()
		counts.awaitFunc(t, fmt.Sprintf("every player to play %d more rounds after %s", more, phase), stepWait, func(n map[string]int) bool {
			for i := range players {
				if n[fmt.Sprint("rounds", i)] < from[i]+more {
					return false
				}
			}
			return true
		})
	}
	keepPlaying("connecting", 10)
	setup := measure()
	peak := setup
	check := func(phase string) {
		t.Helper()
		now := measure()
		peak.goroutines = max(peak.goroutines, now.goroutines)
		peak.heap = max(peak.heap, now.heap)
		peak.live = max(peak.live, now.live)
		if now.goroutines > setup.goroutines+2 {
			t.Errorf("after %s: %d goroutines, %d before the flood", phase, now.goroutines, setup.goroutines)
		}
		if now.heap > setup.heap+64<<20 {
			t.Errorf("after %s: heap %.1f MiB, %.1f MiB before the flood", phase, float64(now.heap)/(1<<20), float64(setup.heap)/(1<<20))
		}
		if now.live > setup.live+20000 {
			t.Errorf("after %s: %d live C allocations, %d before the flood", phase, now.live, setup.live)
		}
	}

	conns := make([]*net.UDPConn, sockets)
	for i := range conns {
		c, err := net.DialUDP("udp4", nil, srvAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	s0 := hostStats(t, srv.Host)
	drops0, haveDrops := udpDrops(srv.Addr())

	// flood sends each datagram from the sockets in turn, keeping at most
	// window of them unread by the server (they count in ReceivedDatagrams
	// as soon as ENet reads them), so that the flood measures the host,
	// not the socket buffer.
	sentTotal := 0
	flood := func(conns []*net.UDPConn, datagrams func(i int) []byte, n int) {
		t.Helper()
		for i := range n {
			if _, err := conns[i%len(conns)].Write(datagrams(i)); err != nil {
				t.Fatalf("raw write: %v", err)
			}
			sentTotal++
			if sentTotal%(window/2) == 0 {
				poll(t, "the server to read the flood", stepWait, func() bool {
					s := hostStats(t, srv.Host)
					return int(s.ReceivedDatagrams-s.Wakes-(s0.ReceivedDatagrams-s0.Wakes)) >= sentTotal-window
				})
			}
		}
	}
	// malformed checks that the intercept counted at least want more
	// datagrams as malformed since s, less those the kernel dropped.
	malformed := func(phase string, s netloop.Stats, want int) netloop.Stats {
		t.Helper()
		var dropped uint64
		if haveDrops {
			d, _ := udpDrops(srv.Addr())
			dropped = d - drops0
		}
		atLeast := uint64(want) - min(uint64(want), dropped)
		var now netloop.Stats
		poll(t, fmt.Sprintf("%s: Malformed to grow by %d", phase, atLeast), stepWait, func() bool {
			now = hostStats(t, srv.Host)
			return now.Malformed-s.Malformed >= atLeast
		})
		t.Logf("%s: Malformed +%d (at least %d expected), kernel drops so far %d, %v", phase, now.Malformed-s.Malformed, want, dropped, time.Since(start).Round(time.Millisecond))
		return now
	}

	// (a) Random datagrams of random sizes.
	rng := rand.New(rand.NewPCG(1, 2))
	sure := 0
	flood(conns, func(int) []byte {
		d := make([]byte, 1+rng.IntN(1400))
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		if surelyMalformed(d) {
			sure++
		}
		return d
	}, junk)
	s := malformed("random junk", s0, sure)
	keepPlaying("random junk", 10)
	check("random junk")

	// (b) Truncated headers and commands.
	shapes := [][]byte{
		{0x00},                      // half a peer ID
		{0x80, 0x00},                // sent-time flag, no sent time
		{0x8F, 0xFF, 0x12},          // sent-time flag, half a sent time
		{0x8F, 0xFF, 0x12, 0x34, 6}, // a command header cut short
		{0x8F, 0xFF, 0x12, 0x34, wireCmdReliable, 0, 0, 1, 0x05, 0xDC, 'x'}, // claims 1500 bytes
		{0x0F, 0xFF, wireCmdConnect, 0xFF, 0, 1, 0, 0},                      // a connect cut short
	}
	flood(conns, func(i int) []byte { return shapes[i%len(shapes)] }, truncated)
	s = malformed("truncated headers", s, truncated)
	keepPlaying("truncated headers", 10)
	check("truncated headers")

	// (c) Forged peer IDs: every slot, as if from its peer, with a reliable
	// message that must never be delivered.
	forged := []byte("forged: must not arrive")
	flood(conns, func(i int) []byte {
		return wireForged(i%slots, uint16(i/slots%4), uint16(1+i/slots), forged)
	}, slots*forgedEach)
	s = malformed("forged peer IDs", s, slots*forgedEach)
	keepPlaying("forged peer IDs", 10)
	check("forged peer IDs")

	// (d) A connect flood from many source ports: the free slots fill with
	// half-open connections, which raise no event.
	srcs := make([]*net.UDPConn, connectSrcs)
	for i := range srcs {
		c, err := net.DialUDP("udp4", nil, srvAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		srcs[i] = c
	}
	flood(srcs, func(i int) []byte {
		return wireConnect(uint32(0x10000+i), uint16(i/connectSrcs), 255)
	}, connectSrcs*connectsPer)
	// The server answers the first source: the forged connect is valid.
	buf := make([]byte, wireMaxMTU)
	srcs[0].SetReadDeadline(time.Now().Add(stepWait))
	n, err := srcs[0].Read(buf)
	if err != nil || !hasVerifyConnect(buf[:n]) {
		t.Fatalf("no VERIFY_CONNECT for a forged connect: %v, % x", err, buf[:n])
	}
	keepPlaying("connect flood", 10)
	check("connect flood")
	// With every slot taken by a half-open connection, a real client still
	// connects: its CONNECT takes the oldest half-open slot.
	late := make(chan netloop.Event, 4)
	lateCli := startNode(t, "", forward(t, late), netloop.WithPeers(1))
	lateStart := time.Now()
	lp, err := lateCli.Connect(ctx, hostAddr(srv.Host), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, late, stepWait, "a connect to a server full of half-open slots"); ev.Kind != netloop.EventConnect || ev.Peer != lp {
		t.Errorf("connect to a server full of half-open peers: %v event (%v), want it to connect", ev.Kind, ev.Reason)
	}
	if s := hostStats(t, srv.Host); s.HalfOpenEvicted == 0 {
		t.Errorf("HalfOpenEvicted 0 after a connect to a server full of half-open slots")
	}
	t.Logf("connect flood: %d connects from %d ports; a real client then connected in %v",
		connectSrcs*connectsPer, connectSrcs, time.Since(lateStart).Round(time.Millisecond))
	if err := lateCli.stop(); err != nil {
		t.Error(err)
	}

	// (e) Datagrams over 4096 bytes: libenet 1.3.17 fails a service call
	// for each; the host counts it and goes on. One at a time: each takes
	// much of a socket buffer.
	s = hostStats(t, srv.Host)
	oversizeFails := false
	if v := strings.Split(netloop.LinkedVersion(), "."); len(v) == 3 && v[0] == "1" && v[1] == "3" {
		patch, _ := strconv.Atoi(v[2])
		oversizeFails = patch <= oversizeFailsUntil
	}
	for i := range oversized {
		size := wireMaxMTU + 1 + rng.IntN(60000)
		if _, err := conns[i%len(conns)].Write(make([]byte, size)); err != nil {
			t.Fatalf("write %d bytes: %v", size, err)
		}
		if oversizeFails {
			poll(t, "the oversized datagram to fail a service call", stepWait, func() bool {
				return hostStats(t, srv.Host).ServiceErrors-s.ServiceErrors >= uint64(i+1)
			})
		}
	}
	keepPlaying("oversized datagrams", 10)
	check("oversized datagrams")
	end := hostStats(t, srv.Host)
	if oversizeFails && end.ServiceErrors-s.ServiceErrors != oversized {
		t.Errorf("ServiceErrors grew by %d for %d oversized datagrams", end.ServiceErrors-s.ServiceErrors, oversized)
	}

	// The players were never disturbed (the late client came and went).
	if end.Connects != players+1 || end.ConnectedPeers != players || end.Disconnects != 1 {
		t.Errorf("server: %d connects, %d connected, %d disconnects after the flood; want %d, %d, 1", end.Connects, end.ConnectedPeers, end.Disconnects, players+1, players)
	}
	stopPlaying()
	r := rounds()
	t.Logf("flood of %d datagrams took %v; the players played %v rounds; server: Malformed +%d, ServiceErrors +%d, datagrams read %d",
		sentTotal+oversized, time.Since(start).Round(time.Millisecond), r, end.Malformed-s0.Malformed, end.ServiceErrors-s0.ServiceErrors, end.ReceivedDatagrams-s0.ReceivedDatagrams)
	t.Logf("before: %v; hosts up: %v; peak during the flood: %v", base, setup, peak)

	if err := cli.stop(); err != nil {
		t.Error(err)
	}
	if err := srv.stop(); err != nil {
		t.Error(err)
	}
	after := expectBaseline(t, base, 8<<20)
	t.Logf("after the hosts stopped: %v", after)
	if n := errs.count(); n > 0 {
		t.Errorf("%d errors", n)
	}
}

// rawPeer is an ENet client spoken by hand over a UDP socket: enough of the
// protocol to connect, then to send forged commands from the connection's
// own address.
type rawPeer struct {
	conn    *net.UDPConn
	slot    uint16 // the server's peer slot for this connection
	session uint16 // the session ID the server expects in headers
}

// dialRaw connects to the server at addr as ENet's enet_host_connect
// would: CONNECT, then an acknowledgement of the server's VERIFY_CONNECT.
func dialRaw(t *testing.T, addr netip.AddrPort) *rawPeer {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(wireConnect(0xC0FFEE, 0, 1)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, wireMaxMTU)
	c.SetReadDeadline(time.Now().Add(stepWait))
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no VERIFY_CONNECT: %v", err)
		}
		d := buf[:n]
		if n < 4 || binary.BigEndian.Uint16(d)&wireSentTime == 0 {
			continue
		}
		sent := binary.BigEndian.Uint16(d[2:])
		for off := 4; off+4 <= n; {
			switch d[off] & 0x0F {
			case wireCmdAck:
				off += wireAckSize
				continue
			case wireCmdVerify:
				if off+wireVerifySize > n {
					t.Fatalf("short VERIFY_CONNECT: % x", d)
				}
				v := d[off:]
				p := &rawPeer{conn: c, slot: binary.BigEndian.Uint16(v[4:]), session: uint16(v[7])}
				// Acknowledge it: command, channel, then the acknowledged
				// sequence number and sent time.
				ack := binary.BigEndian.AppendUint16(nil, p.slot|p.session<<12)
				ack = append(ack, wireCmdAck, v[1])
				ack = append(ack, v[2], v[3]) // reliable sequence number
				ack = append(ack, v[2], v[3]) // received reliable sequence number
				ack = binary.BigEndian.AppendUint16(ack, sent)
				if _, err := c.Write(ack); err != nil {
					t.Fatal(err)
				}
				return p
			}
			break
		}
	}
}

// send sends one command from the connection's address, with the given
// session ID in the header.
func (p *rawPeer) send(t *testing.T, session uint16, command []byte) {
	t.Helper()
	d := binary.BigEndian.AppendUint16(nil, p.slot|session<<12|wireSentTime)
	d = binary.BigEndian.AppendUint16(d, 999)
	if _, err := p.conn.Write(append(d, command...)); err != nil {
		t.Fatal(err)
	}
}

// TestForgedDisconnectReason connects an ENet client spoken by hand, then
// lets it fall silent: the server reports a timeout. In the Forged case,
// a DISCONNECT command arrives first from the client's own address but with
// another session ID, as a retransmission from an earlier connection of
// that address would (after the server's acknowledgement of it was lost).
// ENet rightly ignores that datagram; the connection still ends by timeout
// and must be reported so.
func TestForgedDisconnectReason(t *testing.T) {
	for _, forged := range []bool{false, true} {
		t.Run(map[bool]string{false: "Silent", true: "Forged"}[forged], func(t *testing.T) {
			evs := make(chan netloop.Event, 16)
			srv := startNode(t, "127.0.0.1:0", forward(t, evs))
			raw := dialRaw(t, srv.Addr())
			ev := nextEvent(t, evs, stepWait, "the raw client's connect")
			if ev.Kind != netloop.EventConnect || ev.Peer.Index() != int(raw.slot) {
				t.Fatalf("%v event of %v, want the connect of slot %d", ev.Kind, ev.Peer, raw.slot)
			}
			ctx, cancel := context.WithTimeout(context.Background(), stepWait)
			defer cancel()
			if err := srv.SetTimeout(ctx, ev.Peer, shortTimeout); err != nil {
				t.Fatal(err)
			}
			if forged {
				disconnect := []byte{4 | wireAck, 0xFF, 0, 1, 0, 0, 0, 0x77} // DISCONNECT, data 0x77
				raw.send(t, (raw.session+1)&3, disconnect)
			}
			end := nextEvent(t, evs, shortTimeout.Maximum+enetPingInterval+timeoutSlack, "the server's timeout")
			if end.Kind != netloop.EventDisconnect || end.Peer != ev.Peer || end.Reason != netloop.ReasonTimeout {
				t.Errorf("%v event (%v, data %#x) of %v, want a timeout of %v", end.Kind, end.Reason, end.Data, end.Peer, ev.Peer)
			}
			t.Logf("raw client in slot %d, session %d: %v after it fell silent", raw.slot, raw.session, end.Reason)
		})
	}
}

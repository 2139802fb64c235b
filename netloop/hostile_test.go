package netloop_test

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

// ENet protocol constants used to forge datagrams (enet/protocol.h).
const (
	cmdDisconnect    = 4
	cmdSendReliable  = 6
	cmdFlagAck       = 0x80
	headerSentTime   = 1 << 15
	oversizeFailsMax = 17 // libenet 1.3.<=17 fails service on datagrams over 4096 bytes
)

// forged returns a datagram addressed to the server's peer slot idx, as if
// from that peer, carrying one command.
func forged(idx int, command byte, body []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint16(idx)|headerSentTime)
	binary.Write(&b, binary.BigEndian, uint16(1234)) // sent time
	b.WriteByte(command | cmdFlagAck)
	b.WriteByte(0)                                // channel
	binary.Write(&b, binary.BigEndian, uint16(1)) // reliable sequence number
	b.Write(body)
	return b.Bytes()
}

// TestHostileDatagrams sends junk to a server's port from a raw UDP socket
// while a client exchanges messages with it: every message arrives, the
// connection survives, and the junk is counted.
func TestHostileDatagrams(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	raw, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	s0 := stats(t, srv)

	evil := []byte("evil")
	special := map[int][][]byte{
		10: {{0x00}, {0x00, 0x00}}, // truncated headers; the second names slot 0
		20: {
			forged(sp.Index(), cmdDisconnect, []byte{0, 0, 0, 9}),
			forged(sp.Index(), cmdSendReliable, append([]byte{0, byte(len(evil))}, evil...)),
		},
		50:  {make([]byte, 5000)},
		100: {bytes.Repeat([]byte{0xff}, 60000)},
	}
	rng := rand.New(rand.NewSource(1))
	const rounds, junkPerRound = 200, 5
	for i := range rounds {
		for _, d := range special[i] {
			if _, err := raw.Write(d); err != nil {
				t.Fatalf("write %d bytes: %v", len(d), err)
			}
		}
		for range junkPerRound {
			d := make([]byte, 1+rng.Intn(1400))
			rng.Read(d)
			if _, err := raw.Write(d); err != nil {
				t.Fatalf("write junk: %v", err)
			}
		}
		m := seqMsg(0, uint32(i), 64)
		send(t, cli, cp, 0, m, netloop.Reliable)
		ev := receive(t, srv, sp)
		if !bytes.Equal(ev.Payload, m) {
			t.Fatalf("round %d: server got %q", i, ev.Payload)
		}
		send(t, srv, sp, 0, ev.Payload, netloop.Reliable)
		if ev := receive(t, cli, cp); !bytes.Equal(ev.Payload, m) {
			t.Fatalf("round %d: client got %q", i, ev.Payload)
		}
	}

	oversizeFails := false
	if v := strings.Split(netloop.LinkedVersion(), "."); len(v) == 3 && v[0] == "1" && v[1] == "3" {
		patch, _ := strconv.Atoi(v[2])
		oversizeFails = patch <= oversizeFailsMax
	}
	if oversizeFails {
		eventually(t, "the oversized datagrams to fail service", func() bool {
			return stats(t, srv).ServiceErrors-s0.ServiceErrors >= 2
		})
	}
	s1 := stats(t, srv)
	// About half the junk has ENet's COMPRESSED bit set, which the scan
	// cannot look into; the rest is malformed, as are the truncated and
	// forged datagrams.
	if d := s1.Malformed - s0.Malformed; d < 300 {
		t.Errorf("Malformed grew by %d, want at least 300", d)
	}
	if s1.ConnectedPeers != 1 || s1.Disconnects != 0 || s1.Connects != 1 {
		t.Errorf("server connections %d, connects %d, disconnects %d after junk; want 1 1 0", s1.ConnectedPeers, s1.Connects, s1.Disconnects)
	}
	if s1.Receives-s0.Receives != rounds {
		t.Errorf("server received %d messages, want %d (nothing forged)", s1.Receives-s0.Receives, rounds)
	}
	if pi := info(t, srv, sp); pi.State != netloop.StateConnected {
		t.Errorf("state %v after junk", pi.State)
	}
	roundTrip(t, cli, srv, cp, sp)
	t.Logf("libenet %s: malformed %d, service errors %d", netloop.LinkedVersion(), s1.Malformed-s0.Malformed, s1.ServiceErrors-s0.ServiceErrors)
}

// Package refserver is the no-framework baseline for the benchmarks: an ENet
// echo server written the way a competent user writes one with plain go-enet.
// One goroutine services one host; each received packet is copied out,
// destroyed, and sent back to its sender on the same channel with the same
// flags. It also implements the broadcast protocol of package load.
//
// # Usage
//
//	enet.Initialize() // once per process, from main
//	defer enet.Deinitialize()
//	s, err := refserver.Listen("127.0.0.1:6789", 4095, false)
//	if err != nil { ... }
//	err = s.Run(ctx) // until ctx is done
package refserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/codecat/go-enet"
	"github.com/enetkit/enetkit/examples/bench/load"
)

// MaxPeers is the largest peer count ENet supports.
const MaxPeers = 4095

// maxChannels is the channel limit of the host: ENet's maximum, so clients
// may use any channel.
const maxChannels = 255

// ErrClosed is returned by Run when the server has already run.
var ErrClosed = errors.New("refserver: closed")

// Server is an ENet echo server. Its host belongs to the goroutine that calls
// Run; no method but Port may be called concurrently with Run.
type Server struct {
	host  enet.Host
	port  uint16
	poll  bool
	peers map[enet.Peer]struct{} // connected peers, to disconnect on shutdown

	// Current broadcast; end is zero when there is none.
	payload  []byte
	interval time.Duration
	next     time.Time
	end      time.Time
}

// Listen creates the server's host, bound to addr ("ip:port"; an empty ip or
// 0.0.0.0 listens on all interfaces; port 0 is refused because go-enet
// cannot report the port chosen), with room for peers peers. With poll, Run
// busy-polls Service(0); otherwise it blocks in Service(1).
func Listen(addr string, peers int, poll bool) (*Server, error) {
	ap, err := load.ResolveAddr(context.Background(), addr)
	if err != nil {
		return nil, fmt.Errorf("refserver: %w", err)
	}
	if ap.Port() == 0 {
		return nil, fmt.Errorf("refserver: %q: port 0 is not supported", addr)
	}
	if peers < 1 || peers > MaxPeers {
		return nil, fmt.Errorf("refserver: peers %d out of range 1..%d", peers, MaxPeers)
	}
	a := enet.NewListenAddress(ap.Port())
	if !ap.Addr().IsUnspecified() {
		a = enet.NewAddress(ap.Addr().String(), ap.Port())
	}
	host, err := enet.NewHost(a, uint64(peers), maxChannels, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("refserver: listen on %s: %w", addr, err)
	}
	return &Server{host: host, port: ap.Port(), poll: poll, peers: make(map[enet.Peer]struct{})}, nil
}

// Port returns the UDP port the server is bound to.
func (s *Server) Port() uint16 { return s.port }

// Run serves until ctx is done, then disconnects the peers, destroys the
// host and returns nil. Call it once; go-enet hides Service errors, so Run
// has none to report.
func (s *Server) Run(ctx context.Context) error {
	if s.host == nil {
		return ErrClosed
	}
	defer s.close()
	timeout := uint32(1)
	if s.poll {
		timeout = 0
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		default:
		}
		if !s.end.IsZero() {
			s.broadcast()
		}
		ev := s.host.Service(timeout)
		switch ev.GetType() {
		case enet.EventConnect:
			s.peers[ev.GetPeer()] = struct{}{}
		case enet.EventDisconnect:
			delete(s.peers, ev.GetPeer())
		case enet.EventReceive:
			s.receive(ev)
		}
	}
}

// receive echoes one packet, or starts a broadcast.
func (s *Server) receive(ev enet.Event) {
	pkt := ev.GetPacket()
	data := pkt.GetData()
	flags := pkt.GetFlags()
	pkt.Destroy()
	ch := ev.GetChannelID()
	if ch == load.BroadcastChannel && load.IsBroadcastRequest(data) {
		if req, err := load.ParseBroadcastRequest(data); err == nil {
			s.startBroadcast(req)
		}
		return // malformed requests are ignored
	}
	ev.GetPeer().SendBytes(data, ch, flags&^enet.PacketFlagNoAllocate)
}

func (s *Server) startBroadcast(r load.BroadcastRequest) {
	now := time.Now()
	s.payload = make([]byte, r.Size)
	s.interval = time.Second / time.Duration(r.Rate)
	s.next = now
	s.end = now.Add(r.Duration)
}

// broadcast sends the packets due by now to every connected peer.
func (s *Server) broadcast() {
	now := time.Now()
	if !now.Before(s.end) {
		s.end = time.Time{}
		return
	}
	for !s.next.After(now) {
		binary.LittleEndian.PutUint64(s.payload, uint64(time.Now().UnixNano()))
		s.host.BroadcastBytes(s.payload, load.BroadcastChannel, enet.PacketFlagReliable)
		s.next = s.next.Add(s.interval)
	}
}

// close tells the connected peers and destroys the host.
func (s *Server) close() {
	for p := range s.peers {
		p.DisconnectNow(0)
	}
	clear(s.peers)
	s.host.Destroy()
	s.host = nil
}

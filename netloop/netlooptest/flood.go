package netlooptest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/enetkit/enetkit/netloop"
)

// A handshake flood, as an attacker sends it: ENet 1.3 CONNECT datagrams
// from forged source addresses that never answer the server's
// VERIFY_CONNECT. libenet gives every such CONNECT a peer slot, half-open,
// and keeps it for seconds while it retransmits VERIFY_CONNECT.
//
// The source addresses are forged the way an unprivileged program can on
// loopback: every address of 127.0.0.0/8 is local on Linux, and a UDP socket
// bound to the wildcard address may send from any local address with an
// IP_PKTINFO control message. A few sockets (floodSockets) thus send from
// any number of addresses, and the server's answers to those addresses come
// back to them, where they are read and discarded (and counted).

// Wire format of a CONNECT as libenet 1.3.17's enet_host_connect sends it
// (protocol.h: ENetProtocolHeader with sentTime, then ENetProtocolConnect;
// every field big-endian).
const (
	connectLen = 4 + 48 // header with sentTime, CONNECT command

	headerSentTime  = 1 << 15 // ENET_PROTOCOL_HEADER_FLAG_SENT_TIME
	headerPeerNone  = 0xFFF   // ENET_PROTOCOL_MAXIMUM_PEER_ID: no peer yet
	cmdAcknowledge  = 1       // ENET_PROTOCOL_COMMAND_ACKNOWLEDGE
	cmdConnect      = 2       // ENET_PROTOCOL_COMMAND_CONNECT
	cmdVerify       = 3       // ENET_PROTOCOL_COMMAND_VERIFY_CONNECT
	cmdMask         = 0x0F    // ENET_PROTOCOL_COMMAND_MASK
	cmdFlagAck      = 1 << 7  // ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE
	ackLen          = 8       // sizeof(ENetProtocolAcknowledge)
	verifyLen       = 44      // sizeof(ENetProtocolVerifyConnect)
	channelNone     = 0xFF    // the connection's control channel
	sessionNone     = 0xFF    // no session yet: the server picks one
	connectMTU      = 1400    // ENET_HOST_DEFAULT_MTU
	connectWindow   = 65536   // ENET_PROTOCOL_MAXIMUM_WINDOW_SIZE (unlimited bandwidth)
	throttleEvery   = 5000    // ENET_PEER_PACKET_THROTTLE_INTERVAL, ms
	throttleAccel   = 2       // ENET_PEER_PACKET_THROTTLE_ACCELERATION
	throttleDecel   = 2       // ENET_PEER_PACKET_THROTTLE_DECELERATION
	maxPeerSlots    = 4096    // peer IDs the wire can name (12 bits)
	floodSockets    = 4       // sockets the CONNECTs are spread over (one source port each)
	floodReadBuffer = 4096 + 1
)

// Flood defaults and limits.
const (
	DefaultFloodRate     = 2000
	DefaultFloodSources  = 1000
	DefaultFloodDuration = Timeout
	MaxFloodRate         = 1_000_000
	MaxFloodSources      = 1 << 20
)

// ErrFloodConfig is returned for a FloodConfig or target Flood refuses.
var ErrFloodConfig = errors.New("netlooptest: bad flood config")

// FloodConfig says what Flood sends. A zero field means its default.
type FloodConfig struct {
	// Rate is how many CONNECTs a second are sent (default
	// DefaultFloodRate, at most MaxFloodRate). A sender that falls behind
	// catches up in bursts; FloodStats tells the rate achieved.
	Rate int
	// Sources is how many distinct source addresses the CONNECTs come from,
	// each in turn (default DefaultFloodSources, at most MaxFloodSources).
	// With 1, every CONNECT comes from FirstSource: the case of a
	// per-address limit.
	Sources int
	// FirstSource is the first source address, in 127.0.0.0/8 (default
	// 127.1.0.1). The others follow it, skipping addresses that end in .0
	// or .255; all must stay in 127.0.0.0/8.
	FirstSource netip.Addr
	// Duration bounds the flood (default DefaultFloodDuration).
	Duration time.Duration
	// Count, if positive, stops sending once that many CONNECTs are sent;
	// the flood still reads the target's answers until it ends.
	Count int
	// Channels is the channel count each CONNECT asks for (default 1). It
	// is sent as it is, so a value outside ENet's 1..255 tests refusal.
	Channels uint32
	// Data is each CONNECT's user data (the server's Connect event Data).
	Data uint32
}

// FloodStats counts what a flood did.
type FloodStats struct {
	Sent       uint64        // CONNECT datagrams handed to the kernel
	SendErrors uint64        // sends that failed before the end
	Elapsed    time.Duration // how long it sent: from its start to its last send (set at the end)
	Replies    uint64        // datagrams the target sent back to the forged sources
	// VerifyConnects counts the VERIFY_CONNECT commands among the replies:
	// one per CONNECT the target gave a slot, and one per retransmission.
	VerifyConnects uint64
	// Slots is how many distinct peer slots of the target (the peer IDs
	// named in VERIFY_CONNECT) the flood has held at some time.
	Slots int
}

// Rate is the achieved rate, in CONNECTs sent a second.
func (s FloodStats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Elapsed.Seconds()
}

// Flood sends forged ENet CONNECT datagrams to target, which must be a
// loopback address, as cfg says (at most cfg.Count of them, if set), until
// cfg.Duration has passed or ctx is done, whichever comes first; then it
// returns the counts. Each CONNECT is the one libenet 1.3.17's
// enet_host_connect sends (header peer ID 0xFFF with the sent-time flag,
// CONNECT with the acknowledge flag on channel 0xFF, reliable sequence
// number 1, MTU 1400, window 65536, ENet's default throttle), with a random
// connect ID and outgoing peer ID, from the next of cfg.Sources loopback
// addresses. Nothing answers the target's VERIFY_CONNECTs: its replies are
// read, counted and discarded. A target that checks an ENet checksum drops
// the forged CONNECTs, which carry none.
//
// The end of ctx is a normal end, not an error; errors are ErrFloodConfig
// (bad cfg or target) and socket failures before the first send. Flood
// holds a few sockets and goroutines, all released before it returns; its
// memory does not grow with the rate, the duration or the sources. It
// needs Linux (loopback 127.0.0.0/8 and IP_PKTINFO). It is safe for
// concurrent use.
func Flood(ctx context.Context, target netip.AddrPort, cfg FloodConfig) (FloodStats, error) {
	f, err := newFlood(target, cfg)
	if err != nil {
		return FloodStats{}, err
	}
	return f.run(ctx), nil
}

// FloodRun is a flood running in the background, started by StartFlood.
type FloodRun struct {
	f    *flood
	stop func() error
	done chan FloodStats // the final counts, once
	once sync.Once
	last FloodStats
}

// StartFlood starts Flood against target in a goroutine and returns at
// once, with the flood's sockets bound. The flood ends by itself (see
// FloodConfig.Duration and Count), when Stop is called, or when the test
// ends. A bad cfg fails the test at once.
func StartFlood(tb testing.TB, target netip.AddrPort, cfg FloodConfig) *FloodRun {
	tb.Helper()
	f, err := newFlood(target, cfg)
	if err != nil {
		tb.Fatalf("netlooptest: StartFlood: %v", err)
	}
	r := &FloodRun{f: f, done: make(chan FloodStats, 1)}
	r.stop = Go(tb, func(ctx context.Context) error {
		r.done <- f.run(ctx)
		return nil
	})
	return r
}

// Stats returns the flood's counts so far. It is safe for concurrent use.
func (r *FloodRun) Stats() FloodStats { return r.f.stats() }

// Stop ends the flood, waits for it to release its sockets, and returns its
// final counts. It is idempotent and safe for concurrent use.
func (r *FloodRun) Stop() FloodStats {
	r.once.Do(func() {
		if err := r.stop(); err != nil {
			r.last = r.f.stats()
			return
		}
		r.last = <-r.done
	})
	return r.last
}

// WaitSlots waits until the flood has held at least n of the target's peer
// slots (FloodStats.Slots), or ctx is done.
func (r *FloodRun) WaitSlots(ctx context.Context, n int) error {
	for {
		have, changed := r.f.slots.wait()
		if have >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("netlooptest: flood held %d slots, want %d: %w", have, n, ctx.Err())
		}
	}
}

// flood is one flood's state: its sockets, its config and its counters.
type flood struct {
	target netip.AddrPort
	cfg    FloodConfig
	first  uint32 // the first source, as an index: see source
	conns  []*net.UDPConn

	sent, sendErrors, replies, verifies atomic.Uint64
	elapsed                             atomic.Int64
	slots                               slotSet
}

func newFlood(target netip.AddrPort, cfg FloodConfig) (*flood, error) {
	if !target.Addr().Is4() || !target.Addr().IsLoopback() || target.Port() == 0 {
		return nil, fmt.Errorf("%w: target %v is not an IPv4 loopback address with a port", ErrFloodConfig, target)
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultFloodRate
	}
	if cfg.Sources == 0 {
		cfg.Sources = DefaultFloodSources
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultFloodDuration
	}
	if !cfg.FirstSource.IsValid() {
		cfg.FirstSource = netip.AddrFrom4([4]byte{127, 1, 0, 1})
	}
	if cfg.Channels == 0 {
		cfg.Channels = 1
	}
	switch {
	case cfg.Rate < 0 || cfg.Rate > MaxFloodRate:
		return nil, fmt.Errorf("%w: rate %d not in 1..%d", ErrFloodConfig, cfg.Rate, MaxFloodRate)
	case cfg.Sources < 0 || cfg.Sources > MaxFloodSources:
		return nil, fmt.Errorf("%w: sources %d not in 1..%d", ErrFloodConfig, cfg.Sources, MaxFloodSources)
	case cfg.Duration < 0 || cfg.Count < 0:
		return nil, fmt.Errorf("%w: negative duration or count", ErrFloodConfig)
	}
	a := cfg.FirstSource.As4()
	if !cfg.FirstSource.Is4() || a[0] != 127 || a[3] == 0 || a[3] == 255 {
		return nil, fmt.Errorf("%w: first source %v is not in 127.0.0.0/8 or ends in .0 or .255", ErrFloodConfig, cfg.FirstSource)
	}
	// Sources are numbered through the addresses of 127.0.0.0/8 that end
	// in 1..254: index i is 127.0.0.0 + (i/254)<<8 + i%254 + 1.
	first := (uint32(a[1])<<8|uint32(a[2]))*254 + uint32(a[3]) - 1
	if last := uint64(first) + uint64(cfg.Sources) - 1; last >= 1<<16*254 {
		return nil, fmt.Errorf("%w: %d sources from %v leave 127.0.0.0/8", ErrFloodConfig, cfg.Sources, cfg.FirstSource)
	}
	f := &flood{target: target, cfg: cfg, first: first}
	f.slots.changed = make(chan struct{})
	for range floodSockets {
		// The wildcard address, so that the target's answers to any
		// forged source come back here.
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
		if err != nil {
			f.close()
			return nil, fmt.Errorf("netlooptest: flood socket: %w", err)
		}
		f.conns = append(f.conns, c)
	}
	return f, nil
}

// source returns the i-th source address.
func (f *flood) source(i int) [4]byte {
	n := f.first + uint32(i)
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], 127<<24|(n/254)<<8|(n%254+1))
	return a
}

// run floods until the end and releases the sockets.
func (f *flood) run(ctx context.Context) FloodStats {
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(f.cfg.Duration))
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range f.conns {
		wg.Go(func() { f.read(c) })
	}
	f.send(ctx, start)
	f.elapsed.Store(int64(time.Since(start)))
	<-ctx.Done() // after Count CONNECTs, the answers are still read until the end
	f.close()    // ends the readers
	wg.Wait()
	return f.stats()
}

// send paces the CONNECTs, sending every millisecond those due by then,
// until ctx is done or Count are sent.
func (f *flood) send(ctx context.Context, start time.Time) {
	stopWrites := context.AfterFunc(ctx, func() {
		for _, c := range f.conns {
			c.SetWriteDeadline(time.Now()) // a send never waits past the end
		}
	})
	defer stopWrites()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()

	pkt := make([]byte, connectLen)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofInet4Pktinfo))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = syscall.IPPROTO_IP, syscall.IP_PKTINFO
	h.SetLen(syscall.CmsgLen(syscall.SizeofInet4Pktinfo))
	info := (*syscall.Inet4Pktinfo)(unsafe.Pointer(&oob[syscall.CmsgLen(0)]))

	count := int64(f.cfg.Count)
	if count == 0 {
		count = math.MaxInt64
	}
	var n int64 // CONNECTs attempted
	for n < count {
		due := min(int64(time.Since(start).Seconds()*float64(f.cfg.Rate)), count)
		for ; n < due; n++ {
			if n%64 == 0 && ctx.Err() != nil {
				return
			}
			putConnect(pkt, uint16(time.Now().UnixMilli()), uint16(rand.IntN(headerPeerNone)),
				f.cfg.Channels, rand.Uint32(), f.cfg.Data)
			info.Spec_dst = f.source(int(n % int64(f.cfg.Sources)))
			c := f.conns[n%int64(len(f.conns))]
			if _, _, err := c.WriteMsgUDPAddrPort(pkt, oob, f.target); err != nil {
				if ctx.Err() != nil {
					return // failed by the write deadline set at the end
				}
				f.sendErrors.Add(1)
			} else {
				f.sent.Add(1)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// putConnect writes a CONNECT datagram into b (connectLen bytes), field by
// field as libenet 1.3.17's enet_host_connect and
// enet_protocol_send_outgoing_commands write it.
func putConnect(b []byte, sentTime, outgoingPeerID uint16, channels, connectID, data uint32) {
	be := binary.BigEndian
	be.PutUint16(b[0:], headerSentTime|headerPeerNone) // no session bits yet
	be.PutUint16(b[2:], sentTime)
	b[4] = cmdConnect | cmdFlagAck
	b[5] = channelNone
	be.PutUint16(b[6:], 1) // the first reliable command on the control channel
	be.PutUint16(b[8:], outgoingPeerID)
	b[10] = sessionNone // incomingSessionID
	b[11] = sessionNone // outgoingSessionID
	be.PutUint32(b[12:], connectMTU)
	be.PutUint32(b[16:], connectWindow)
	be.PutUint32(b[20:], channels)
	be.PutUint32(b[24:], 0) // incoming bandwidth: unlimited
	be.PutUint32(b[28:], 0) // outgoing bandwidth: unlimited
	be.PutUint32(b[32:], throttleEvery)
	be.PutUint32(b[36:], throttleAccel)
	be.PutUint32(b[40:], throttleDecel)
	be.PutUint32(b[44:], connectID)
	be.PutUint32(b[48:], data)
}

// read counts and discards what comes back on c until c is closed.
func (f *flood) read(c *net.UDPConn) {
	buf := make([]byte, floodReadBuffer)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return // closed (unconnected UDP sockets see no ICMP errors)
		}
		f.replies.Add(1)
		if slot, ok := verifyConnect(buf[:n]); ok {
			f.verifies.Add(1)
			f.slots.add(slot)
		}
	}
}

// verifyConnect reports whether the datagram b from an ENet host carries a
// VERIFY_CONNECT, and the peer slot it names. It skips acknowledgements
// before it; any other command ends the scan.
func verifyConnect(b []byte) (slot uint16, ok bool) {
	if len(b) < 2 {
		return 0, false
	}
	i := 2
	if binary.BigEndian.Uint16(b)&headerSentTime != 0 {
		i = 4
	}
	for i < len(b) {
		switch b[i] & cmdMask {
		case cmdAcknowledge:
			i += ackLen
		case cmdVerify:
			if i+verifyLen > len(b) {
				return 0, false
			}
			return binary.BigEndian.Uint16(b[i+4:]) & headerPeerNone, true
		default:
			return 0, false
		}
	}
	return 0, false
}

func (f *flood) close() {
	for _, c := range f.conns {
		c.Close()
	}
}

func (f *flood) stats() FloodStats {
	return FloodStats{
		Sent:           f.sent.Load(),
		SendErrors:     f.sendErrors.Load(),
		Elapsed:        time.Duration(f.elapsed.Load()),
		Replies:        f.replies.Load(),
		VerifyConnects: f.verifies.Load(),
		Slots:          f.slots.count(),
	}
}

// slotSet is the set of the target's peer slots seen in VERIFY_CONNECTs.
type slotSet struct {
	mu      sync.Mutex
	bits    [maxPeerSlots / 64]uint64
	n       int
	changed chan struct{} // closed, and replaced, when n grows
}

func (s *slotSet) add(slot uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, bit := slot/64, uint64(1)<<(slot%64)
	if s.bits[w]&bit != 0 {
		return
	}
	s.bits[w] |= bit
	s.n++
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *slotSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// wait returns the count and a channel closed when it next grows.
func (s *slotSet) wait() (int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.changed
}

// ErrConnectFailed is returned by ConnectTime when the connection ended
// without being established.
var ErrConnectFailed = errors.New("netlooptest: connect failed")

// ConnectTime connects to addr as a player's client would, from a new
// client host made with opts (for example netloop.WithConnectTimeout), and
// returns how long the connection took: from the Connect call to its
// Connect event. If the connection fails first (the host reports
// ReasonConnectFailed) the error wraps ErrConnectFailed; if ctx ends first,
// it wraps ctx.Err(). Either way ConnectTime closes the connection and the
// host, and waits for them, before it returns. It is safe for concurrent
// use: each call has its own host.
func ConnectTime(ctx context.Context, addr string, opts ...netloop.Option) (time.Duration, error) {
	h, err := netloop.New("", opts...)
	if err != nil {
		return 0, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.Run(runCtx) }()
	defer func() {
		stop()
		for range h.Events() { // until Run closes it
		}
		<-errc
	}()

	start := time.Now()
	p, err := h.Connect(ctx, addr, 1, 0)
	if err != nil {
		return 0, fmt.Errorf("netlooptest: connect to %s: %w", addr, err)
	}
	for {
		select {
		case ev, ok := <-h.Events():
			if !ok {
				return 0, fmt.Errorf("netlooptest: connect to %s: %w", addr, netloop.ErrClosed)
			}
			if ev.Peer != p {
				continue
			}
			switch ev.Kind {
			case netloop.EventConnect:
				d := time.Since(start)
				// Send the acknowledgement of the server's VERIFY_CONNECT
				// before disconnecting (ENet drops what is queued for a
				// peer it disconnects), so that the server sees the
				// connection complete; after DisconnectNow, shutdown
				// waits for no answer.
				bg := context.Background()
				h.Flush(bg)
				h.DisconnectNow(bg, p, 0)
				return d, nil
			case netloop.EventDisconnect:
				return 0, fmt.Errorf("%w: %s after %v (%v)", ErrConnectFailed, addr, time.Since(start).Round(time.Millisecond), ev.Reason)
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("netlooptest: connect to %s: no connection after %v: %w", addr, time.Since(start).Round(time.Millisecond), ctx.Err())
		}
	}
}

package netloop

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Host is an ENet host driven by one goroutine, the one running Run. That
// goroutine alone touches ENet; every other method is safe for concurrent
// use and talks to it through a command channel. Create it with New.
type Host struct {
	cfg  config
	log  *zap.Logger
	addr netip.AddrPort

	public []publicSlot // per peer slot, read by callers to check handles

	cmds   chan command  // callers -> loop
	events chan Event    // loop -> consumer; closed when Run returns
	stop   chan struct{} // closed when the loop stops taking commands
	done   chan struct{} // closed when Run has returned (or Close, without Run)

	senders  atomic.Int64 // callers between their stopping check and their push
	stopping atomic.Bool
	awake    atomic.Bool   // false while the loop is parked
	loopG    atomic.Uint64 // with an inline handler: the id of the goroutine running the loop
	wakeConn *net.UDPConn
	cookie   [cookieSize]byte

	// OutboundWait: callers wait on drained for a peer's queue to drain;
	// the loop closes and replaces it when a queue does and waiters > 0.
	drained atomic.Pointer[chan struct{}]
	waiters atomic.Int64

	final atomic.Pointer[Stats] // the counters when Run stopped

	mu     sync.Mutex // guards c (until Run takes it), started and cancel
	c      *chost
	state  lifecycle
	cancel context.CancelFunc
}

// publicSlot is what callers may read, lock-free, about a peer slot: the
// loop publishes it; the loop's own record of the slot is its peerState.
type publicSlot struct {
	id       atomic.Uint64 // the current connection's Peer id; 0 = none
	channels atomic.Uint32 // its channel count; 0 until connected

	// OutboundWait: bytes ENet holds for the peer as of the loop's last
	// look (an upper bound), bytes of sends submitted and not yet run, and
	// whether a sender waits for room.
	queued, inflight atomic.Int64
	blocked          atomic.Bool
}

// lifecycle is where a Host or a Group is in its life: created, running
// (Run has started), or closed (Run has returned, or Close released it).
type lifecycle uint8

const (
	stateNew lifecycle = iota
	stateRunning
	stateClosed
)

// canRun returns why Run (or a set-up call that must come before it) may
// not start now, or nil.
func (s lifecycle) canRun() error {
	switch s {
	case stateRunning:
		return ErrRunning
	case stateClosed:
		return ErrClosed
	}
	return nil
}

// New creates an ENet host, the equivalent of lua-enet's host_create.
// addr is where it listens: "127.0.0.1:8888", "localhost:2232", "*:6767",
// or "" for a client host that others cannot connect to by a known address
// (it is bound to an ephemeral port). New binds the socket, so a busy port
// fails here; it starts no goroutine. Call Run to drive the host, or Close
// to release it without running.
func New(addr string, opts ...Option) (*Host, error) {
	cfg := config{
		peers: 64, channels: 1,
		log:         zap.NewNop(),
		eventBuffer: 1024, commandBuffer: 1024,
		maxPending: 65536, maxBatch: 256,
		park: 10 * time.Millisecond, drain: 3 * time.Second,
		spin:            50 * time.Microsecond,
		connectTimeout:  5 * time.Second,
		maxPendingBytes: 64 << 20,
		outLimit:        8 << 20,
		perAddress:      32,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.log == nil {
		cfg.log = zap.NewNop()
	}
	var bind netip.AddrPort
	if addr != "" {
		var err error
		if bind, err = ParseAddr(context.Background(), addr, true); err != nil {
			return nil, err
		}
	}
	h := &Host{
		cfg:    cfg,
		log:    cfg.log.Named("netloop"),
		public: make([]publicSlot, cfg.peers),
		cmds:   make(chan command, cfg.commandBuffer),
		events: make(chan Event, cfg.eventBuffer),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	h.awake.Store(true)
	drained := make(chan struct{})
	h.drained.Store(&drained)
	if _, err := rand.Read(h.cookie[:]); err != nil {
		return nil, fmt.Errorf("netloop: wake cookie: %w", err)
	}
	if err := initialize(); err != nil {
		return nil, err
	}
	c, err := newCHost(cfg.createAt(bind), cfg.peers, cfg.channels, cfg.in, cfg.out, cfg.maxBatch, h.cookie[:])
	if err != nil {
		deinitialize()
		return nil, fmt.Errorf("netloop: create host on %q: %w (already listening?)", addr, err)
	}
	err = h.share(c, bind) // host groups: reuseport.go
	if err == nil {
		err = h.attach(c)
	}
	if err != nil {
		c.destroy()
		deinitialize()
		return nil, fmt.Errorf("netloop: create host on %q: %w", addr, err)
	}
	return h, nil
}

// attach finishes setting up a new host around c: socket buffers, bound
// address, wake socket.
func (h *Host) attach(c *chost) error {
	if h.cfg.rcvbuf > 0 || h.cfg.sndbuf > 0 {
		if _, _, err := c.socketBuffers(h.cfg.rcvbuf, h.cfg.sndbuf); err != nil {
			return fmt.Errorf("socket buffers: %w", err)
		}
	}
	var err error
	if h.addr, err = c.localAddr(); err != nil {
		return err
	}
	wakeTo := h.addr.Addr()
	if wakeTo.IsUnspecified() {
		wakeTo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if h.wakeConn, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(wakeTo, h.addr.Port()))); err != nil {
		return fmt.Errorf("wake socket: %w", err)
	}
	c.setCoalesce(!h.cfg.immediateAcks)
	c.setPerAddress(h.cfg.perAddress)
	h.c = c
	return nil
}

// Run drives the host until ctx is cancelled or Close is called, then shuts
// down: it sends everything accepted before, disconnects every peer with
// disconnect_later, waits (at most the drain timeout) for them to
// acknowledge, delivers their Disconnect events, destroys the ENet host and
// closes Events. It returns nil after such a clean stop. Run may be called
// once.
func (h *Host) Run(ctx context.Context) error {
	h.mu.Lock()
	if err := h.state.canRun(); err != nil {
		h.mu.Unlock()
		return err
	}
	h.state = stateRunning
	ctx, cancel := context.WithCancel(ctx)
	h.cancel = cancel
	c := h.c
	h.c = nil
	h.mu.Unlock()
	defer cancel()

	stopWake := context.AfterFunc(ctx, h.wake)
	l := newLoop(h, c)
	if l.inline != nil {
		h.loopG.Store(goid())
		defer h.loopG.Store(0)
	}
	err := l.run(ctx)
	stopWake()
	h.mu.Lock()
	h.release()
	h.mu.Unlock()
	return err
}

// release marks the host stopped, once its ENet host is destroyed: a later
// Run returns ErrClosed, Events and Done close. h.mu is held.
func (h *Host) release() {
	h.state = stateClosed
	h.wakeConn.Close()
	deinitialize()
	close(h.events)
	close(h.done)
}

// Close stops the host. If Run is running, Close makes it shut down as a
// cancelled context does, and waits until it has returned; otherwise Close
// releases the host. Close is idempotent and safe for concurrent use.
func (h *Host) Close() error {
	h.mu.Lock()
	switch h.state {
	case stateNew:
		h.stopping.Store(true)
		close(h.stop)
		h.c.destroy()
		h.c = nil
		h.release()
	case stateRunning:
		h.cancel()
	}
	h.mu.Unlock()
	<-h.done
	return nil
}

// Done is closed when the host has stopped.
func (h *Host) Done() <-chan struct{} { return h.done }

// Events returns the channel on which the host delivers its events, in the
// order the loop saw them. It is closed after the last event, when Run
// returns. For each peer: Connect comes before its Receives, reliable
// messages come in order per channel, and exactly one Disconnect comes last
// (for an outgoing connection that fails, the Disconnect, with
// ReasonConnectFailed, comes without a Connect). Events must be drained: a
// consumer that falls behind by more than the buffer and MaxPending loses
// messages according to the slow-consumer policy (SlowPolicy).
func (h *Host) Events() <-chan Event { return h.events }

// CheckEvents returns the next event if one is ready, without waiting: a
// non-blocking receive on Events (lua-enet's check_events). ok is false if
// none is ready or Events is closed.
func (h *Host) CheckEvents() (ev Event, ok bool) {
	select {
	case ev, ok = <-h.events:
		return ev, ok
	default:
		return Event{}, false
	}
}

// Addr returns the address the host's socket is bound to (lua-enet's
// get_socket_address). For a client host it is 0.0.0.0 and an ephemeral port.
func (h *Host) Addr() netip.AddrPort { return h.addr }

// PeerCount returns the number of peer slots (lua-enet's peer_count).
func (h *Host) PeerCount() int { return len(h.public) }

// wake makes a parked loop return from ENet. Senders call it after
// queueing a command; it costs one datagram only when the loop is parked.
func (h *Host) wake() {
	if !h.awake.Load() && h.awake.CompareAndSwap(false, true) {
		h.wakeConn.Write(h.cookie[:]) // an error only means the host is gone
	}
}

// submit hands a command to the loop.
func (h *Host) submit(ctx context.Context, c command) error {
	h.senders.Add(1)
	defer h.senders.Add(-1)
	if h.stopping.Load() {
		return ErrClosed
	}
	// Take room in the queue if there is any: ctx only bounds waiting, so a
	// cancelled ctx never loses a command the host could have taken.
	select {
	case h.cmds <- c:
		h.wake()
		return nil
	default:
	}
	if h.onLoop() {
		return ErrLoopGoroutine // the loop would wait for itself
	}
	select {
	case h.cmds <- c:
		h.wake()
		return nil
	case <-h.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// do runs fn in the loop and returns its error. If the command was accepted,
// fn runs even if the host then shuts down, or ctx ends first.
func (h *Host) do(ctx context.Context, fn func(l *loop) error) error {
	_, err := call(ctx, h, func(l *loop) (struct{}, error) { return struct{}{}, fn(l) })
	return err
}

// call runs fn in the loop and returns its result. The result travels
// through a channel the caller may have stopped reading, never through a
// variable the loop would write after the caller left.
func call[T any](ctx context.Context, h *Host, fn func(l *loop) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	var zero T
	if h.onLoop() {
		return zero, ErrLoopGoroutine
	}
	res := make(chan result, 1)
	if err := h.submit(ctx, command{op: opFunc, fn: func(l *loop) {
		v, err := fn(l)
		res <- result{v, err}
	}}); err != nil {
		return zero, err
	}
	select {
	case r := <-res:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// check validates a handle without asking the loop.
func (h *Host) check(p Peer) error {
	if p.h != h || p.id == 0 {
		return ErrForeignPeer
	}
	if h.stopping.Load() {
		return ErrClosed
	}
	if h.public[p.Index()].id.Load() != p.id {
		return ErrStalePeer
	}
	return nil
}

// checkSend validates a send to p before it is queued: the handle, the
// message, and the channel against the peer's count. It returns p's slot.
func (h *Host) checkSend(p Peer, ch uint8, data []byte, flag Flag) (*publicSlot, error) {
	if err := h.check(p); err != nil {
		return nil, err
	}
	if err := checkMessage(data, flag); err != nil {
		return nil, err
	}
	sl := &h.public[p.Index()]
	switch n := sl.channels.Load(); {
	case n == 0:
		return nil, ErrNotConnected
	case uint32(ch) >= n:
		return nil, fmt.Errorf("%w: channel %d, peer has %d", ErrChannel, ch, n)
	}
	return sl, nil
}

// checkMulti validates a send to several peers: the message, and the
// channel against ENet's limit (each peer's own count is checked in the
// loop).
func checkMulti(ch uint8, data []byte, flag Flag) error {
	if err := checkMessage(data, flag); err != nil {
		return err
	}
	if int(ch) >= MaxChannels {
		return fmt.Errorf("%w: channel %d, ENet's limit is %d", ErrChannel, ch, MaxChannels-1)
	}
	return nil
}

func checkMessage(data []byte, flag Flag) error {
	switch {
	case flag > Unreliable:
		return fmt.Errorf("%w: %d", ErrFlag, flag)
	case len(data) == 0:
		return ErrEmpty
	case len(data) > MaxMessageSize:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxMessageSize)
	}
	return nil
}

// Send queues data for p on channel ch (lua-enet's peer:send). It copies
// data into an ENet packet before it returns, and retains nothing: the
// caller may reuse data at once, as with io.Writer. It returns once the
// command is queued for the loop, without waiting for the loop or the
// network: a nil error means the message is handed to ENet unless the peer
// goes away first (counted in Stats.SendsRejected), or its outbound queue is
// over the limit (see WithOutboundLimit). Send blocks, within ctx, only
// while the command channel is full, or, with OutboundWait, while p's
// queue is over the limit.
//
// Above the MTU (about 1,370 bytes), ENet fragments a message: reliable
// ones into reliable fragments; unreliable and unsequenced ones into
// unreliable fragments, all of which must arrive for the message to (the
// receiver sees Unreliable: fragments are sequenced).
func (h *Host) Send(ctx context.Context, p Peer, ch uint8, data []byte, flag Flag) error {
	sl, err := h.checkSend(p, ch, data, flag)
	if err != nil {
		return err
	}
	if h.cfg.outPolicy == OutboundWait {
		if err := h.waitRoom(ctx, p); err != nil {
			return err
		}
		sl.inflight.Add(int64(len(data)))
	}
	c := command{op: opSend, peer: p, ch: ch, flag: flag}
	err = c.setMessage(data)
	if err == nil {
		err = h.submitPacket(ctx, c)
	}
	if err != nil && h.cfg.outPolicy == OutboundWait {
		sl.inflight.Add(-int64(len(data)))
	}
	return err
}

// submitPacket submits a command that carries a packet, which it destroys
// if the loop never gets it.
func (h *Host) submitPacket(ctx context.Context, c command) error {
	err := h.submit(ctx, c)
	if err != nil {
		c.pkt.destroy()
		if c.peers != nil {
			clear(*c.peers)
			peerLists.Put(c.peers)
		}
	}
	return err
}

// waitRoom waits until what ENet holds for p, and what is on its way to
// it, is below the outbound limit.
func (h *Host) waitRoom(ctx context.Context, p Peer) error {
	sl := &h.public[p.Index()]
	limit := int64(h.cfg.outLimit)
	for sl.queued.Load()+sl.inflight.Load() >= limit {
		if h.onLoop() {
			return ErrLoopGoroutine
		}
		h.waiters.Add(1)
		drained := *h.drained.Load()
		sl.blocked.Store(true)
		// After waiters and blocked: the loop publishes, then looks at them.
		if sl.queued.Load()+sl.inflight.Load() < limit {
			h.waiters.Add(-1)
			break
		}
		h.wake()
		select {
		case <-drained:
		case <-ctx.Done():
			h.waiters.Add(-1)
			return ctx.Err()
		case <-h.stop:
			h.waiters.Add(-1)
			return ErrClosed
		}
		h.waiters.Add(-1)
		if sl.id.Load() != p.id {
			return ErrStalePeer
		}
	}
	return nil
}

// roomMade wakes callers waiting for a queue to drain. Loop only.
func (h *Host) roomMade() {
	if h.waiters.Load() == 0 {
		return
	}
	next := make(chan struct{})
	close(*h.drained.Swap(&next))
}

// Broadcast queues data for every connected peer (lua-enet's
// host:broadcast), in one ENet packet that they share. Peers with fewer
// than ch+1 channels are skipped, and counted in Stats.SendsRejected. Like
// Send, it retains nothing.
func (h *Host) Broadcast(ctx context.Context, ch uint8, data []byte, flag Flag) error {
	if err := checkMulti(ch, data, flag); err != nil {
		return err
	}
	c := command{op: opBroadcast, ch: ch, flag: flag}
	if err := c.setMessage(data); err != nil {
		return err
	}
	return h.submitPacket(ctx, c)
}

// Multicast queues data for each of peers with a single command and a
// single ENet packet that they share: one copy, however many peers. Peers of
// other hosts and stale peers are skipped, as are peers with fewer than ch+1
// channels; they count in Stats.SendsRejected. Like Send, it retains
// nothing: neither peers nor data is read after it returns.
func (h *Host) Multicast(ctx context.Context, peers []Peer, ch uint8, data []byte, flag Flag) error {
	if err := checkMulti(ch, data, flag); err != nil {
		return err
	}
	if len(peers) == 0 {
		return nil
	}
	c := command{op: opMulticast, ch: ch, flag: flag}
	if err := c.setMessage(data); err != nil {
		return err
	}
	list := peerLists.Get().(*[]Peer)
	*list = append((*list)[:0], peers...)
	c.peers = list
	return h.submitPacket(ctx, c)
}

// Connect starts a connection to addr with the given channel count
// (1..MaxChannels) and connect data (lua-enet's host:connect). The address
// is resolved in the caller's goroutine. Connect returns the peer as soon
// as the loop has started the connection; its Connect event follows, or a
// Disconnect with ReasonConnectFailed (or ReasonRefused). If ctx ends
// first, Connect returns ctx's error and no connection is left behind: if
// the loop had not started it, it never does; if it had, it resets it, and
// the peer's Disconnect event (ReasonConnectFailed) still comes.
func (h *Host) Connect(ctx context.Context, addr string, channels int, data uint32) (Peer, error) {
	if channels < 1 || channels > MaxChannels {
		return Peer{}, fmt.Errorf("%w: channel count %d, want 1..%d", ErrRange, channels, MaxChannels)
	}
	to, err := ParseAddr(ctx, addr, false)
	if err != nil {
		return Peer{}, err
	}
	const (
		waiting = iota
		taken
		abandoned
	)
	type result struct {
		p   Peer
		err error
	}
	if h.onLoop() {
		return Peer{}, ErrLoopGoroutine
	}
	var state atomic.Int32
	res := make(chan result, 1)
	if err := h.submit(ctx, command{op: opFunc, fn: func(l *loop) {
		if !state.CompareAndSwap(waiting, taken) {
			return // the caller gave up first: never start it
		}
		p, err := l.connect(to, channels, data)
		res <- result{p, err}
	}}); err != nil {
		return Peer{}, err
	}
	select {
	case r := <-res:
		return r.p, r.err
	case <-ctx.Done():
		if state.CompareAndSwap(waiting, abandoned) {
			return Peer{}, ctx.Err()
		}
		// The loop has taken the call and answers at once. Nobody will
		// hold the Peer: reset the connection (its Disconnect event,
		// ReasonConnectFailed, follows).
		if r := <-res; r.err == nil {
			h.Reset(context.Background(), r.p)
		}
		return Peer{}, ctx.Err()
	}
}

// Flush returns once everything queued before it has been handed to the
// socket (lua-enet's host:flush). The loop flushes after every batch
// anyway; Flush is for waiting on it.
func (h *Host) Flush(ctx context.Context) error {
	return h.do(ctx, func(l *loop) error { l.c.flush(); return nil })
}

// Disconnect asks p to disconnect (lua-enet's peer:disconnect). Messages
// still queued for p are dropped by ENet; use DisconnectLater to deliver
// them first. p's Disconnect event (ReasonLocal) follows when the peer
// acknowledges, or when it times out.
func (h *Host) Disconnect(ctx context.Context, p Peer, data uint32) error {
	return h.disconnect(ctx, p, disconnect, data)
}

// DisconnectLater disconnects p after everything queued for it has been
// sent and acknowledged (lua-enet's peer:disconnect_later).
func (h *Host) DisconnectLater(ctx context.Context, p Peer, data uint32) error {
	return h.disconnect(ctx, p, disconnectLater, data)
}

// DisconnectNow disconnects p at once, telling it without waiting for an
// answer (lua-enet's peer:disconnect_now). Its Disconnect event (ReasonLocal)
// follows on Events, though ENet itself reports none.
func (h *Host) DisconnectNow(ctx context.Context, p Peer, data uint32) error {
	return h.disconnect(ctx, p, disconnectNow, data)
}

// Reset drops p without telling it (lua-enet's peer:reset); the remote side
// will time out. Its Disconnect event (ReasonLocal) follows on Events.
func (h *Host) Reset(ctx context.Context, p Peer) error {
	return h.disconnect(ctx, p, reset, 0)
}

func (h *Host) disconnect(ctx context.Context, p Peer, w how, data uint32) error {
	if err := h.check(p); err != nil {
		return err
	}
	return h.submit(ctx, command{op: opDisconnect, peer: p, how: w, data: data})
}

// peerDo runs fn in the loop for p if p is still current there.
func (h *Host) peerDo(ctx context.Context, p Peer, fn func(l *loop, idx uint16)) error {
	if err := h.check(p); err != nil {
		return err
	}
	return h.do(ctx, func(l *loop) error {
		if !l.current(p) {
			return ErrStalePeer
		}
		fn(l, uint16(p.Index()))
		return nil
	})
}

// PeerInfo returns a snapshot of p's connection: state, connect ID, RTTs,
// loss, throttle, timeouts (lua-enet's peer:state, connect_id,
// round_trip_time, last_round_trip_time, timeout, ping_interval getters).
func (h *Host) PeerInfo(ctx context.Context, p Peer) (PeerInfo, error) {
	if err := h.check(p); err != nil {
		return PeerInfo{}, err
	}
	return call(ctx, h, func(l *loop) (PeerInfo, error) {
		if !l.current(p) {
			return PeerInfo{}, ErrStalePeer
		}
		return l.peerInfo(uint16(p.Index())), nil
	})
}

// Peers returns a snapshot of every current connection, connected or connecting.
func (h *Host) Peers(ctx context.Context) ([]PeerInfo, error) {
	return call(ctx, h, func(l *loop) ([]PeerInfo, error) {
		var out []PeerInfo
		for i := range l.peers {
			if l.peers[i].id != 0 {
				out = append(out, l.peerInfo(uint16(i)))
			}
		}
		return out, nil
	})
}

// PeerAt returns the connection in slot i, from 0 (lua-enet's
// host:get_peer, which counts from 1). It returns ErrStalePeer if the slot
// is free and ErrRange if i is not a slot.
func (h *Host) PeerAt(ctx context.Context, i int) (Peer, error) {
	if i < 0 || i >= len(h.public) {
		return Peer{}, fmt.Errorf("%w: peer index %d, host has %d", ErrRange, i, len(h.public))
	}
	return call(ctx, h, func(l *loop) (Peer, error) {
		if l.peers[i].id == 0 {
			return Peer{}, ErrStalePeer
		}
		return Peer{h: h, id: l.peers[i].id}, nil
	})
}

// Ping sends a ping to p now (lua-enet's peer:ping); ENet also pings on its own.
func (h *Host) Ping(ctx context.Context, p Peer) error {
	return h.peerDo(ctx, p, func(l *loop, idx uint16) { l.c.peerPing(idx) })
}

// SetPingInterval sets how often ENet pings p when nothing else is sent
// (lua-enet's peer:ping_interval; 0 means ENet's default, 500ms).
func (h *Host) SetPingInterval(ctx context.Context, p Peer, d time.Duration) error {
	v, err := toMS(d)
	if err != nil {
		return err
	}
	return h.peerDo(ctx, p, func(l *loop, idx uint16) { l.c.setPingInterval(idx, v) })
}

// SetRTT sets p's mean round trip time estimate (lua-enet's
// peer:round_trip_time(value)).
func (h *Host) SetRTT(ctx context.Context, p Peer, d time.Duration) error {
	v, err := toMS(d)
	if err != nil {
		return err
	}
	return h.peerDo(ctx, p, func(l *loop, idx uint16) { l.c.setRTT(idx, v) })
}

// SetLastRTT sets p's last round trip time (lua-enet's
// peer:last_round_trip_time(value)), to speed up ENet's estimate.
func (h *Host) SetLastRTT(ctx context.Context, p Peer, d time.Duration) error {
	v, err := toMS(d)
	if err != nil {
		return err
	}
	return h.peerDo(ctx, p, func(l *loop, idx uint16) { l.c.setLastRTT(idx, v) })
}

// ConfigureThrottle sets p's unreliable packet throttle (lua-enet's
// peer:throttle_configure).
func (h *Host) ConfigureThrottle(ctx context.Context, p Peer, t Throttle) error {
	iv, acc, dec, err := t.millis()
	if err != nil {
		return err
	}
	return h.peerDo(ctx, p, func(l *loop, idx uint16) { l.c.setThrottle(idx, iv, acc, dec) })
}

// SetTimeout sets when ENet declares p lost (lua-enet's peer:timeout with
// arguments). A zero field means ENet's default (32, 5s, 30s); unlike
// lua-enet, an omitted field is not reset to the default silently.
func (h *Host) SetTimeout(ctx context.Context, p Peer, t Timeout) error {
	limit, mn, mx, err := t.millis()
	if err != nil {
		return err
	}
	return h.peerDo(ctx, p, func(l *loop, idx uint16) { l.c.setTimeout(idx, limit, mn, mx) })
}

// SetChannelLimit sets the most channels a future incoming connection may
// have, 1..MaxChannels, or 0 for the maximum (lua-enet's host:channel_limit).
func (h *Host) SetChannelLimit(ctx context.Context, n int) error {
	if n < 0 || n > MaxChannels {
		return fmt.Errorf("%w: channel limit %d, want 0..%d", ErrRange, n, MaxChannels)
	}
	return h.do(ctx, func(l *loop) error { l.c.setChannelLimit(n); return nil })
}

// SetBandwidthLimit sets the host's incoming and outgoing bandwidth in
// bytes/s, 0 for unlimited (lua-enet's host:bandwidth_limit, without its
// bug of using the incoming value for both).
func (h *Host) SetBandwidthLimit(ctx context.Context, in, out uint32) error {
	return h.do(ctx, func(l *loop) error { l.c.setBandwidthLimit(in, out); return nil })
}

// CompressWithRangeCoder enables ENet's range coder for all datagrams the
// host sends; the peers must enable it too (lua-enet's
// host:compress_with_range_coder).
func (h *Host) CompressWithRangeCoder(ctx context.Context) error {
	return h.do(ctx, func(l *loop) error {
		if err := l.c.compressWithRangeCoder(); err != nil {
			return fmt.Errorf("netloop: %w", err)
		}
		return nil
	})
}

// Stats returns the host's counters (lua-enet's total_sent_data,
// total_received_data and service_time, and more). The loop keeps ENet's
// 32-bit totals in 64-bit counters, so they do not wrap. Once Run has
// returned, Stats returns the counters as they were when the host stopped;
// for a host closed without running, ErrClosed.
func (h *Host) Stats(ctx context.Context) (Stats, error) {
	s, err := call(ctx, h, func(l *loop) (Stats, error) { return l.stats(), nil })
	if err == ErrClosed {
		select {
		case <-h.done:
		case <-ctx.Done():
			return Stats{}, ctx.Err()
		}
		if f := h.final.Load(); f != nil {
			return *f, nil
		}
	}
	return s, err
}

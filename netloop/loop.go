package netloop

import (
	"context"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

type op uint8

const (
	opSend op = iota
	opBroadcast
	opDisconnect
	opMulticast
	opFunc
)

// command is one unit of work for the loop. Sends, the hot path, are plain
// values: they allocate nothing on their way.
type command struct {
	op    op
	how   how // opDisconnect
	ch    uint8
	flag  Flag
	data  uint32
	size  int // opSend, opBroadcast, opMulticast: the message's length
	peer  Peer
	pkt   packet  // opSend, opBroadcast, opMulticast: the loop takes it; none for a small message
	peers *[]Peer // opMulticast: a copy, from peerLists, which the loop returns
	fn    func(*loop)
	small [smallMessage]byte // a message of up to smallMessage bytes, copied here instead of into pkt
}

// smallMessage is the size up to which a message travels inside its
// command, copied in Go, rather than in an ENet packet the sender makes:
// for a small message the cgo call costs more than the copies.
const smallMessage = 64

// setMessage copies data into c: into c.small if it fits, else into an
// ENet packet made here, in the sender's goroutine.
func (c *command) setMessage(data []byte) error {
	c.size = len(data)
	if len(data) <= smallMessage {
		copy(c.small[:], data)
		return nil
	}
	var err error
	c.pkt, err = newPacket(data, c.flag)
	return err
}

// peerLists recycles Multicast's copies of its peer lists.
var peerLists = sync.Pool{New: func() any { return new([]Peer) }}

// peerState is what the loop keeps per slot.
type peerState struct {
	id        uint64 // current Peer id, 0 when free
	connected bool   // its Connect event was emitted
	closing   Reason // set when this side started the disconnection
	dropping  bool   // the overflow policy is dropping its messages
	addr      netip.AddrPort
	queued    int // bytes in ENet's queues for the peer: an upper bound, exact after a walk
	bytesIn   uint64
	bytesOut  uint64
	msgsIn    uint64
	msgsOut   uint64
}

// loop is the state owned by the goroutine running Host.Run.
type loop struct {
	h       *Host
	c       *chost
	log     *zap.Logger
	peers   []peerState
	live    int      // slots with a connection (connected or connecting)
	idx     []uint16 // scratch for multicast
	results []sent   // scratch for multicast
	fresh   bool     // events were emitted (or Inline.Yield called) since the loop last yielded

	inline  InlineFunc // the inline handler (WithInline), or nil
	in      Inline     // handed to inline
	yielded bool       // Inline.Yield was called: yield before spinning too
	acted   int        // calls of in's methods since the last pump: what they queued goes out before the loop waits

	lastUnblock uint32 // ENet time of the last unblock walk

	pendingBytes int // payload bytes of the events in q

	// pending holds events for a consumer that has fallen behind the
	// channel's buffer: q[head:] in order.
	q    []Event
	head int

	// gap is a moving average of how long the loop has waited, idle, for
	// the next datagram: it polls for one only while gap is short.
	gap time.Duration

	st Stats
}

// nextSeq numbers connections process-wide, so that Peer ids are never reused.
var nextSeq atomic.Uint64

func newLoop(h *Host, c *chost) *loop {
	c.own() // from here, only this goroutine calls c
	l := &loop{h: h, c: c, log: h.log, peers: make([]peerState, len(h.public)), gap: h.cfg.park, inline: h.cfg.inline}
	l.in.l = l
	return l
}

func (l *loop) newPeer(idx uint16) Peer {
	id := nextSeq.Add(1)<<indexBits | uint64(idx)
	l.peers[idx] = peerState{id: id}
	l.h.public[idx].id.Store(id)
	l.live++
	return Peer{h: l.h, id: id}
}

// free forgets the connection in slot idx.
func (l *loop) free(idx uint16) {
	sl := &l.h.public[idx]
	sl.id.Store(0) // first: a racing Send sees ErrStalePeer
	sl.channels.Store(0)
	sl.queued.Store(0)
	if sl.blocked.Swap(false) {
		l.h.roomMade() // last: a sender waiting for this peer finds it gone
	}
	l.peers[idx] = peerState{}
	l.live--
}

func (l *loop) current(p Peer) bool {
	return p.h == l.h && p.id != 0 && l.peers[p.Index()].id == p.id
}

func (l *loop) run(ctx context.Context) error {
	done := ctx.Done()
	h := l.h
	park := int(h.cfg.park / time.Millisecond)
	timing := h.cfg.timing
	var start, t0 time.Time
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	for {
		select {
		case <-done:
			l.shutdown()
			return nil
		default:
		}
		if timing {
			start = time.Now()
		}
		n := l.runCommands(h.cfg.maxBatch)
		l.deliver()
		n += l.acted // the inline handler's sends: service now, not after a wait
		l.acted = 0
		if n < h.cfg.maxBatch && l.fresh {
			// Events went out since the loop last parked. Their consumers
			// were readied on this goroutine's P, where they would wait
			// until the scheduler took the P from the C call below. Let
			// them run now, and take what they answer in this batch.
			l.fresh = false
			runtime.Gosched()
			n += l.runCommands(h.cfg.maxBatch - n)
		}
		if n == 0 && l.pending() > 0 {
			// The consumer is behind: wait for it (or a command) in Go, for
			// at most 1ms (ENet's timers), rather than on the socket, which
			// would not see the channel gain room.
			l.c.flushHeld()
			wait.Reset(time.Millisecond)
			select {
			case h.events <- l.q[l.head]:
				l.pendingBytes -= len(l.q[l.head].Payload)
				l.q[l.head] = Event{}
				l.head++
				l.deliver()
			case c := <-h.cmds:
				l.exec(c)
			case <-done:
			case <-wait.C:
			}
			wait.Stop()
		} else if n == 0 {
			idle := time.Now()
			if l.gap >= h.cfg.spin || !l.spin(idle) {
				// Park: from here senders send a wake datagram. Look once
				// more for a command that came before they could see it.
				h.awake.Store(false)
				if len(h.cmds) == 0 {
					l.st.Parks++
					l.c.park(park)
				}
				if !h.awake.Swap(true) {
					l.arrived(idle) // a datagram, or the park interval passed
				}
				l.runCommands(h.cfg.maxBatch)
			}
		}
		if timing {
			t0 = time.Now()
		}
		evs := l.c.pump()
		if timing {
			l.st.Service.observe(time.Since(t0))
		}
		l.handle(evs)
		l.account()
		l.unblock()
		if timing {
			l.st.Iteration.observe(time.Since(start))
		}
	}
}

// spin polls the socket and the command queue until something comes or the
// spin budget from idle has passed; it reports whether something came. It
// yields once, first, so that a consumer still answering on this P can
// finish; not in the loop, where each yield would wake another thread to
// look for work.
func (l *loop) spin(idle time.Time) bool {
	end := idle.Add(l.h.cfg.spin)
	if l.inline == nil || l.yielded {
		runtime.Gosched()
	}
	l.yielded = false
	for {
		if l.c.readable() {
			l.arrived(idle)
			l.st.Spins++
			return true
		}
		if len(l.h.cmds) > 0 {
			l.st.Spins++
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// arrived records that a datagram came (or the park interval ended) after
// the loop had been idle since idle.
func (l *loop) arrived(idle time.Time) {
	l.gap += (time.Since(idle) - l.gap) / 4
}

// runCommands executes up to max queued commands without waiting.
func (l *loop) runCommands(max int) int {
	for n := 0; n < max; n++ {
		select {
		case c := <-l.h.cmds:
			l.exec(c)
		default:
			return n
		}
	}
	return max
}

func (l *loop) exec(c command) {
	switch c.op {
	case opSend:
		idx := uint16(c.peer.Index())
		s := &l.peers[idx]
		if l.h.cfg.outPolicy == OutboundWait {
			// Taken off what is on its way to the slot, which the sender
			// added, whatever becomes of the message.
			l.h.public[idx].inflight.Add(-int64(c.size))
		}
		if s.id != c.peer.id || !s.connected {
			c.pkt.destroy()
			l.st.SendsRejected++
			l.log.Debug("send to a peer that went away", zap.Stringer("peer", c.peer))
			return
		}
		if l.h.cfg.outPolicy == OutboundWait {
			// The caller waited for room (see Host.waitRoom).
			l.handed(idx, c.flag, c.size, l.c.send(idx, &c))
			l.h.public[idx].queued.Store(int64(s.queued))
			return
		}
		if !l.admit(idx, c.flag) {
			c.pkt.destroy()
			return
		}
		l.handed(idx, c.flag, c.size, l.c.send(idx, &c))
	case opBroadcast:
		l.idx = l.idx[:0]
		for i := range l.peers {
			if s := &l.peers[i]; s.id != 0 && s.connected && s.closing == 0 && l.admit(uint16(i), c.flag) {
				l.idx = append(l.idx, uint16(i))
			}
		}
		l.st.Broadcasts++
		l.multicast(c)
	case opMulticast:
		list := c.peers
		c.peers = nil
		l.multicastTo(*list, c)
		clear(*list)
		*list = (*list)[:0]
		peerLists.Put(list)
	case opDisconnect:
		idx := uint16(c.peer.Index())
		if l.peers[idx].id != c.peer.id {
			return // already gone: its Disconnect event is out
		}
		l.disconnect(idx, c.how, c.data, ReasonLocal)
	case opFunc:
		c.fn(l)
	}
}

// multicastTo hands c's packet, shared, to those of peers that may be sent
// it.
func (l *loop) multicastTo(peers []Peer, c command) {
	l.collect(peers, c.flag)
	l.st.Broadcasts++
	l.multicast(c)
}

// collect puts in l.idx the slots of those of peers that may be sent a
// message with flag.
func (l *loop) collect(peers []Peer, flag Flag) {
	l.idx = l.idx[:0]
	for _, p := range peers {
		if l.current(p) && l.peers[p.Index()].connected {
			if l.admit(uint16(p.Index()), flag) {
				l.idx = append(l.idx, uint16(p.Index()))
			}
		} else {
			l.st.SendsRejected++
		}
	}
}

// multicast hands c's packet, shared, to the slots in l.idx.
func (l *loop) multicast(c command) {
	if len(l.idx) == 0 {
		c.pkt.destroy()
		return
	}
	if len(l.idx) > len(l.results) {
		l.results = make([]sent, len(l.idx))
	}
	pkt, err := l.c.packetOf(&c)
	if err != nil {
		l.log.Error("multicast: no packet", zap.Error(err))
		return
	}
	l.c.multicast(l.idx, c.ch, pkt, l.results[:len(l.idx)])
	for i, idx := range l.idx {
		l.handed(idx, c.flag, c.size, l.results[i])
	}
}

// handed accounts for a message handed to the peer in slot idx.
func (l *loop) handed(idx uint16, flag Flag, size int, r sent) {
	s := &l.peers[idx]
	switch r {
	case sentOK:
		l.st.SentByFlag[flag]++
		s.msgsOut++
		s.bytesOut += uint64(size)
		s.queued += size + commandOverhead
	case sentSequence:
		l.st.Dropped++
	default:
		l.st.SendsRejected++
		l.log.Debug("send refused by ENet", zap.Stringer("peer", Peer{h: l.h, id: s.id}))
	}
}

// commandOverhead is what ENet allocates per queued command besides its
// payload, as counted against the outbound limit (an estimate until a walk
// of the queue gives the exact figure).
const commandOverhead = 96

// admit reports whether a message may be queued for the peer in slot idx
// under the outbound limit: while what ENet holds for the peer is below the
// limit, any message is (so one message may take the queue past it). Over
// the limit, unreliable messages are dropped, unless the policy is
// OutboundDisconnect; reliable ones disconnect the peer.
func (l *loop) admit(idx uint16, flag Flag) bool {
	if !l.full(idx) {
		return true
	}
	s := &l.peers[idx]
	if flag != Reliable && l.h.cfg.outPolicy != OutboundDisconnect {
		l.st.Dropped++
		return false
	}
	if s.closing == 0 {
		l.st.PeersOverLimit++
		l.log.Warn("outbound queue over its limit: disconnecting peer", zap.Stringer("peer", Peer{h: l.h, id: s.id}), zap.Stringer("addr", s.addr), zap.Int("queued", s.queued))
		// At once: the queue's memory is back, and a peer this far behind
		// would not acknowledge a disconnection either.
		l.disconnect(idx, disconnectNow, 0, ReasonOutboundLimit)
	}
	return false
}

// full reports whether what ENet holds for the peer in slot idx is at or
// over the outbound limit, walking its queues when the estimate says it may
// be.
func (l *loop) full(idx uint16) bool {
	s := &l.peers[idx]
	limit := l.h.cfg.outLimit
	if s.queued < limit {
		return false
	}
	s.queued = l.c.queuedBytes(idx)
	return s.queued >= limit
}

// unblock walks, at most every 5ms, the queues of the peers whose senders
// wait for room (OutboundWait), publishes them, and wakes the senders of
// those with room.
func (l *loop) unblock() {
	if l.h.waiters.Load() == 0 {
		return
	}
	now := l.c.totals().serviceTime
	if now-l.lastUnblock < 5 {
		return
	}
	l.lastUnblock = now
	limit := int64(l.h.cfg.outLimit)
	room := false
	for i := range l.h.public {
		sl := &l.h.public[i]
		if !sl.blocked.Load() || l.peers[i].id == 0 {
			continue
		}
		q := l.c.queuedBytes(uint16(i))
		l.peers[i].queued = q
		sl.queued.Store(int64(q))
		if int64(q)+sl.inflight.Load() < limit {
			sl.blocked.Store(false)
			room = true
		}
	}
	if room {
		l.h.roomMade()
	}
}

// disconnect starts ending the connection in slot idx. ENet reports no
// event for disconnect_now and reset, so the loop emits it.
func (l *loop) disconnect(idx uint16, w how, data uint32, why Reason) {
	s := &l.peers[idx]
	if !s.connected {
		// Still connecting: ENet would only send a disconnect to a peer that
		// has not answered; drop it and report the failure.
		l.c.peerDisconnect(idx, reset, 0)
		l.ended(idx, ReasonConnectFailed, 0)
		return
	}
	l.c.peerDisconnect(idx, w, data)
	if w == disconnectNow || w == reset {
		l.ended(idx, why, data)
		return
	}
	s.closing = why
	// No more sends: the connection is on its way out.
	l.h.public[idx].channels.Store(0)
}

func (l *loop) connect(to netip.AddrPort, channels int, data uint32) (Peer, error) {
	idx, ok := l.c.connect(to, channels, data)
	if !ok {
		return Peer{}, ErrNoSlot
	}
	if t := l.h.cfg.connectTimeout; t != 0 {
		ms := uint32(t / time.Millisecond)
		l.c.setTimeout(idx, 0, ms, ms)
	}
	p := l.newPeer(idx)
	l.peers[idx].addr = to
	return p, nil
}

// configure gives a new connection the host-wide settings of its options.
func (l *loop) configure(idx uint16) {
	cfg := &l.h.cfg
	if cfg.ping != 0 {
		l.c.setPingInterval(idx, uint32(cfg.ping/time.Millisecond))
	}
	if cfg.timeout != nil {
		limit, mn, mx, _ := cfg.timeout.millis() // checked by WithTimeout
		l.c.setTimeout(idx, limit, mn, mx)
	}
	if cfg.throttle != nil {
		iv, acc, dec, _ := cfg.throttle.millis() // checked by WithThrottle
		l.c.setThrottle(idx, iv, acc, dec)
	}
}

// handle turns ENet's events into Events.
func (l *loop) handle(evs []cevent) {
	for i := range evs {
		e := &evs[i]
		idx := eventPeer(e)
		s := &l.peers[idx]
		switch eventType(e) {
		case cConnect:
			if s.id == 0 {
				if l.h.stopping.Load() {
					l.c.peerDisconnect(idx, disconnectNow, 0) // too late to join
					continue
				}
				l.newPeer(idx) // incoming
			} else if l.h.cfg.connectTimeout != 0 && l.h.cfg.timeout == nil {
				l.c.setTimeout(idx, 0, 0, 0) // outgoing: back to ENet's defaults
			}
			s.connected = true
			s.addr = eventAddr(e)
			l.configure(idx)
			l.h.public[idx].channels.Store(uint32(e.channels))
			l.st.Connects++
			p := Peer{h: l.h, id: s.id}
			l.log.Debug("connect", zap.Stringer("peer", p), zap.Stringer("addr", s.addr))
			l.emit(Event{Kind: EventConnect, Peer: p, Data: uint32(e.data), Channels: int(e.channels), Addr: s.addr})
		case cDisconnect:
			if s.id == 0 {
				continue // reported already (reset by this side)
			}
			why := ReasonTimeout
			switch {
			case !s.connected && e.remote != 0:
				why = ReasonRefused // a netloop host refused it: e.data says why
			case !s.connected:
				why = ReasonConnectFailed
			case e.remote != 0:
				why = ReasonRemote
			case s.closing != 0:
				why = s.closing
			}
			l.ended(idx, why, uint32(e.data))
		case cReceive:
			if s.id == 0 || !s.connected || s.dropping {
				l.st.EventsDropped++
				continue
			}
			flag := flagOf(uint32(e.flags))
			if l.inline == nil && (l.head < len(l.q) || len(l.h.events) == cap(l.h.events)) {
				// It will wait in the queue: within its bounds?
				if l.pending() >= l.h.cfg.maxPending || l.pendingBytes+int(e.length) > l.h.cfg.maxPendingBytes {
					l.overflow(idx, flag)
					continue
				}
			}
			payload := eventPayload(e)
			s.msgsIn++
			s.bytesIn += uint64(len(payload))
			l.st.Receives++
			l.emit(Event{Kind: EventReceive, Peer: Peer{h: l.h, id: s.id}, Channel: uint8(e.channel), Flag: flag, Addr: s.addr, Payload: payload})
		}
	}
	if l.inline != nil {
		l.dispatch()
	}
}

// ended emits the Disconnect event of slot idx and frees it.
func (l *loop) ended(idx uint16, why Reason, data uint32) {
	p, addr := Peer{h: l.h, id: l.peers[idx].id}, l.peers[idx].addr
	l.st.Disconnects++
	l.log.Debug("disconnect", zap.Stringer("peer", p), zap.Stringer("addr", addr), zap.Stringer("reason", why), zap.Uint32("data", data))
	l.free(idx)
	l.emit(Event{Kind: EventDisconnect, Peer: p, Reason: why, Data: data, Addr: addr})
}

// overflow applies the overflow policy to a message that does not fit.
func (l *loop) overflow(idx uint16, flag Flag) {
	l.st.EventsDropped++
	if flag != Reliable || l.h.cfg.slow == SlowDropAll {
		return
	}
	s := &l.peers[idx]
	s.dropping = true
	l.st.PeersDropped++
	l.log.Warn("consumer too slow: disconnecting peer", zap.Stringer("peer", Peer{h: l.h, id: s.id}), zap.Stringer("addr", s.addr), zap.Int("pending", l.pending()))
	l.disconnect(idx, disconnect, 0, ReasonSlow)
}

func (l *loop) pending() int { return len(l.q) - l.head }

// emit delivers ev, or queues it behind those already waiting.
func (l *loop) emit(ev Event) {
	if l.inline != nil {
		l.q = append(l.q, ev) // for dispatch, after the current call
		return
	}
	l.fresh = true
	if l.head == len(l.q) {
		select {
		case l.h.events <- ev:
			return
		default:
		}
	}
	l.q = append(l.q, ev)
	l.pendingBytes += len(ev.Payload)
}

// deliver moves waiting events into the channel as far as it has room.
func (l *loop) deliver() {
	if l.inline != nil {
		l.dispatch()
		return
	}
	for l.head < len(l.q) {
		select {
		case l.h.events <- l.q[l.head]:
			l.pendingBytes -= len(l.q[l.head].Payload)
			l.q[l.head] = Event{}
			l.head++
		default:
			if l.head >= len(l.q)/2 { // compact: memory follows the backlog, not the events since it began
				n := copy(l.q, l.q[l.head:])
				clear(l.q[n:])
				l.q, l.head = l.q[:n], 0
			}
			return
		}
	}
	l.q, l.head = l.q[:0], 0
}

// account folds ENet's 32-bit totals of the last pump into 64-bit counters.
func (l *loop) account() {
	t := l.c.totals()
	l.st.SentBytes += uint64(t.sentData)
	l.st.SentDatagrams += uint64(t.sentPackets)
	l.st.ReceivedBytes += uint64(t.receivedData)
	l.st.ReceivedDatagrams += uint64(t.receivedPackets)
	l.st.ServiceTime = t.serviceTime
	l.st.ConnectedPeers = int(t.connected)
	l.st.Iterations++
	if l.c.serviceFailed() {
		// 1.3.17 fails a service call for any datagram over 4096 bytes,
		// which anyone can send. The datagram is consumed; go on.
		if n := l.c.serviceErrors(); n&(n-1) == 0 {
			l.log.Warn("enet_host_service failed (oversized or bad datagram?)", zap.Uint64("count", n))
		}
	}
}

func (l *loop) stats() Stats {
	s := l.st
	s.Iteration, s.Service = s.Iteration.clone(), s.Service.clone()
	s.PeerCount = len(l.peers)
	s.PendingEvents = l.pending()
	s.QueuedCommands = len(l.h.cmds)
	s.PendingBytes = l.pendingBytes
	c := l.c.counters()
	s.Malformed, s.ServiceErrors, s.Wakes, s.HeldAcks = c.malformed, c.serviceErrors, c.wakes, c.heldAcks
	s.Reads, s.Writes = c.reads, c.writes
	s.HalfOpen = l.c.halfOpen()
	s.HalfOpenEvicted = c.evicted
	s.ConnectsRefused, s.ConnectsRefusedAddress = c.refusedFull, c.refusedAddress
	s.Throttled = c.throttled
	s.Dropped += c.sequenceDrops
	s.SocketReceiveBuffer, s.SocketSendBuffer, _ = l.c.socketBuffers(0, 0)
	return s
}

func (l *loop) peerInfo(idx uint16) PeerInfo {
	info := l.c.peerInfo(idx)
	s := &l.peers[idx]
	info.Peer = Peer{h: l.h, id: s.id}
	info.BytesSent, info.BytesReceived = s.bytesOut, s.bytesIn
	info.MessagesSent, info.MessagesReceived = s.msgsOut, s.msgsIn
	info.QueuedBytes = l.c.queuedBytes(idx)
	info.Throttled = l.c.throttled(idx)
	if !info.Addr.Addr().IsValid() || info.Addr.Port() == 0 {
		info.Addr = s.addr
	}
	return info
}

// shutdown stops taking commands, runs those accepted, disconnects every
// peer gracefully, waits for them within the drain timeout, delivers the
// remaining events within the same bound, and destroys the host.
func (l *loop) shutdown() {
	h := l.h
	h.stopping.Store(true)
	close(h.stop)
	// A caller that saw stopping == false may still be pushing: wait for it.
	for h.senders.Load() > 0 || len(h.cmds) > 0 {
		if l.runCommands(len(h.cmds)+1) == 0 {
			runtime.Gosched()
		}
	}
	for i := range l.peers {
		if l.peers[i].id != 0 && l.peers[i].closing == 0 {
			l.disconnect(uint16(i), disconnectLater, 0, ReasonShutdown)
		}
	}
	deadline := time.Now().Add(h.cfg.drain)
	for l.live > 0 && time.Now().Before(deadline) {
		l.deliver()
		l.c.park(5)
		l.handle(l.c.pump())
		l.account()
	}
	for i := range l.peers {
		if l.peers[i].id != 0 {
			l.c.peerDisconnect(uint16(i), disconnectNow, 0)
			l.ended(uint16(i), ReasonShutdown, 0)
		}
	}
	if l.inline != nil {
		l.dispatch() // while the ENet host lives: the handler may still call Inline
	}
	l.c.flush()
	final := l.stats()
	h.final.Store(&final)
	l.c.destroy()
	// The last events, the Disconnects above among them, get a window of
	// their own: a consumer that still reads receives them all, however
	// long the peers took; one that stopped costs at most the drain timeout.
	if l.pending() > 0 {
		t := time.NewTimer(h.cfg.drain)
		defer t.Stop()
		for l.head < len(l.q) {
			select {
			case h.events <- l.q[l.head]:
				l.head++
				continue
			default:
			}
			select {
			case h.events <- l.q[l.head]:
				l.head++
			case <-t.C:
				l.log.Warn("events not delivered at shutdown: consumer stopped reading", zap.Int("events", l.pending()))
				return
			}
		}
	}
}

// ENet's global initialisation, counted so that hosts can come and go.
var (
	initMu    sync.Mutex
	initCount int
)

func initialize() error {
	initMu.Lock()
	defer initMu.Unlock()
	if initCount == 0 {
		if err := enetInit(); err != nil {
			return err
		}
	}
	initCount++
	return nil
}

func deinitialize() {
	initMu.Lock()
	defer initMu.Unlock()
	if initCount--; initCount == 0 {
		enetDeinit()
	}
}

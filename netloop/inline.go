package netloop

import (
	"runtime/debug"

	"go.uber.org/zap"
)

// InlineFunc is an inline handler: the loop calls it for each event, on
// the loop's goroutine, in place of delivering the event on Events.
type InlineFunc func(in *Inline, ev Event)

// WithInline makes fn the host's inline handler (see Inline): the loop
// calls fn for each event, in order, on its own goroutine, instead of
// delivering events on Events, which then carries nothing and is closed
// when Run returns. Host.SetInline does the same after New.
func WithInline(fn InlineFunc) Option { return func(c *config) { c.inline = fn } }

// SetInline makes fn the host's inline handler, as WithInline does; nil
// restores delivery on Events. It returns ErrRunning once Run has started
// and ErrClosed once the host is closed: the mode is chosen before the loop
// runs. It is safe for concurrent use.
func (h *Host) SetInline(fn InlineFunc) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.state.canRun(); err != nil {
		return err
	}
	h.cfg.inline = fn
	return nil
}

// Inline is the loop's side of a host, handed to an inline handler for the
// duration of one call. Its methods act at once, in the loop: a send is
// handed to ENet before Send returns and goes out in the loop's next service
// call, with no command, no channel and no wake-up on the way; a
// disconnection's Disconnect event is handed to the handler after the
// current call returns, never inside it.
//
// An Inline is valid only during the call it was handed to, and only on the
// loop's goroutine: once the call returns, every method returns
// ErrInlineDone; it must not be passed to another goroutine (that is a
// data race, and the race detector reports it).
//
// The handler must not block: while it runs, the host reads nothing, sends
// nothing and answers no command, so a handler that blocks for longer than
// ENet's timeouts (5 to 30 seconds) loses every peer of the host, and one
// that waits for the loop (Host.Stats, PeerInfo, Flush, Connect, or a Send
// on a full command channel) would wait forever: those return
// ErrLoopGoroutine instead. A Host.Send with room in the command channel
// works, but is run only after the handler returns; Inline.Send is the
// cheap way. A handler that panics is recovered: the panic is logged with
// its stack and the event's peer, if still connected, is disconnected
// (ReasonLocal).
//
// With OutboundWait, Inline.Send does not wait: it behaves as with
// OutboundDrop.
type Inline struct {
	l      *loop
	active bool
}

// Yield asks the loop to yield its processor to other goroutines once it
// has handled the current batch of events, and again before it waits for
// more. A handler that hands events to other goroutines (channel sends
// that wake them) calls it, so that they run at once, on the loop's
// processor, and what they send goes out in the loop's next service call.
// A handler that answers everything itself does not: at GOMAXPROCS > 1
// each yield hands the loop goroutine to another thread (a futex wake-up
// and a context switch), which costs more than it saves. Yield does
// nothing once the call has returned.
func (in *Inline) Yield() {
	if in.active {
		in.l.fresh, in.l.yielded = true, true
	}
}

// Host returns the host whose loop this is.
func (in *Inline) Host() *Host { return in.l.h }

func (in *Inline) loop() (*loop, error) {
	if !in.active {
		return nil, ErrInlineDone
	}
	in.l.acted++
	return in.l, nil
}

// Send hands data for p on channel ch to ENet; see Host.Send for the
// errors, the outbound limit and fragmentation. It copies data and retains
// nothing. It never waits.
func (in *Inline) Send(p Peer, ch uint8, data []byte, flag Flag) error {
	l, err := in.loop()
	if err != nil {
		return err
	}
	if _, err := l.h.checkSend(p, ch, data, flag); err != nil {
		return err
	}
	idx := uint16(p.Index())
	if !l.admit(idx, flag) {
		return nil // dropped, or the peer disconnected, by the outbound policy
	}
	c := command{op: opSend, peer: p, ch: ch, flag: flag}
	if err := c.setMessage(data); err != nil {
		return err
	}
	l.handed(idx, flag, c.size, l.c.send(idx, &c))
	return nil
}

// Broadcast hands data to every connected peer, in one ENet packet that
// they share, as Host.Broadcast does.
func (in *Inline) Broadcast(ch uint8, data []byte, flag Flag) error {
	return in.multi(opBroadcast, nil, ch, data, flag)
}

// Multicast hands data to each of peers, in one ENet packet that they
// share, as Host.Multicast does. It retains neither peers nor data.
func (in *Inline) Multicast(peers []Peer, ch uint8, data []byte, flag Flag) error {
	if len(peers) == 0 {
		_, err := in.loop()
		return err
	}
	return in.multi(opMulticast, peers, ch, data, flag)
}

func (in *Inline) multi(o op, peers []Peer, ch uint8, data []byte, flag Flag) error {
	l, err := in.loop()
	if err != nil {
		return err
	}
	if l.h.stopping.Load() {
		return ErrClosed
	}
	if err := checkMulti(ch, data, flag); err != nil {
		return err
	}
	c := command{op: o, ch: ch, flag: flag}
	if err := c.setMessage(data); err != nil {
		return err
	}
	if o == opMulticast {
		l.multicastTo(peers, c)
		return nil
	}
	l.exec(c)
	return nil
}

// Disconnect asks p to disconnect, as Host.Disconnect does.
func (in *Inline) Disconnect(p Peer, data uint32) error { return in.disconnect(p, disconnect, data) }

// DisconnectLater disconnects p once everything queued for it is
// delivered, as Host.DisconnectLater does.
func (in *Inline) DisconnectLater(p Peer, data uint32) error {
	return in.disconnect(p, disconnectLater, data)
}

// DisconnectNow disconnects p at once, as Host.DisconnectNow does. Its
// Disconnect event comes to the handler after the current call.
func (in *Inline) DisconnectNow(p Peer, data uint32) error {
	return in.disconnect(p, disconnectNow, data)
}

// Reset drops p without telling it, as Host.Reset does. Its Disconnect
// event comes to the handler after the current call.
func (in *Inline) Reset(p Peer) error { return in.disconnect(p, reset, 0) }

func (in *Inline) disconnect(p Peer, w how, data uint32) error {
	l, err := in.loop()
	if err != nil {
		return err
	}
	if err := l.h.check(p); err != nil {
		return err
	}
	l.exec(command{op: opDisconnect, peer: p, how: w, data: data})
	return nil
}

// dispatch hands the waiting events to the inline handler, in order,
// those its calls cause included.
func (l *loop) dispatch() {
	for l.head < len(l.q) {
		ev := l.q[l.head]
		l.q[l.head] = Event{}
		l.head++
		l.call(ev)
	}
	l.q, l.head = l.q[:0], 0
}

// call runs the inline handler for ev.
func (l *loop) call(ev Event) {
	defer func() {
		l.in.active = false
		if r := recover(); r != nil {
			l.log.Error("inline handler panicked", zap.Stringer("kind", ev.Kind), zap.Stringer("peer", ev.Peer), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			if ev.Kind != EventDisconnect && l.current(ev.Peer) && l.peers[ev.Peer.Index()].closing == 0 {
				l.disconnect(uint16(ev.Peer.Index()), disconnect, 0, ReasonLocal)
			}
		}
	}()
	l.in.active = true
	l.inline(&l.in, ev)
}

// onLoop reports whether the caller runs on the goroutine of an inline
// loop, where a call that waits for the loop would wait forever. It is for
// paths that are about to wait: it reads the goroutine's stack header.
func (h *Host) onLoop() bool {
	g := h.loopG.Load()
	return g != 0 && g == goid()
}

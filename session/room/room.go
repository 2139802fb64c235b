package room

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// Tick rates a room may run at.
const (
	MinTickRate = 1
	MaxTickRate = 128
)

// MaxCatchUp is how many missed ticks a room that fell behind runs back to
// back after the one that was due: the rest are skipped (counted in
// Stats.Skipped) and the room keeps its phase, so a stall costs at most
// MaxCatchUp extra ticks of burst and never a growing backlog.
const MaxCatchUp = 3

// Config is what a room's Init returns.
type Config struct {
	// TickRate is the simulation rate, MinTickRate..MaxTickRate Hz.
	TickRate int
	// SnapshotEvery sets Tick.Snapshot on every n-th tick (0 or 1: every
	// tick), so snapshots can go out at a lower rate than the simulation
	// runs.
	SnapshotEvery int
	// MaxMembers caps the room's seats (0: the server's default).
	MaxMembers int
	// Label describes the room in listings (List); SetLabel changes it.
	Label string
}

// Errors of rooms and of their server.
var (
	// ErrConfig: Init returned a Config out of range.
	ErrConfig = errors.New("room: bad config")
	// ErrNoRoom: no room with that ID, or it has closed.
	ErrNoRoom = errors.New("room: no such room")
	// ErrFull: the room has no free seat.
	ErrFull = errors.New("room: room is full")
	// ErrLocked: the room is locked against new members.
	ErrLocked = errors.New("room: room is locked")
	// ErrUnknownKind: no room kind registered under that name.
	ErrUnknownKind = errors.New("room: unknown room kind")
	// ErrClosed: the server has shut down or is shutting down.
	ErrClosed = errors.New("room: server closed")
	// ErrNotMember: the member has left its room.
	ErrNotMember = errors.New("room: not a member")
)

// Handler is a room's game logic, in the manner of Nakama's match handler.
// The server creates one Handler per room (the kind's factory) and calls
// all its methods from the room's one goroutine, one at a time: the
// Handler's fields are the room's state and need no lock. Embed Base for
// no-op defaults of everything but Init and Tick.
type Handler interface {
	// Init configures a new room, with the parameters of the join that
	// created it. An error refuses that join; the room is not created.
	// Init runs while the server holds its registry (so that concurrent
	// joins fill one room rather than create several): keep it short, and
	// do not call the Server's methods from it.
	Init(r *Room, params map[string]string) (Config, error)
	// JoinAttempt decides whether p may take a seat. A non-nil error
	// refuses the join, and its text is the reason the client sees.
	JoinAttempt(r *Room, p *Player, meta map[string]string) error
	// Join tells of a new member, once it has its seat (and the member has
	// been sent its Joined message).
	Join(r *Room, m *Member)
	// Leave tells of a member that left, and why; m.Data is still the
	// member's.
	Leave(r *Room, m *Member, why LeaveReason)
	// Dropped tells of a member whose connection was lost: its seat and
	// state are kept for the server's reconnection window.
	Dropped(r *Room, m *Member)
	// Back tells of a dropped member that reconnected to its seat.
	Back(r *Room, m *Member)
	// Tick advances the simulation by one fixed step.
	Tick(r *Room, t *Tick)
	// Signal answers a request from outside the room (Server.Signal).
	Signal(r *Room, data any) (any, error)
	// Terminate is the room's last call, when the server shuts down
	// (grace is how long the room has left; messages it sends are
	// delivered) or when the room closes (grace 0).
	Terminate(r *Room, grace time.Duration)
}

// Base gives a Handler no-op hooks: accept every join, ignore the rest.
// Embed it and write Init, Tick and the hooks you need.
type Base struct{}

// JoinAttempt accepts every player.
func (Base) JoinAttempt(*Room, *Player, map[string]string) error { return nil }

// Join does nothing.
func (Base) Join(*Room, *Member) {}

// Leave does nothing.
func (Base) Leave(*Room, *Member, LeaveReason) {}

// Dropped does nothing.
func (Base) Dropped(*Room, *Member) {}

// Back does nothing.
func (Base) Back(*Room, *Member) {}

// Signal answers nil.
func (Base) Signal(*Room, any) (any, error) { return nil, nil }

// Terminate does nothing.
func (Base) Terminate(*Room, time.Duration) {}

// LeaveReason says why a member left its room.
type LeaveReason uint8

const (
	// LeaveRequested: the player asked to leave, or disconnected deliberately.
	LeaveRequested LeaveReason = iota + 1
	// LeaveTimeout: the player stopped answering while the server keeps no
	// seats for reconnection (a zero window).
	LeaveTimeout
	// LeaveKicked: the room kicked the member (Room.Kick).
	LeaveKicked
	// LeaveExpired: the member dropped and did not come back within the
	// reconnection window.
	LeaveExpired
	// LeaveClosed: the room closed (Room.Close, or server shutdown).
	LeaveClosed
)

var leaveNames = [...]string{"", "left", "timed_out", "kicked", "expired", "closed"}

// String names the reason, as clients and metrics see it.
func (r LeaveReason) String() string {
	if int(r) < len(leaveNames) && r > 0 {
		return leaveNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Tick is one step of a room's simulation. It is valid only during the
// Tick call.
type Tick struct {
	N        uint64        // 1 for the first tick
	Dt       time.Duration // the fixed step, 1/TickRate
	Time     time.Time     // when the tick was due (the room's clock)
	Elapsed  time.Duration // time since the previous tick began, as it happened
	Snapshot bool          // a snapshot is due (Config.SnapshotEvery)
	// Inputs are the members' messages registered with Input that arrived
	// since the previous tick, in arrival order (so in order per member).
	Inputs []Input
}

// Input is one message of a member to its room.
type Input struct {
	Member *Member
	Type   uint32 // the route's message type
	Value  any    // the decoded value, of the route's Go type
	At     time.Time
}

// Player is a connected identity, independent of any one connection: a
// player that reconnects with its token is the same Player.
type Player struct {
	ID    uint64 // issued by the server, never reused while it runs; read-only
	Name  string // as the player said in Hello, or the server's choice; read-only
	token string

	sess atomic.Pointer[session.Session] // current connection, nil while dropped
	seat atomic.Pointer[Member]          // current room membership, nil if none
}

// Session returns the player's current session, nil while it is dropped.
func (p *Player) Session() *session.Session { return p.sess.Load() }

// Member is a player's seat in a room. Its fields are the room's: read and
// write them only from the room's hooks.
type Member struct {
	Player *Player
	Seat   int // 0..MaxMembers-1, kept across reconnections
	// Data is the room's per-member state (position, score...), kept
	// across reconnections.
	Data any

	room    *Room
	sess    *session.Session // nil while dropped
	gone    bool
	dropped time.Time // when the connection was lost; zero if connected
	exp     *timer    // the reconnection window
}

// Room returns the member's room.
func (m *Member) Room() *Room { return m.room }

// Connected reports whether the member has a live connection (it has not
// dropped).
func (m *Member) Connected() bool { return m.sess != nil }

// Left reports whether the member has left the room.
func (m *Member) Left() bool { return m.gone }

func (m *Member) info() MemberInfo {
	return MemberInfo{Player: m.Player.ID, Name: m.Player.Name, Seat: m.Seat, Dropped: m.sess == nil}
}

// Send queues data for the member alone; it leaves with everything else
// the current hook sends, after the hook returns. Call it only from the
// room's hooks. A dropped member's messages are discarded. Send retains
// data until then; it must not be modified.
func (m *Member) Send(_ context.Context, ch uint8, data []byte, flag netloop.Flag) error {
	if m.gone {
		return ErrNotMember
	}
	if m.sess != nil {
		m.room.queue(outMsg{to: m, ch: ch, flag: flag, data: data})
	}
	return nil
}

// Room is one running room. Its methods may be called only from its own
// hooks (the room's goroutine), except ID, Kind and Server.
type Room struct {
	srv  *Server
	id   string
	kind *kind
	h    Handler
	log  *zap.Logger

	ctx      context.Context
	cfg      Config
	period   time.Duration
	ops      chan func() // to the room's goroutine: joins, drops, signals
	inMu     sync.Mutex
	inbox    []Input // arrived since the last tick; swapped with spare at each tick
	inLimit  int
	inDrop   atomic.Int64
	stopping chan struct{} // closed by Close: the room's goroutine ends

	// Owned by the room's goroutine.
	members []*Member // by seat; nil is a free seat
	count   int       // members present, connected or dropped
	spare   []Input
	out     []outMsg
	timers  timerHeap
	now     time.Time
	tickN   uint64
	closing bool
	listed  bool // registered with the server: Init has returned
	locked  bool
	empty   *timer
	stats   Stats
}

// Stats are a room's counters.
type Stats struct {
	Ticks         uint64 // ticks run
	Overruns      uint64 // ticks that began a whole step or more late
	Skipped       uint64 // ticks dropped after MaxCatchUp
	Inputs        uint64 // inputs delivered to Tick
	InputsDropped uint64 // inputs over the inbox limit, not delivered
}

type outMsg struct {
	to     *Member // nil: every connected member but except
	except *Member
	ch     uint8
	flag   netloop.Flag
	data   []byte
}

// ID returns the room's ID, unique on its server.
func (r *Room) ID() string { return r.id }

// Kind returns the name the room's kind was registered under.
func (r *Room) Kind() string { return r.kind.name }

// Server returns the room's server.
func (r *Room) Server() *Server { return r.srv }

// Context is cancelled when the room ends.
func (r *Room) Context() context.Context { return r.ctx }

// Logger returns the room's logger.
func (r *Room) Logger() *zap.Logger { return r.log }

// Now returns the room's clock: the time the current tick was due, or the
// time the current hook began.
func (r *Room) Now() time.Time { return r.now }

// TickRate returns the room's tick rate in Hz.
func (r *Room) TickRate() int { return r.cfg.TickRate }

// Members returns the room's members by seat; nil entries are free seats.
// The slice is the room's: do not modify or keep it.
func (r *Room) Members() []*Member { return r.members }

// Count returns how many members the room has, connected or dropped.
func (r *Room) Count() int { return r.count }

// Stats returns the room's counters.
func (r *Room) Stats() Stats {
	s := r.stats
	s.InputsDropped = uint64(r.inDrop.Load())
	return s
}

// SetLabel changes the room's label in listings.
func (r *Room) SetLabel(label string) {
	r.cfg.Label = label
	if r.listed {
		r.srv.update(r, func(e *entry) { e.info.Label = label })
	}
}

// SetLocked locks the room against new members (reconnections still
// come back to their seats), or unlocks it.
func (r *Room) SetLocked(locked bool) {
	r.locked = locked
	if r.listed {
		r.srv.update(r, func(e *entry) { e.info.Locked = locked })
	}
}

// Broadcast queues data for every connected member; it leaves as one ENet
// packet they share (netloop.Host.Multicast) after the current hook
// returns. Call it only from the room's hooks. data must not be modified
// afterwards. It implements dispatch.Broadcaster, so
// route.Broadcast(ctx, r, v) works.
func (r *Room) Broadcast(_ context.Context, ch uint8, data []byte, flag netloop.Flag) error {
	r.queue(outMsg{ch: ch, flag: flag, data: data})
	return nil
}

// Except returns a dispatch.Broadcaster that reaches every connected
// member but m.
func (r *Room) Except(m *Member) dispatch.Broadcaster { return except{r, m} }

type except struct {
	r *Room
	m *Member
}

func (e except) Broadcast(_ context.Context, ch uint8, data []byte, flag netloop.Flag) error {
	e.r.queue(outMsg{except: e.m, ch: ch, flag: flag, data: data})
	return nil
}

func (r *Room) queue(m outMsg) { r.out = append(r.out, m) }

// Kick removes m from the room (LeaveKicked); the player is told with a
// Left message and keeps its connection.
func (r *Room) Kick(m *Member) {
	if m.room == r && !m.gone {
		r.leave(m, LeaveKicked)
	}
}

// Close ends the room after the current hook: members leave with
// LeaveClosed, Terminate runs with grace 0, and the room is removed.
func (r *Room) Close() {
	r.closing = true
}

// After runs f in the room's goroutine once the room's clock has passed d
// from now; timers are checked before every tick and after every hook, so
// they fire with tick resolution at worst. The Timer can be stopped.
func (r *Room) After(d time.Duration, f func()) *Timer {
	t := &timer{at: r.now.Add(d), f: f}
	heap.Push(&r.timers, t)
	return &Timer{t: t}
}

// Timer is a pending call of Room.After.
type Timer struct{ t *timer }

// Stop keeps the timer from firing; it reports whether it was pending.
// Call it only from the room's hooks.
func (t *Timer) Stop() bool {
	was := !t.t.done
	t.t.done = true
	return was
}

type timer struct {
	at   time.Time
	f    func()
	done bool
	i    int
}

type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].i = i; h[j].i = j }
func (h *timerHeap) Push(x any)        { t := x.(*timer); t.i = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// fire runs the timers due at now.
func (r *Room) fire(now time.Time) {
	for len(r.timers) > 0 && !r.timers[0].at.After(now) {
		t := heap.Pop(&r.timers).(*timer)
		if !t.done {
			t.done = true
			r.now = t.at
			t.f()
		}
	}
}

// push hands an input from a session goroutine to the room. Over the
// inbox limit the input is dropped and counted.
func (r *Room) push(in Input) {
	r.inMu.Lock()
	if len(r.inbox) >= r.inLimit {
		r.inMu.Unlock()
		r.inDrop.Add(1)
		return
	}
	r.inbox = append(r.inbox, in)
	r.inMu.Unlock()
}

// do runs f in the room's goroutine and waits until it has run. It fails
// with ErrNoRoom if the room has ended, and with ctx's error if ctx ends
// first (f may still run).
func (r *Room) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	if err := r.hand(ctx, func() { f(); close(done) }); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-r.stopping:
		select {
		case <-done: // f ran, then the room ended
			return nil
		default:
			return fmt.Errorf("%w: %s", ErrNoRoom, r.id)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hand gives f to the room's goroutine, which runs it at once: once hand
// has returned nil, f runs, whatever happens to ctx. It fails with
// ErrNoRoom if the room has ended, and with ctx's error if ctx ends first
// (f does not run).
func (r *Room) hand(ctx context.Context, f func()) error {
	select {
	case r.ops <- f:
		return nil
	case <-r.stopping:
		return fmt.Errorf("%w: %s", ErrNoRoom, r.id)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// post runs f in the room's goroutine without waiting for it; false if the
// room has ended.
func (r *Room) post(ctx context.Context, f func()) bool {
	select {
	case r.ops <- f:
		return true
	case <-r.stopping:
	case <-ctx.Done():
	}
	return false
}

// run is the room's goroutine: ticks on absolute deadlines, ops between
// them, and the end.
func (r *Room) run(ctx context.Context) {
	defer close(r.stopping)
	start := time.Now()
	next := start.Add(r.period)
	last := start
	clk, a := r.srv.clock, newAlarm()
	clk.set(a, next)
	defer clk.stop(a)
	for !r.closing {
		select {
		case <-ctx.Done():
			r.terminate(r.srv.grace, "shutdown")
			return
		case f := <-r.ops:
			r.now = time.Now()
			f()
			r.fire(r.now)
			r.flush()
		case <-a.c:
			now := time.Now()
			for n := 0; !next.After(now); n++ {
				if n > MaxCatchUp {
					skip := now.Sub(next)/r.period + 1
					r.stats.Skipped += uint64(skip)
					next = next.Add(skip * r.period)
					break
				}
				began := time.Now()
				r.step(next, began.Sub(last), began.Sub(next))
				last = began
				next = next.Add(r.period)
				now = time.Now()
			}
			clk.set(a, next)
		}
	}
	r.terminate(0, "closed")
}

// step runs one tick due at due; late is how late it began.
func (r *Room) step(due time.Time, elapsed, late time.Duration) {
	r.now = due
	r.fire(due)
	r.inMu.Lock()
	batch := r.inbox
	r.inbox = r.spare[:0]
	r.inMu.Unlock()
	// Inputs of members that have left since they were sent are not the
	// room's business any more.
	kept := batch[:0]
	for _, in := range batch {
		if !in.Member.gone {
			kept = append(kept, in)
		}
	}
	r.tickN++
	every := max(r.cfg.SnapshotEvery, 1)
	t := Tick{N: r.tickN, Dt: r.period, Time: due, Elapsed: elapsed,
		Snapshot: r.tickN%uint64(every) == 0, Inputs: kept}
	began := time.Now()
	r.h.Tick(r, &t)
	took := time.Since(began)
	r.stats.Ticks++
	if late >= r.period {
		r.stats.Overruns++
	}
	r.stats.Inputs += uint64(len(kept))
	clear(batch) // drop references to values and members
	r.spare = batch[:0]
	r.flush()
	if o := r.srv.obs; o != nil {
		o.Ticked(r.kind.name, TickInfo{Room: r.id, Due: due, Late: late, Duration: took, Inputs: len(kept), Overrun: late >= r.period})
	}
}

// flush sends what the last hook queued, in order.
func (r *Room) flush() {
	host := r.srv.host
	for i, o := range r.out {
		var err error
		switch {
		case o.to != nil:
			if o.to.sess != nil {
				err = o.to.sess.Send(r.srv.ctx, o.ch, o.data, o.flag)
			}
		default:
			peers := make([]netloop.Peer, 0, r.count)
			for _, m := range r.members {
				if m != nil && m.sess != nil && m != o.except {
					peers = append(peers, m.sess.Peer())
				}
			}
			err = host.Multicast(r.srv.ctx, peers, o.ch, o.data, o.flag)
		}
		if err != nil && !errors.Is(err, session.ErrEnded) {
			r.log.Debug("send", zap.Error(err))
		}
		r.out[i] = outMsg{}
	}
	r.out = r.out[:0]
}

// seatFree returns the first free seat, or -1.
func (r *Room) seatFree() int {
	for i, m := range r.members {
		if m == nil {
			return i
		}
	}
	return -1
}

func (r *Room) memberInfos() []MemberInfo {
	out := make([]MemberInfo, 0, r.count)
	for _, m := range r.members {
		if m != nil {
			out = append(out, m.info())
		}
	}
	return out
}

// join seats p (in the room's goroutine) if the room and its handler
// accept; the error is the reason the client sees.
func (r *Room) join(p *Player, s *session.Session, req JoinMsg) error {
	if p.sess.Load() != s {
		return errors.New("room: connection replaced")
	}
	seat := r.seatFree()
	if seat < 0 {
		return ErrFull
	}
	if err := r.h.JoinAttempt(r, p, req.Meta); err != nil {
		return err
	}
	m := &Member{Player: p, Seat: seat, room: r, sess: s}
	if !p.seat.CompareAndSwap(nil, m) {
		return errors.New("room: already in a room")
	}
	r.members[seat] = m
	r.count++
	r.stopEmpty()
	r.sendJoined(m, req.Req, false)
	r.memberEvent(m, EventJoined, "")
	r.h.Join(r, m)
	if o := r.srv.obs; o != nil {
		o.MemberJoined(r.kind.name)
	}
	return nil
}

func (r *Room) sendJoined(m *Member, req uint32, resumed bool) {
	msg := JoinedMsg{Req: req, Room: r.id, Kind: r.kind.name, Label: r.cfg.Label, Seat: m.Seat,
		TickHz: r.cfg.TickRate, Resumed: resumed, Members: r.memberInfos()}
	if err := Joined.Send(r.ctx, m, msg); err != nil {
		r.log.Debug("joined", zap.Error(err))
	}
}

func (r *Room) memberEvent(m *Member, event, reason string) {
	msg := MemberMsg{Room: r.id, Event: event, Reason: reason, Member: m.info()}
	if err := MemberChanged.Broadcast(r.ctx, r.Except(m), msg); err != nil {
		r.log.Debug("member event", zap.Error(err))
	}
}

// leave removes m from the room.
func (r *Room) leave(m *Member, why LeaveReason) {
	if m.gone {
		return
	}
	if m.exp != nil {
		m.exp.done = true
	}
	if m.sess != nil {
		if err := Left.Send(r.ctx, m, LeftMsg{Room: r.id, Reason: why.String()}); err != nil {
			r.log.Debug("left", zap.Error(err))
		}
	}
	m.gone = true
	r.members[m.Seat] = nil
	r.count--
	m.Player.seat.CompareAndSwap(m, nil)
	// The player's token dies before anyone hears of the leave: a client
	// told "expired" must not resume with it.
	r.srv.release(r, m.Player)
	r.memberEvent(m, EventLeft, why.String())
	r.h.Leave(r, m, why)
	if o := r.srv.obs; o != nil {
		o.MemberLeft(r.kind.name, why)
	}
	if r.count == 0 {
		r.startEmpty()
	}
}

// drop marks m as disconnected if s is still its connection; the seat is
// kept for the reconnection window.
func (r *Room) drop(m *Member, s *session.Session) {
	if m.gone || m.sess != s {
		return
	}
	if r.srv.window <= 0 {
		r.leave(m, LeaveTimeout)
		return
	}
	m.sess = nil
	m.dropped = r.now
	r.memberEvent(m, EventDropped, "")
	r.h.Dropped(r, m)
	if o := r.srv.obs; o != nil {
		o.MemberDropped(r.kind.name)
	}
	m.exp = r.After(r.srv.window, func() {
		if m.sess == nil {
			r.leave(m, LeaveExpired)
		}
	}).t
}

// back gives m its new connection s.
func (r *Room) back(m *Member, s *session.Session) {
	if m.gone {
		return
	}
	was := m.sess
	m.sess = s
	if m.exp != nil {
		m.exp.done = true
		m.exp = nil
	}
	r.sendJoined(m, 0, true)
	if was == nil {
		m.dropped = time.Time{}
		r.memberEvent(m, EventBack, "")
		r.h.Back(r, m)
		if o := r.srv.obs; o != nil {
			o.MemberBack(r.kind.name)
		}
	}
}

func (r *Room) startEmpty() {
	r.stopEmpty()
	r.empty = r.After(r.srv.emptyGrace, func() {
		switch {
		case r.count > 0:
		case r.srv.held(r) > 0:
			r.startEmpty() // a seat is reserved: its player is on the way
		default:
			r.closing = true
		}
	}).t
}

func (r *Room) stopEmpty() {
	if r.empty != nil {
		r.empty.done = true
		r.empty = nil
	}
}

// terminate ends the room: no more joins, Terminate runs, the members are
// told and leave, and what they were sent is flushed.
func (r *Room) terminate(grace time.Duration, reason string) {
	r.srv.unlist(r)
	r.now = time.Now()
	r.h.Terminate(r, grace)
	for _, m := range r.members {
		if m == nil {
			continue
		}
		if m.sess != nil {
			if err := Left.Send(r.ctx, m, LeftMsg{Room: r.id, Reason: reason}); err != nil {
				r.log.Debug("left", zap.Error(err))
			}
		}
		m.gone = true
		m.Player.seat.CompareAndSwap(m, nil)
		r.h.Leave(r, m, LeaveClosed)
		r.srv.release(r, m.Player)
		if o := r.srv.obs; o != nil {
			o.MemberLeft(r.kind.name, LeaveClosed)
		}
	}
	clear(r.members)
	r.count = 0
	r.flush()
}

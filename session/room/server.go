package room

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
	"github.com/enetkit/enetkit/session/cluster"
)

// ErrOption: an option's value is out of range.
var ErrOption = errors.New("room: option out of range")

// Observer is told what happens in rooms (package metrics implements it).
// Its methods are called from room and session goroutines and must not
// block.
type Observer interface {
	RoomOpened(kind string)
	RoomClosed(kind string)
	MemberJoined(kind string)
	MemberLeft(kind string, why LeaveReason)
	MemberDropped(kind string)
	MemberBack(kind string)
	Ticked(kind string, t TickInfo)
}

// TickInfo describes one tick, for an Observer.
type TickInfo struct {
	Room     string        // the room's ID
	Due      time.Time     // the tick's deadline
	Late     time.Duration // how long after its deadline the tick began
	Duration time.Duration // how long the Tick hook ran
	Inputs   int           // inputs in the tick's batch
	Overrun  bool          // the tick began a whole step or more late
}

// Info describes a room in listings.
type Info struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	Label      string `json:"label,omitempty"`
	Members    int    `json:"members"` // seats taken or reserved for joins in progress
	MaxMembers int    `json:"max_members"`
	TickRate   int    `json:"tick_hz"`
	Locked     bool   `json:"locked,omitempty"`
	// Node and Addr, in a cluster (WithCluster): the room's node and the
	// ENet address its players connect to.
	Node string `json:"node,omitempty"`
	Addr string `json:"addr,omitempty"`
}

type kind struct {
	name    string
	factory func() Handler
}

type entry struct {
	r    *Room
	info Info
}

// Server runs rooms for the players of a session server: it identifies
// players, seats them in rooms of registered kinds, routes their inputs to
// their rooms, and keeps the seats of dropped players for the
// reconnection window. Create it with New, register kinds and input routes
// before Run, and run it with Run.
type Server struct {
	host *netloop.Host
	sess *session.Server
	mux  *dispatch.Mux
	log  *zap.Logger
	obs  Observer

	window, liveness, emptyGrace, grace time.Duration
	throttle                            *netloop.Throttle
	maxMembers, inputLimit              int
	sessOpts                            []session.Option

	clustered   bool             // WithCluster
	clusterOpts []cluster.Option // WithCluster's
	node        *cluster.Node    // nil without a cluster
	reg         *cluster.Registry
	reservation time.Duration // how long a remote join's seat is held

	clock    clock           // the rooms' ticks, from Run until the rooms have ended
	ctx      context.Context // the sessions' context: alive until every room has ended
	roomsCtx context.Context // the rooms' context: cancelled when shutdown begins
	wg       sync.WaitGroup  // rooms

	mu       sync.Mutex
	kinds    map[string]*kind
	rooms    map[string]*entry
	order    []*entry           // rooms in creation order, for JoinOrCreate
	tickets  map[string]*ticket // seats reserved for joins from other nodes
	players  map[string]*Player
	nextID   uint64 // players
	nextRoom uint64
	running  bool
	closed   bool
}

// Option configures a Server.
type Option func(*Server) error

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option {
	return func(s *Server) error {
		if l != nil {
			s.log = l
		}
		return nil
	}
}

// WithObserver sets an observer of rooms.
func WithObserver(o Observer) Option { return func(s *Server) error { s.obs = o; return nil } }

// WithReconnectWindow sets how long a dropped player's seat and state are
// kept for it to come back (default 10s; 0 keeps none: a drop is a
// LeaveTimeout).
func WithReconnectWindow(d time.Duration) Option {
	return durationOption("reconnect window", d, 0, time.Hour, func(s *Server) { s.window = d })
}

// durationOption checks d against lo..hi before set applies it.
func durationOption(what string, d, lo, hi time.Duration, set func(*Server)) Option {
	return func(s *Server) error {
		if d < lo || d > hi {
			return fmt.Errorf("%w: %s %v, want %v..%v", ErrOption, what, d, lo, hi)
		}
		set(s)
		return nil
	}
}

// WithLiveness sets how soon a player that stopped answering is dropped
// (default 1.5s, at least 200ms): an identified player's connection gets
// ENet's timeout maximum of d and a ping interval of d/6, so a silent peer
// is noticed within about d plus a retransmission.
//
// ENet checks a connection only when a reliable command is due for
// retransmission, and doubles that delay each time; on a low-latency link
// the retransmission limit is reached within a few hundred milliseconds,
// so a connection that is silent for longer than the timeout minimum (d/2)
// ends at the next check: a dead player is dropped between d/2 and about
// d after its last answer (1.3–1.4s with the default, on loopback). The
// same holds for a live player whose process stalls: a player process, or
// a server, descheduled for longer than about d/2 on a loaded machine
// loses the connections that had a reliable command in flight (stopping
// the arena server with SIGSTOP while 800 bots played: 0.6s cut none,
// 0.85s 34, 1s 299, 1.7s 728; a bot process stopped for 1s had 51 of its
// players dropped). Raise d where such stalls happen; the stall tolerance
// and the time to notice a dead player cannot be set apart.
func WithLiveness(d time.Duration) Option {
	return durationOption("liveness", d, MinLiveness, MaxLiveness, func(s *Server) { s.liveness = d })
}

// Bounds of WithLiveness (and of the client's).
const (
	MinLiveness = 200 * time.Millisecond
	MaxLiveness = time.Minute
)

// SetLiveness makes ENet notice within about d that p stopped answering:
// a timeout maximum of d and a ping interval of d/6 on the connection.
// The server does it for every identified player, and package client for
// its connections.
func SetLiveness(ctx context.Context, h *netloop.Host, p netloop.Peer, d time.Duration) error {
	if err := h.SetTimeout(ctx, p, netloop.Timeout{Limit: 32, Minimum: d / 2, Maximum: d}); err != nil {
		return err
	}
	return h.SetPingInterval(ctx, p, d/6)
}

// WithThrottle configures ENet's unreliable packet throttle on every
// identified player's connection (default: ENet's). ENet drops unreliable
// packets, such as snapshots, in proportion as a peer's round trip time
// rises above its lowest; a Steady throttle keeps every snapshot
// flowing, which suits a game whose snapshots are small. A zero field
// means ENet's default, as everywhere; netloop.WithThrottle sets it for
// every connection of the host instead.
func WithThrottle(t netloop.Throttle) Option {
	return func(s *Server) error {
		if t.Interval < 0 {
			return fmt.Errorf("%w: throttle interval %v", ErrOption, t.Interval)
		}
		s.throttle = &t
		return nil
	}
}

// WithEmptyGrace sets how long an empty room waits for a member before it
// closes (default 5s).
func WithEmptyGrace(d time.Duration) Option {
	return durationOption("empty grace", d, 0, time.Hour, func(s *Server) { s.emptyGrace = d })
}

// WithShutdownGrace sets the grace period rooms are given in Terminate when
// the server shuts down (default 2s). It is what Terminate is told; the
// messages rooms send then are delivered within the host's drain timeout.
func WithShutdownGrace(d time.Duration) Option {
	return durationOption("shutdown grace", d, 0, time.Hour, func(s *Server) { s.grace = d })
}

// WithMaxMembers sets the seats of a room whose Config does not (default 16).
func WithMaxMembers(n int) Option {
	return func(s *Server) error {
		if n < 1 || n > netloop.MaxPeers {
			return fmt.Errorf("%w: max members %d", ErrOption, n)
		}
		s.maxMembers = n
		return nil
	}
}

// WithInputLimit bounds a room's inputs per tick to n per seat (default
// 64); inputs over it are dropped and counted (Stats.InputsDropped).
func WithInputLimit(n int) Option {
	return func(s *Server) error {
		if n < 1 || n > 1<<16 {
			return fmt.Errorf("%w: input limit %d", ErrOption, n)
		}
		s.inputLimit = n
		return nil
	}
}

// WithSessionOptions passes options to the session server.
func WithSessionOptions(opts ...session.Option) Option {
	return func(s *Server) error { s.sessOpts = append(s.sessOpts, opts...); return nil }
}

// WithMux serves sessions with m (for its options, middleware and routes
// of the application's own); the server registers the room protocol's
// routes on it. Default: a new dispatch.Mux.
func WithMux(m *dispatch.Mux) Option {
	return func(s *Server) error {
		if m == nil {
			return fmt.Errorf("%w: nil mux", ErrOption)
		}
		s.mux = m
		return nil
	}
}

// New returns a room server for host's sessions; it starts nothing.
func New(host *netloop.Host, opts ...Option) (*Server, error) {
	srv := &Server{
		host: host, log: zap.NewNop(),
		window: 10 * time.Second, liveness: 1500 * time.Millisecond,
		emptyGrace: 5 * time.Second, grace: 2 * time.Second,
		maxMembers: 16, inputLimit: 64, reservation: 5 * time.Second,
		kinds: make(map[string]*kind), rooms: make(map[string]*entry), players: make(map[string]*Player),
		tickets: make(map[string]*ticket),
	}
	for _, o := range opts {
		if err := o(srv); err != nil {
			return nil, err
		}
	}
	srv.log = srv.log.Named("room")
	if srv.mux == nil {
		mux, err := dispatch.NewMux(dispatch.WithLogger(srv.log))
		if err != nil {
			return nil, err
		}
		srv.mux = mux
	}
	Hello.Handle(srv.mux, srv.hello)
	JoinRequest.Handle(srv.mux, srv.joinRequest)
	LeaveRequest.Handle(srv.mux, srv.leaveRequest)
	sess, err := session.New(host, session.HandlerFunc(srv.serveSession), srv.sessOpts...)
	if err != nil {
		return nil, err
	}
	srv.sess = sess
	if srv.clustered {
		if err := srv.joinCluster(); err != nil {
			return nil, err
		}
	}
	return srv, nil
}

// Mux returns the mux that serves the sessions, to register routes of the
// application's own before Run.
func (srv *Server) Mux() *dispatch.Mux { return srv.mux }

// Sessions returns the session server underneath.
func (srv *Server) Sessions() *session.Server { return srv.sess }

// Host returns the server's host.
func (srv *Server) Host() *netloop.Host { return srv.host }

// Register adds a kind of room: factory returns a new Handler for each
// room of the kind. Register before Run; it fails on an empty or taken
// name.
func (srv *Server) Register(name string, factory func() Handler) error {
	if name == "" || factory == nil {
		return fmt.Errorf("%w: empty kind name or nil factory", ErrOption)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if _, dup := srv.kinds[name]; dup {
		return fmt.Errorf("%w: kind %q registered twice", ErrOption, name)
	}
	srv.kinds[name] = &kind{name: name, factory: factory}
	return nil
}

// HandleInput routes route's messages from players to their rooms: each
// is decoded in its session's goroutine and delivered in the next Tick's
// Inputs. Messages of players not in a room are dropped. It panics as
// dispatch.Mux.Handle does; register before Run.
func HandleInput[T any](srv *Server, route dispatch.Route[T]) {
	typ := route.Type()
	route.Handle(srv.mux, func(ctx context.Context, s *session.Session, v T) error {
		if p := playerOf(s); p != nil {
			if m := p.seat.Load(); m != nil && p.sess.Load() == s {
				m.room.push(Input{Member: m, Type: typ, Value: v, At: time.Now()})
			}
		}
		return nil
	})
}

// Run runs the host, the sessions and the rooms until ctx is cancelled or
// the host fails. On cancel, every room's Terminate runs (with the
// shutdown grace) and its members are told (Left, reason "shutdown");
// then the sessions drain as session.Server.Run does. Run returns once
// every room and session has ended.
func (srv *Server) Run(ctx context.Context) error {
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	srv.mu.Lock()
	if srv.running {
		srv.mu.Unlock()
		return fmt.Errorf("%w: Run called twice", ErrClosed)
	}
	roomsCtx, stopRooms := context.WithCancel(ctx)
	defer stopRooms()
	srv.running, srv.ctx, srv.roomsCtx = true, sctx, roomsCtx
	srv.clock = newClock()
	srv.mu.Unlock()

	errc := make(chan error, 1)
	if srv.node != nil {
		go func() { errc <- srv.node.Run(sctx) }() // runs the sessions
	} else {
		go func() { errc <- srv.sess.Run(sctx) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		errc = nil
	}
	srv.mu.Lock()
	srv.closed = true
	srv.mu.Unlock()
	stopRooms()
	srv.wg.Wait()
	srv.clock.close()
	srv.dropTickets()
	stop()
	if errc != nil {
		err = <-errc
	}
	return err
}

// List returns the rooms of kind (every room if kind is ""), oldest first.
// It is safe for concurrent use.
func (srv *Server) List(kind string) []Info {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	out := make([]Info, 0, len(srv.order))
	for _, e := range srv.order {
		if kind == "" || e.info.Kind == kind {
			out = append(out, e.info)
		}
	}
	return out
}

// Signal calls the Signal hook of room id with data and returns its
// answer. It waits for the room at most until ctx is done; it is safe for
// concurrent use.
func (srv *Server) Signal(ctx context.Context, id string, data any) (any, error) {
	srv.mu.Lock()
	e := srv.rooms[id]
	srv.mu.Unlock()
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoRoom, id)
	}
	type answer struct {
		v   any
		err error
	}
	res := make(chan answer, 1)
	r := e.r
	if err := r.do(ctx, func() {
		v, err := r.h.Signal(r, data)
		res <- answer{v, err}
	}); err != nil {
		return nil, err
	}
	a := <-res
	return a.v, a.err
}

// Create opens a room of kind with params, as a join would, and returns
// its ID (for a matchmaker that places players itself). It is safe for
// concurrent use.
func (srv *Server) Create(kind string, params map[string]string) (string, error) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	e, err := srv.create(kind, params)
	if err != nil {
		return "", err
	}
	return e.info.ID, nil
}

// create makes, initialises and starts a room; srv.mu is held.
func (srv *Server) create(name string, params map[string]string) (*entry, error) {
	if srv.closed || !srv.running {
		return nil, ErrClosed
	}
	k := srv.kinds[name]
	if k == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKind, name)
	}
	srv.nextRoom++
	id := fmt.Sprintf("%s-%d", name, srv.nextRoom)
	if srv.node != nil {
		id += "@" + srv.node.ID() // unique in the cluster
	}
	r := &Room{srv: srv, id: id, kind: k, h: k.factory(),
		ops: make(chan func()), stopping: make(chan struct{})}
	r.log = srv.log.With(zap.String("room", r.id))
	ctx, cancel := context.WithCancel(srv.roomsCtx)
	r.ctx = ctx
	r.now = time.Now()
	cfg, err := r.h.Init(r, params)
	if err != nil {
		cancel()
		return nil, err
	}
	if cfg.TickRate < MinTickRate || cfg.TickRate > MaxTickRate || cfg.MaxMembers < 0 || cfg.SnapshotEvery < 0 {
		cancel()
		return nil, fmt.Errorf("%w: tick rate %d (want %d..%d), max members %d, snapshot every %d",
			ErrConfig, cfg.TickRate, MinTickRate, MaxTickRate, cfg.MaxMembers, cfg.SnapshotEvery)
	}
	if cfg.MaxMembers == 0 {
		cfg.MaxMembers = srv.maxMembers
	}
	if r.cfg.Label != "" && cfg.Label == "" {
		cfg.Label = r.cfg.Label // set with SetLabel during Init
	}
	r.cfg = cfg
	r.period = time.Second / time.Duration(cfg.TickRate)
	r.members = make([]*Member, cfg.MaxMembers)
	r.inLimit = srv.inputLimit * cfg.MaxMembers
	r.listed = true
	e := &entry{r: r, info: Info{ID: r.id, Kind: name, Label: cfg.Label, MaxMembers: cfg.MaxMembers,
		TickRate: cfg.TickRate, Locked: r.locked}}
	if srv.node != nil {
		e.info.Node, e.info.Addr = srv.node.ID(), srv.node.Addr()
	}
	srv.rooms[r.id] = e
	srv.order = append(srv.order, e)
	srv.publish(e)
	if srv.obs != nil {
		srv.obs.RoomOpened(name)
	}
	srv.wg.Go(func() {
		defer cancel()
		r.startEmpty()
		r.run(ctx)
		if srv.obs != nil {
			srv.obs.RoomClosed(name)
		}
	})
	return e, nil
}

// reserve finds the room of this server a join goes to and holds a seat
// in it. Without orCreate it returns neither room nor error if there is
// no such room (by ID) or no open room of the kind, for the cluster to be
// asked; with it, a join by kind creates a room.
func (srv *Server) reserve(req JoinMsg, orCreate bool) (*Room, error) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed {
		return nil, ErrClosed
	}
	if req.Room != "" {
		e := srv.rooms[req.Room]
		if e == nil && !orCreate {
			return nil, nil
		}
		if err := srv.take(e, req.Room); err != nil {
			return nil, err
		}
		return e.r, nil
	}
	for _, e := range srv.order {
		if e.info.Kind == req.Kind && !e.info.Locked && e.info.Members < e.info.MaxMembers {
			e.info.Members++
			srv.publish(e)
			return e.r, nil
		}
	}
	if !orCreate {
		return nil, nil
	}
	e, err := srv.create(req.Kind, req.Params)
	if err != nil {
		return nil, err
	}
	e.info.Members++
	srv.publish(e)
	return e.r, nil
}

// take holds a seat in room e (ID id); srv.mu is held.
func (srv *Server) take(e *entry, id string) error {
	switch {
	case e == nil:
		return fmt.Errorf("%w: %s", ErrNoRoom, id)
	case e.info.Locked:
		return ErrLocked
	case e.info.Members >= e.info.MaxMembers:
		return ErrFull
	}
	e.info.Members++
	srv.publish(e)
	return nil
}

// release gives back the seat of p in r (a refused join, or a member that
// left) and forgets p if it has no connection left.
func (srv *Server) release(r *Room, p *Player) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if r != nil {
		if e := srv.rooms[r.id]; e != nil && e.r == r {
			e.info.Members--
			srv.publish(e)
		}
	}
	if p != nil && p.sess.Load() == nil && p.seat.Load() == nil && srv.players[p.token] == p {
		delete(srv.players, p.token)
	}
}

// update changes r's listing.
func (srv *Server) update(r *Room, f func(*entry)) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if e := srv.rooms[r.id]; e != nil && e.r == r {
		f(e)
		srv.publish(e)
	}
}

// unlist removes r from the listings: no more joins go to it.
func (srv *Server) unlist(r *Room) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if e := srv.rooms[r.id]; e != nil && e.r == r {
		delete(srv.rooms, r.id)
		if srv.reg != nil {
			srv.reg.Delete(r.id)
		}
		for i := range srv.order {
			if srv.order[i] == e {
				srv.order = append(srv.order[:i], srv.order[i+1:]...)
				break
			}
		}
	}
}

type playerKey struct{}

func playerOf(s *session.Session) *Player {
	v, _ := s.Get(playerKey{})
	p, _ := v.(*Player)
	return p
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// serveSession serves one connection: the mux, then the end of the
// player's connection.
func (srv *Server) serveSession(ctx context.Context, s *session.Session) error {
	err := srv.mux.ServeSession(ctx, s)
	srv.ended(s)
	return err
}

// hello identifies the player of s, or gives it back its identity and seat.
func (srv *Server) hello(ctx context.Context, s *session.Session, h HelloMsg) error {
	if p := playerOf(s); p != nil {
		return Welcome.Send(ctx, s, WelcomeMsg{Player: p.ID, Name: p.Name, Token: p.token})
	}
	srv.mu.Lock()
	p, resumed := srv.players[h.Token]
	if h.Token == "" || !resumed {
		srv.nextID++
		p = &Player{ID: srv.nextID, Name: h.Name, token: newToken()}
		if p.Name == "" {
			p.Name = fmt.Sprintf("player-%d", p.ID)
		}
		srv.players[p.token] = p
		resumed = false
	}
	old := p.sess.Swap(s)
	srv.mu.Unlock()
	s.Set(playerKey{}, p)
	if old != nil && old != s {
		_ = old.Kick() // its end is ignored: it is no longer the player's
	}
	srv.watch(ctx, s)
	if err := Welcome.Send(ctx, s, WelcomeMsg{Player: p.ID, Name: p.Name, Token: p.token, Resumed: resumed}); err != nil {
		return err
	}
	if m := p.seat.Load(); m != nil {
		r := m.room
		r.post(ctx, func() { r.back(m, s) })
	}
	return nil
}

// watch sets the room-level liveness of a player's connection.
func (srv *Server) watch(ctx context.Context, s *session.Session) {
	if err := SetLiveness(ctx, srv.host, s.Peer(), srv.liveness); err != nil {
		srv.log.Debug("liveness", zap.Error(err))
	}
	if srv.throttle != nil {
		if err := srv.host.ConfigureThrottle(ctx, s.Peer(), *srv.throttle); err != nil {
			srv.log.Debug("throttle", zap.Error(err))
		}
	}
}

func (srv *Server) joinRequest(ctx context.Context, s *session.Session, req JoinMsg) error {
	refuse := func(err error) error {
		return JoinRefused.Send(ctx, s, RefusedMsg{Req: req.Req, Reason: err.Error()})
	}
	p := playerOf(s)
	if p == nil {
		return refuse(errors.New("room: say Hello first"))
	}
	if p.seat.Load() != nil {
		return refuse(errors.New("room: already in a room"))
	}
	if req.Ticket != "" {
		r, err := srv.claim(req.Ticket)
		if err != nil {
			return refuse(err)
		}
		if err := srv.seat(ctx, r, p, s, req); err != nil {
			return refuse(err)
		}
		return nil
	}
	// A room found by kind may close between the reservation and the join
	// (its empty grace ran out): then the join goes to another.
	for try := 0; ; try++ {
		r, err := srv.reserve(req, srv.reg == nil)
		if err == nil && r == nil {
			// Not here: a room on another node, or a new one here.
			if done, err := srv.redirect(ctx, s, req); done {
				if err != nil {
					return refuse(err)
				}
				return nil
			}
			r, err = srv.reserve(req, true)
		}
		if err != nil {
			return refuse(err)
		}
		err = srv.seat(ctx, r, p, s, req)
		if errors.Is(err, ErrNoRoom) && req.Room == "" && try < 3 {
			continue
		}
		if err != nil {
			return refuse(err)
		}
		return nil
	}
}

// seat joins p (connection s) to r, where a seat is reserved for it; the
// seat is given back if the join fails.
//
// Once the room has the join, its outcome is the room's alone: a refusal
// gives the seat back there, and seat waits for it even if the session
// ends meanwhile (then the member, seated, leaves or drops as the
// session's end says). Giving up instead would give the seat back while
// the room seats the player.
func (srv *Server) seat(ctx context.Context, r *Room, p *Player, s *session.Session, req JoinMsg) error {
	res := make(chan error, 1)
	if err := r.hand(ctx, func() {
		err := r.join(p, s, req)
		if err != nil {
			srv.release(r, nil)
		}
		res <- err
	}); err != nil {
		srv.release(r, nil)
		return err
	}
	return <-res
}

func (srv *Server) leaveRequest(ctx context.Context, s *session.Session, _ LeaveMsg) error {
	p := playerOf(s)
	if p == nil {
		return nil
	}
	if m := p.seat.Load(); m != nil {
		r := m.room
		r.post(ctx, func() { r.leave(m, LeaveRequested) })
	}
	return nil
}

// ended handles the end of a player's connection: a deliberate disconnect
// leaves the room, a lost one drops the member.
func (srv *Server) ended(s *session.Session) {
	p := playerOf(s)
	if p == nil || !p.sess.CompareAndSwap(s, nil) {
		return // not identified, or replaced by a newer connection
	}
	m := p.seat.Load()
	if m == nil {
		srv.release(nil, p)
		return
	}
	var end *session.EndError
	errors.As(s.Err(), &end)
	r := m.room
	ctx := srv.ctx
	switch {
	case end != nil && end.Reason == session.ReasonShutdown:
	case end != nil && (end.Reason == session.ReasonRemote || end.Reason == session.ReasonClosed):
		r.post(ctx, func() {
			if m.sess == s {
				r.leave(m, LeaveRequested)
			}
		})
	default:
		r.post(ctx, func() { r.drop(m, s) })
	}
}

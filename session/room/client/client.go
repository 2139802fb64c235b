package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session/room"
)

// Errors of clients.
var (
	// ErrNotConnected: the client has no identified connection right now.
	ErrNotConnected = errors.New("client: not connected")
	// ErrRefused: the server refused a join; the error says why.
	ErrRefused = errors.New("client: join refused")
	// ErrClosed: the client or its host has stopped.
	ErrClosed = errors.New("client: closed")
	// ErrOption: an option's value is out of range.
	ErrOption = errors.New("client: option out of range")
)

// Host is one ENet client host shared by many clients. Run it, and each
// of its clients, until done.
type Host struct {
	host     *netloop.Host
	log      *zap.Logger
	channels int

	dials chan dial // clients -> Run: connect and register a peer

	mu      sync.Mutex
	clients map[uint64]*Client // by peer ID
}

type dial struct {
	c     *Client
	addr  string
	reply chan dialResult
}

type dialResult struct {
	p   netloop.Peer
	err error
}

// NewHost creates the ENet host that clients share, connecting with
// channels channels (enough for every route's channel); opts are
// netloop's (WithPeers bounds how many clients it carries at once,
// default 64). It starts nothing.
func NewHost(channels int, opts ...netloop.Option) (*Host, error) {
	if channels < 1 || channels > netloop.MaxChannels {
		return nil, fmt.Errorf("%w: %d channels", ErrOption, channels)
	}
	opts = append([]netloop.Option{netloop.WithPeers(64), netloop.WithChannels(channels),
		netloop.WithConnectTimeout(2 * time.Second)}, opts...)
	h, err := netloop.New("", opts...)
	if err != nil {
		return nil, err
	}
	return &Host{host: h, log: zap.NewNop(), channels: channels, dials: make(chan dial),
		clients: make(map[uint64]*Client)}, nil
}

// Netloop returns the ENet host underneath.
func (h *Host) Netloop() *netloop.Host { return h.host }

// Run runs the ENet host and hands each connection's events to its client
// until ctx is cancelled; it returns when the host has stopped.
func (h *Host) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- h.host.Run(ctx) }()
	events := h.host.Events()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return <-errc
			}
			h.route(ctx, ev)
		case d := <-h.dials:
			// Connecting here, before reading the next event, registers
			// the peer before any of its events can arrive.
			p, err := h.host.Connect(ctx, d.addr, h.channels, 0)
			if err == nil {
				h.mu.Lock()
				h.clients[p.ID()] = d.c
				h.mu.Unlock()
			}
			d.reply <- dialResult{p, err}
		}
	}
}

// route hands ev to its client, never blocking: a client whose inbox is
// full loses unreliable messages, and its connection on a reliable one
// (it then reconnects), so it never sees a gap in a reliable stream.
func (h *Host) route(ctx context.Context, ev netloop.Event) {
	h.mu.Lock()
	c := h.clients[ev.Peer.ID()]
	if ev.Kind == netloop.EventDisconnect {
		delete(h.clients, ev.Peer.ID())
	}
	h.mu.Unlock()
	if c == nil {
		return
	}
	if !c.in.put(ev) && ev.Flag == netloop.Reliable {
		if err := h.host.Reset(ctx, ev.Peer); err != nil {
			h.log.Debug("reset", zap.Error(err))
		}
	}
}

// inbox holds a client's events: connects and disconnects always, received
// messages up to a limit.
type inbox struct {
	mu      sync.Mutex
	q       []netloop.Event
	n       int // received messages in q
	limit   int
	dropped atomic.Int64
	wake    chan struct{} // one token: q is not empty
}

func (in *inbox) put(ev netloop.Event) bool {
	in.mu.Lock()
	if ev.Kind == netloop.EventReceive {
		if in.n >= in.limit {
			in.mu.Unlock()
			in.dropped.Add(1)
			return false
		}
		in.n++
	}
	in.q = append(in.q, ev)
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns the waiting events, reusing buf.
func (in *inbox) take(buf []netloop.Event) []netloop.Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	buf = append(buf[:0], in.q...)
	clear(in.q)
	in.q, in.n = in.q[:0], 0
	return buf
}

// Client is one player's connection to a room server. Create it with
// Host.Client, register handlers, and run it with Run. Send, Join and
// Leave are safe for concurrent use.
type Client struct {
	h      *Host
	addr   string // the server's; a Redirect changes it (guarded by mu)
	name   string
	log    *zap.Logger
	window time.Duration
	live   time.Duration

	handlers map[uint32]func(payload []byte) error
	in       inbox

	mu        sync.Mutex
	peer      netloop.Peer
	ready     bool   // identified on the current connection; readyc is closed
	lostReady bool   // the connection lost last had been identified
	token     string // the server's token, once welcomed
	player    uint64
	joined    *room.JoinedMsg
	reqs      map[uint32]chan joinAnswer
	nextReq   uint32
	readyc    chan struct{} // closed when identified; replaced on a new connection
	moving    bool          // a Redirect: the connection is ending, the next goes to addr
	leaveAsk  bool          // moving, and the connection's end was asked for

	stats Stats

	onJoined func(room.JoinedMsg)
	onLeft   func(room.LeftMsg)
	onMember func(room.MemberMsg)
	onState  func(State)
}

type joinAnswer struct {
	joined   room.JoinedMsg
	redirect *room.RedirectMsg
	err      error
}

// State is a client's connection state, for WithStateHandler.
type State uint8

const (
	// Connecting: dialling or identifying.
	Connecting State = iota + 1
	// Connected: identified; Resumed tells whether the identity was kept.
	Connected
	// Disconnected: the connection was lost; the client reconnects.
	Disconnected
)

// Stats are a client's counters.
type Stats struct {
	Connects      int64 // connections made and identified
	Disconnects   int64 // connections lost (not ended by Run's context)
	Resumed       int64 // reconnections that kept the identity
	Rejoined      int64 // reconnections that came back to a seat
	Redirects     int64 // joins sent on to another node of a cluster
	EventsDropped int64 // events dropped because the client fell behind
	Undecodable   int64 // messages no handler could decode
	UnknownRoutes int64 // messages of types with no handler
}

// Option configures a Client.
type Option func(*Client) error

// WithName sets the player's name (default: the server's choice).
func WithName(n string) Option { return func(c *Client) error { c.name = n; return nil } }

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option {
	return func(c *Client) error {
		if l != nil {
			c.log = l
		}
		return nil
	}
}

// WithReconnectWindow sets how long the client tries to reconnect after
// losing its connection before Run gives up (default 10s, the server's
// default window).
func WithReconnectWindow(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("%w: reconnect window %v", ErrOption, d)
		}
		c.window = d
		return nil
	}
}

// WithLiveness sets how soon a silent server is noticed (default 1.5s), as
// room.WithLiveness does on the server.
func WithLiveness(d time.Duration) Option {
	return func(c *Client) error {
		if d < room.MinLiveness || d > room.MaxLiveness {
			return fmt.Errorf("%w: liveness %v", ErrOption, d)
		}
		c.live = d
		return nil
	}
}

// WithInbox sets how many events may wait for the client (default 1024).
func WithInbox(n int) Option {
	return func(c *Client) error {
		if n < 1 || n > 1<<20 {
			return fmt.Errorf("%w: inbox %d", ErrOption, n)
		}
		c.in.limit = n
		return nil
	}
}

// OnJoined, OnLeft, OnMember and OnState set callbacks, run in Run's
// goroutine: a seat in a room (new, or back after a reconnection), the
// end of it, another member's change, and the connection's state.
func OnJoined(f func(room.JoinedMsg)) Option {
	return func(c *Client) error { c.onJoined = f; return nil }
}

// OnLeft: see OnJoined.
func OnLeft(f func(room.LeftMsg)) Option { return func(c *Client) error { c.onLeft = f; return nil } }

// OnMember: see OnJoined.
func OnMember(f func(room.MemberMsg)) Option {
	return func(c *Client) error { c.onMember = f; return nil }
}

// OnState: see OnJoined.
func OnState(f func(State)) Option { return func(c *Client) error { c.onState = f; return nil } }

// Client returns a client of the room server at addr, carried by h. It
// starts nothing.
func (h *Host) Client(addr string, opts ...Option) (*Client, error) {
	c := &Client{h: h, addr: addr, log: h.log, window: 10 * time.Second, live: 1500 * time.Millisecond,
		handlers: make(map[uint32]func([]byte) error), reqs: make(map[uint32]chan joinAnswer),
		readyc: make(chan struct{}), in: inbox{limit: 1024, wake: make(chan struct{}, 1)}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	Handle(c, room.Welcome, c.welcome)
	Handle(c, room.Joined, c.joinedMsg)
	Handle(c, room.JoinRefused, c.refused)
	Handle(c, room.Left, c.left)
	Handle(c, room.Redirect, c.redirect)
	Handle(c, room.MemberChanged, func(m room.MemberMsg) {
		if c.onMember != nil {
			c.onMember(m)
		}
	})
	return c, nil
}

// Handle registers fn for route's messages from the server; fn runs in
// c's Run goroutine. Register before Run. It panics on a second handler
// for the same type, as dispatch.Mux.Handle does.
func Handle[T any](c *Client, route dispatch.Route[T], fn func(v T)) {
	typ := route.Type()
	if _, dup := c.handlers[typ]; dup {
		panic(fmt.Sprintf("client: multiple handlers for type %d", typ))
	}
	c.handlers[typ] = func(payload []byte) error {
		v, err := route.Unmarshal(payload)
		if err != nil {
			return err
		}
		fn(v)
		return nil
	}
}

// Stats returns the client's counters; safe for concurrent use.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.EventsDropped = c.in.dropped.Load()
	return s
}

// Player returns the player's ID, 0 before the first Welcome.
func (c *Client) Player() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.player
}

// Room returns the room the player is seated in, if any.
func (c *Client) Room() (room.JoinedMsg, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.joined == nil {
		return room.JoinedMsg{}, false
	}
	return *c.joined, true
}

// Send sends data on the current connection; it implements
// dispatch.Sender, so route.Send(ctx, c, v) works. Without an identified
// connection it returns ErrNotConnected (messages are not queued across
// reconnections). data must not be modified afterwards.
func (c *Client) Send(ctx context.Context, ch uint8, data []byte, flag netloop.Flag) error {
	c.mu.Lock()
	p, ok := c.peer, c.ready
	c.mu.Unlock()
	if !ok {
		return ErrNotConnected
	}
	return c.h.host.Send(ctx, p, ch, data, flag)
}

// Ready returns a channel closed once the client is identified on its
// current connection.
func (c *Client) Ready() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readyc
}

// MaxRedirects bounds the redirects one Join follows.
const MaxRedirects = 2

// Join asks for a seat (see room.JoinMsg; Req is set by Join) and waits
// for the answer, at most until ctx is done. A refusal is an error
// wrapping ErrRefused with the server's reason. If the room is on another
// node of a cluster, the server answers with a redirect and Join follows
// it: the client disconnects, connects to that node, identifies (a new
// identity: the node's) and joins with the reservation's ticket, and from
// then on that node is the client's server, for reconnections too.
func (c *Client) Join(ctx context.Context, req room.JoinMsg) (room.JoinedMsg, error) {
	for hops := 0; ; hops++ {
		a, err := c.join(ctx, req)
		if err != nil || a.redirect == nil {
			return a.joined, err
		}
		if hops == MaxRedirects {
			return room.JoinedMsg{}, fmt.Errorf("%w: more than %d redirects", ErrRefused, MaxRedirects)
		}
		rd := a.redirect
		req = room.JoinMsg{Room: rd.Room, Ticket: rd.Ticket, Meta: req.Meta}
	}
}

// join sends one join request and waits for its answer.
func (c *Client) join(ctx context.Context, req room.JoinMsg) (joinAnswer, error) {
	select {
	case <-c.Ready():
	case <-ctx.Done():
		return joinAnswer{}, ctx.Err()
	}
	ans := make(chan joinAnswer, 1)
	c.mu.Lock()
	c.nextReq++
	req.Req = c.nextReq
	c.reqs[req.Req] = ans
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.reqs, req.Req)
		c.mu.Unlock()
	}()
	if err := room.JoinRequest.Send(ctx, c, req); err != nil {
		return joinAnswer{}, err
	}
	select {
	case a := <-ans:
		return a, a.err
	case <-ctx.Done():
		return joinAnswer{}, ctx.Err()
	}
}

// Drop resets the current connection at once without telling the server,
// as a network failure would; the client then reconnects by itself and
// comes back to its seat. It is meant for tests and bots.
func (c *Client) Drop(ctx context.Context) error {
	c.mu.Lock()
	p := c.peer
	c.mu.Unlock()
	if p == (netloop.Peer{}) {
		return ErrNotConnected
	}
	return c.h.host.Reset(ctx, p)
}

// Leave leaves the player's room.
func (c *Client) Leave(ctx context.Context) error {
	return room.LeaveRequest.Send(ctx, c, room.LeaveMsg{})
}

// Run connects, identifies and serves the client's messages until ctx is
// cancelled (it then disconnects gracefully and returns nil), or until a
// lost connection could not be made again within the reconnection window
// (it returns the error), or until its Host stops (ErrClosed). Call it
// once; the Host must be running.
func (c *Client) Run(ctx context.Context) error {
	var lost time.Time // when the last connection was lost; zero while none is
	backoff := 50 * time.Millisecond
	for {
		err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrClosed) {
			return err // the Host stopped: no connection can be made
		}
		if errors.Is(err, errMoved) {
			lost, backoff = time.Time{}, 50*time.Millisecond
			continue
		}
		if !c.wasReady() {
			if lost.IsZero() {
				lost = time.Now()
			}
		} else {
			lost, backoff = time.Now(), 50*time.Millisecond
		}
		c.setState(Disconnected)
		if time.Since(lost) > c.window {
			return fmt.Errorf("client: no connection for %v: %w", c.window, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, time.Second)
	}
}

// wasReady reports whether the last connection was identified before it
// was lost.
func (c *Client) wasReady() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.lostReady
	c.lostReady = false
	return r
}

func (c *Client) setState(s State) {
	if c.onState != nil {
		c.onState(s)
	}
}

// session makes one connection and serves it until it ends.
func (c *Client) session(ctx context.Context) error {
	c.setState(Connecting)
	reply := make(chan dialResult, 1)
	c.mu.Lock()
	addr := c.addr
	c.mu.Unlock()
	select {
	case c.h.dials <- dial{c, addr, reply}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.h.host.Done():
		return ErrClosed
	}
	d := <-reply
	if d.err != nil {
		return d.err
	}
	p := d.p
	c.mu.Lock()
	c.peer = p
	c.mu.Unlock()
	var evs []netloop.Event
	for {
		select {
		case <-c.in.wake:
			evs = c.in.take(evs)
			for _, ev := range evs {
				switch ev.Kind {
				case netloop.EventConnect:
					c.connected(ctx, p)
				case netloop.EventReceive:
					c.receive(ev)
				case netloop.EventDisconnect:
					if c.disconnected() {
						return errMoved
					}
					return fmt.Errorf("client: disconnected (%s)", ev.Reason)
				}
			}
			clear(evs)
			if c.leaving(p) {
				dctx, cancel := context.WithTimeout(ctx, time.Second)
				err := c.h.host.Disconnect(dctx, p, 0)
				cancel()
				if err != nil {
					c.log.Debug("disconnect to move", zap.Error(err))
				}
			}
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_ = c.h.host.DisconnectLater(dctx, p, 0)
			return ctx.Err()
		case <-c.h.host.Done():
			c.disconnected()
			return ErrClosed
		}
	}
}

func (c *Client) connected(ctx context.Context, p netloop.Peer) {
	if err := room.SetLiveness(ctx, c.h.host, p, c.live); err != nil {
		c.log.Debug("liveness", zap.Error(err))
	}
	c.mu.Lock()
	hello := room.HelloMsg{Name: c.name, Token: c.token}
	c.mu.Unlock()
	b, err := room.Hello.Encode(hello)
	if err == nil {
		err = c.h.host.Send(ctx, p, room.Hello.Channel(), b, room.Hello.Flag())
	}
	if err != nil {
		c.log.Debug("hello", zap.Error(err))
	}
}

// disconnected ends the ready state of the lost connection, before the
// pending joins are answered, so that a join asked again waits for the
// next connection. It reports whether the connection ended for a
// Redirect.
func (c *Client) disconnected() (moved bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	moved, c.moving, c.leaveAsk = c.moving, false, false
	c.lostReady = c.ready
	if c.ready {
		c.stats.Disconnects++
		c.ready = false
		c.readyc = make(chan struct{})
	}
	for id, ch := range c.reqs {
		ch <- joinAnswer{err: ErrNotConnected}
		delete(c.reqs, id)
	}
	return moved
}

// errMoved ends a connection left for a Redirect.
var errMoved = errors.New("client: moved to another node")

// redirect follows a Redirect: the answer of a pending Join. The client
// is no longer identified (Join waits for the next connection), its next
// connection goes to the redirect's node, as a new player there, and
// Run's goroutine ends this connection once the messages at hand are
// handled.
func (c *Client) redirect(rd room.RedirectMsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.reqs[rd.Req]
	if ch == nil || rd.Addr == "" {
		return // nobody waits for it: the reservation expires
	}
	delete(c.reqs, rd.Req)
	c.addr, c.token, c.player, c.joined = rd.Addr, "", 0, nil
	c.moving = true
	if c.ready {
		c.ready = false
		c.readyc = make(chan struct{})
	}
	c.stats.Redirects++
	ch <- joinAnswer{redirect: &rd}
}

// leaving reports, once, that connection p is to end for a Redirect.
func (c *Client) leaving(p netloop.Peer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.moving || c.leaveAsk || c.peer != p {
		return false
	}
	c.leaveAsk = true
	return true
}

func (c *Client) receive(ev netloop.Event) {
	typ, payload, err := dispatch.ParseMessage(ev.Payload)
	if err != nil {
		c.mu.Lock()
		c.stats.Undecodable++
		c.mu.Unlock()
		return
	}
	f := c.handlers[typ]
	if f == nil {
		c.mu.Lock()
		c.stats.UnknownRoutes++
		c.mu.Unlock()
		return
	}
	if err := f(payload); err != nil {
		c.mu.Lock()
		c.stats.Undecodable++
		c.mu.Unlock()
		c.log.Debug("undecodable", zap.Uint32("type", typ), zap.Error(err))
	}
}

func (c *Client) welcome(w room.WelcomeMsg) {
	c.mu.Lock()
	first := c.token == ""
	if !first && !w.Resumed {
		c.joined = nil // a new identity: the old seat is gone
	}
	c.token, c.player = w.Token, w.Player
	if !c.ready {
		c.ready = true
		close(c.readyc)
	}
	c.stats.Connects++
	if !first && w.Resumed {
		c.stats.Resumed++
	}
	c.mu.Unlock()
	c.setState(Connected)
}

func (c *Client) joinedMsg(j room.JoinedMsg) {
	c.mu.Lock()
	c.joined = &j
	if j.Resumed {
		c.stats.Rejoined++
	}
	if ch := c.reqs[j.Req]; j.Req != 0 && ch != nil {
		ch <- joinAnswer{joined: j}
		delete(c.reqs, j.Req)
	}
	c.mu.Unlock()
	if c.onJoined != nil {
		c.onJoined(j)
	}
}

func (c *Client) refused(r room.RefusedMsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := c.reqs[r.Req]; ch != nil {
		ch <- joinAnswer{err: fmt.Errorf("%w: %s", ErrRefused, r.Reason)}
		delete(c.reqs, r.Req)
	}
}

func (c *Client) left(l room.LeftMsg) {
	c.mu.Lock()
	if c.joined != nil && c.joined.Room == l.Room {
		c.joined = nil
	}
	c.mu.Unlock()
	if c.onLeft != nil {
		c.onLeft(l)
	}
}

package room_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/integration/linkproxy"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session/room"
	"github.com/enetkit/enetkit/session/room/client"
	"github.com/enetkit/enetkit/session/room/internal/roomtest"
)

func TestMain(m *testing.M) { roomtest.Main(m) }

const wait = netlooptest.Timeout

type addMsg struct{ N int }

type sumMsg struct {
	Seat, Sum, Inputs int
	Tick              uint64
	Disordered        bool // an input came before one sent earlier
}

var (
	routeAdd = dispatch.NewRoute[addMsg](1, dispatch.JSON, 1, netloop.Reliable)
	routeSum = dispatch.NewRoute[sumMsg](2, dispatch.JSON, 1, netloop.Reliable)
	routeAll = dispatch.NewRoute[[]int](3, dispatch.JSON, 1, netloop.Unreliable)
)

// counter is the test's room: each member's inputs add to its sum; every
// tick with inputs sends each member its own sum, and the sums of all to
// everyone.
type counter struct {
	room.Base
	log  chan string // what happened, for the test
	sums map[int]int
}

// kick is a Signal that kicks that player out of the room.
type kick uint64

// stats is a Signal that asks for the room's Stats.
type stats struct{}

type memberState struct {
	sum, inputs, last int
	disordered        bool
}

func (c *counter) note(format string, args ...any) {
	select {
	case c.log <- fmt.Sprintf(format, args...):
	default:
		panic("test log full")
	}
}

func (c *counter) Init(r *room.Room, params map[string]string) (room.Config, error) {
	if params["fail"] != "" {
		return room.Config{}, errors.New(params["fail"])
	}
	n, _ := strconv.Atoi(params["max"])
	c.note("init %s", r.ID())
	return room.Config{TickRate: 50, MaxMembers: n, Label: params["label"]}, nil
}

func (c *counter) JoinAttempt(r *room.Room, p *room.Player, meta map[string]string) error {
	if meta["pass"] != "ok" {
		return errors.New("wrong pass")
	}
	if meta["gate"] != "" {
		c.note("attempt %s", p.Name)
		holdJoin(p)
	}
	return nil
}

func (c *counter) Join(r *room.Room, m *room.Member) {
	m.Data = &memberState{}
	c.note("join %s seat %d", m.Player.Name, m.Seat)
}

func (c *counter) Leave(r *room.Room, m *room.Member, why room.LeaveReason) {
	c.note("leave %s %s", m.Player.Name, why)
}

func (c *counter) Dropped(r *room.Room, m *room.Member) { c.note("dropped %s", m.Player.Name) }
func (c *counter) Back(r *room.Room, m *room.Member)    { c.note("back %s", m.Player.Name) }

func (c *counter) Terminate(r *room.Room, grace time.Duration) {
	c.note("terminate %s", r.ID())
}

func (c *counter) Signal(r *room.Room, data any) (any, error) {
	switch data := data.(type) {
	case string:
		switch data {
		case "lock":
			r.SetLocked(true)
			return nil, nil
		case "close":
			r.Close()
			return nil, nil
		}
	case stats:
		return r.Stats(), nil
	case kick:
		for _, m := range r.Members() {
			if m != nil && m.Player.ID == uint64(data) {
				r.Kick(m)
				return nil, nil
			}
		}
		return nil, errors.New("no such player")
	case uint64: // cut that player's connection
		for _, m := range r.Members() {
			if m != nil && m.Player.ID == data {
				return nil, m.Player.Session().Kick()
			}
		}
		return nil, errors.New("no such player")
	}
	return r.Count(), nil
}

func (c *counter) Tick(r *room.Room, t *room.Tick) {
	if len(t.Inputs) == 0 {
		return
	}
	for _, in := range t.Inputs {
		st := in.Member.Data.(*memberState)
		n := in.Value.(addMsg).N
		if n < st.last {
			st.disordered = true
		}
		st.sum, st.last = st.sum+n, n
		st.inputs++
	}
	var all []int
	for _, m := range r.Members() {
		if m == nil {
			continue
		}
		st := m.Data.(*memberState)
		all = append(all, st.sum)
		_ = routeSum.Send(r.Context(), m, sumMsg{Seat: m.Seat, Sum: st.sum, Inputs: st.inputs, Tick: t.N, Disordered: st.disordered})
	}
	_ = routeAll.Broadcast(r.Context(), r, all)
}

type fixture struct {
	srv  *room.Server
	log  chan string
	addr string
	stop func() error
}

func start(t *testing.T, opts ...room.Option) *fixture {
	t.Helper()
	logger := zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel))
	host, err := netloop.New("127.0.0.1:0", netloop.WithChannels(2), netloop.WithLogger(logger), netloop.WithDrainTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := room.New(host, append([]room.Option{room.WithLogger(logger)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, log: make(chan string, 1000), addr: host.Addr().String()}
	if err := srv.Register("counter", func() room.Handler { return &counter{log: f.log} }); err != nil {
		t.Fatal(err)
	}
	room.HandleInput(srv, routeAdd)
	f.stop = netlooptest.Go(t, srv.Run)
	return f
}

// expect waits for the room to note want.
func (f *fixture) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case got := <-f.log:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("room never noted %q", want)
		}
	}
}

type player struct {
	*client.Client
	sums    chan sumMsg
	joined  chan room.JoinedMsg
	left    chan room.LeftMsg
	members chan room.MemberMsg
	states  chan client.State
}

func newHost(t *testing.T) *client.Host {
	t.Helper()
	h, err := client.NewHost(2, netloop.WithDrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	netlooptest.Go(t, h.Run)
	return h
}

func dial(t *testing.T, h *client.Host, addr, name string) *player {
	t.Helper()
	p := &player{sums: make(chan sumMsg, 1000), joined: make(chan room.JoinedMsg, 10),
		left: make(chan room.LeftMsg, 10), members: make(chan room.MemberMsg, 100), states: make(chan client.State, 100)}
	c, err := h.Client(addr, client.WithName(name),
		client.OnJoined(func(j room.JoinedMsg) { p.joined <- j }),
		client.OnLeft(func(l room.LeftMsg) { p.left <- l }),
		client.OnMember(func(m room.MemberMsg) { p.members <- m }),
		client.OnState(func(s client.State) { p.states <- s }))
	if err != nil {
		t.Fatal(err)
	}
	client.Handle(c, routeSum, func(s sumMsg) { p.sums <- s })
	client.Handle(c, routeAll, func([]int) {})
	p.Client = c
	netlooptest.Go(t, c.Run)
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

// waitSum waits until p's sum reaches want.
func waitSum(t *testing.T, p *player, want int) sumMsg {
	t.Helper()
	for {
		s := recv(t, p.sums, "sum")
		if s.Sum == want {
			return s
		}
		if s.Sum > want {
			t.Fatalf("sum %d, want %d", s.Sum, want)
		}
	}
}

var pass = map[string]string{"pass": "ok"}

// Players join by kind, their inputs reach their room in order, and the
// room's per-member and shared messages reach them.
func TestJoinInputsSend(t *testing.T) {
	f := start(t)
	h := newHost(t)
	a, b := dial(t, h, f.addr, "a"), dial(t, h, f.addr, "b")
	ja, err := a.Join(ctxT(t), room.JoinMsg{Kind: "counter", Params: map[string]string{"max": "2", "label": "L"}, Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	if ja.Seat != 0 || ja.Kind != "counter" || ja.TickHz != 50 || ja.Label != "L" || len(ja.Members) != 1 {
		t.Fatalf("joined %+v", ja)
	}
	jb, err := b.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	if jb.Room != ja.Room || jb.Seat != 1 || len(jb.Members) != 2 {
		t.Fatalf("b joined %+v, a %+v", jb, ja)
	}
	if ev := recv(t, a.members, "member event"); ev.Event != room.EventJoined || ev.Member.Name != "b" {
		t.Fatalf("a saw %+v", ev)
	}
	f.expect(t, "join b seat 1")
	// The room is full: a third player gets a new room of the kind.
	c := dial(t, h, f.addr, "c")
	jc, err := c.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	if jc.Room == ja.Room {
		t.Fatalf("c joined the full room %s", jc.Room)
	}
	if list := f.srv.List("counter"); len(list) != 2 || list[0].ID != ja.Room || list[0].Members != 2 || list[0].MaxMembers != 2 || list[0].Label != "L" {
		t.Fatalf("List: %+v", list)
	}
	for i := 1; i <= 100; i++ {
		if err := routeAdd.Send(ctxT(t), a, addMsg{N: i}); err != nil {
			t.Fatal(err)
		}
		if i <= 10 {
			if err := routeAdd.Send(ctxT(t), b, addMsg{N: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s := waitSum(t, a, 5050); s.Inputs != 100 || s.Seat != 0 || s.Disordered {
		t.Fatalf("a's sum %+v", s)
	}
	waitSum(t, b, 10)
	if n, err := f.srv.Signal(ctxT(t), ja.Room, "count"); err != nil || n != 2 {
		t.Fatalf("Signal: %v %v", n, err)
	}
	if _, err := f.srv.Signal(ctxT(t), "nope", nil); !errors.Is(err, room.ErrNoRoom) {
		t.Fatalf("Signal of no room: %v", err)
	}
	// Leaving frees the seat; the others see it.
	if err := b.Leave(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if l := recv(t, b.left, "left"); l.Reason != "left" || l.Room != ja.Room {
		t.Fatalf("b left %+v", l)
	}
	if ev := recv(t, a.members, "member event"); ev.Event != room.EventLeft || ev.Reason != "left" {
		t.Fatalf("a saw %+v", ev)
	}
	f.expect(t, "leave b left")
}

// Joins are refused with the reason the client sees.
func TestJoinRefused(t *testing.T) {
	f := start(t)
	h := newHost(t)
	a := dial(t, h, f.addr, "a")
	for _, tc := range []struct {
		req  room.JoinMsg
		want string
	}{
		{room.JoinMsg{Kind: "counter", Params: map[string]string{"fail": "no init"}}, "no init"},
		{room.JoinMsg{Kind: "counter"}, "wrong pass"},
		{room.JoinMsg{Kind: "nope"}, room.ErrUnknownKind.Error()},
		{room.JoinMsg{Room: "counter-999"}, room.ErrNoRoom.Error()},
	} {
		_, err := a.Join(ctxT(t), tc.req)
		if !errors.Is(err, client.ErrRefused) || !contains(err.Error(), tc.want) {
			t.Errorf("Join(%+v): %v, want refused with %q", tc.req, err, tc.want)
		}
	}
	j, err := a.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass, Params: map[string]string{"max": "4"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass}); !errors.Is(err, client.ErrRefused) {
		t.Fatalf("second join: %v", err)
	}
	if _, err := f.srv.Signal(ctxT(t), j.Room, "lock"); err != nil {
		t.Fatal(err)
	}
	b := dial(t, h, f.addr, "b")
	if _, err := b.Join(ctxT(t), room.JoinMsg{Room: j.Room, Meta: pass}); !errors.Is(err, client.ErrRefused) || !contains(err.Error(), "locked") {
		t.Fatalf("join of a locked room: %v", err)
	}
	// JoinOrCreate skips the locked room.
	jb, err := b.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil || jb.Room == j.Room {
		t.Fatalf("join by kind: %+v %v", jb, err)
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || (len(s) >= len(sub) && index(s, sub) >= 0) }

func index(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// A member whose connection is lost is dropped, keeps its seat and
// state, and comes back with its token; the others see dropped, then back.
func TestDropAndBack(t *testing.T) {
	f := start(t)
	h := newHost(t)
	a, b := dial(t, h, f.addr, "a"), dial(t, h, f.addr, "b")
	ja, err := a.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(ctxT(t), room.JoinMsg{Room: ja.Room, Meta: pass}); err != nil {
		t.Fatal(err)
	}
	recv(t, a.members, "b joined")
	if err := routeAdd.Send(ctxT(t), a, addMsg{N: 7}); err != nil {
		t.Fatal(err)
	}
	waitSum(t, a, 7)
	id := a.Player()
	// Cut a's connection on the server side, as a network failure would.
	if _, err := f.srv.Signal(ctxT(t), ja.Room, id); err != nil {
		t.Fatal(err)
	}
	f.expect(t, "dropped a")
	if ev := recv(t, b.members, "dropped"); ev.Event != room.EventDropped || ev.Member.Player != id {
		t.Fatalf("b saw %+v", ev)
	}
	j := recv(t, a.joined, "rejoined") // the first Joined, of the Join call
	if !j.Resumed {
		j = recv(t, a.joined, "rejoined")
	}
	if !j.Resumed || j.Seat != ja.Seat || j.Room != ja.Room || a.Player() != id {
		t.Fatalf("rejoined %+v as %d, want seat %d of %s as %d", j, a.Player(), ja.Seat, ja.Room, id)
	}
	f.expect(t, "back a")
	if ev := recv(t, b.members, "back"); ev.Event != room.EventBack || ev.Member.Player != id {
		t.Fatalf("b saw %+v", ev)
	}
	// Its state survived.
	if err := routeAdd.Send(ctxT(t), a, addMsg{N: 1}); err != nil {
		t.Fatal(err)
	}
	if s := waitSum(t, a, 8); s.Inputs != 2 {
		t.Fatalf("after rejoin %+v", s)
	}
	if st := a.Stats(); st.Rejoined != 1 || st.Resumed != 1 || st.Disconnects != 1 {
		t.Fatalf("client stats %+v", st)
	}
}

// Shutting the server down runs every room's Terminate and tells the
// members why they left.
func TestShutdown(t *testing.T) {
	f := start(t)
	h := newHost(t)
	a := dial(t, h, f.addr, "a")
	j, err := a.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if l := recv(t, a.left, "left"); l.Reason != "shutdown" || l.Room != j.Room {
		t.Fatalf("left %+v", l)
	}
	f.expect(t, "terminate "+j.Room)
	if list := f.srv.List(""); len(list) != 0 {
		t.Fatalf("rooms after shutdown: %+v", list)
	}
}

// An empty room closes after the grace period and leaves the listing.
func TestEmptyRoomCloses(t *testing.T) {
	f := start(t, room.WithEmptyGrace(50*time.Millisecond))
	h := newHost(t)
	a := dial(t, h, f.addr, "a")
	j, err := a.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Leave(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	f.expect(t, "terminate "+j.Room)
	if list := f.srv.List("counter"); len(list) != 0 {
		t.Fatalf("rooms: %+v", list)
	}
	if _, err := f.srv.Signal(ctxT(t), j.Room, nil); !errors.Is(err, room.ErrNoRoom) {
		t.Fatalf("Signal of a closed room: %v", err)
	}
}

// rawPlayer speaks the room protocol with a bare netloop host and its
// routes: it never reconnects by itself.
type rawPlayer struct {
	h *netloop.Host
	p netloop.Peer
}

func rawDial(t *testing.T, addr string) *rawPlayer {
	h := netlooptest.Start(t, "", netloop.WithChannels(2), netloop.WithDrainTimeout(time.Second))
	return &rawPlayer{h: h, p: netlooptest.Dial(t, h, addr, 2, 0)}
}

func (r *rawPlayer) Send(ctx context.Context, ch uint8, data []byte, flag netloop.Flag) error {
	return r.h.Send(ctx, r.p, ch, data, flag)
}

// next returns the next message of route's type, skipping others.
func next[T any](t *testing.T, r *rawPlayer, route dispatch.Route[T]) T {
	t.Helper()
	for {
		ev := netlooptest.Expect(t, r.h, netloop.EventReceive)
		if v, err := route.Decode(ev.Payload); err == nil {
			return v
		}
	}
}

// A dropped member that does not come back within the window leaves with
// LeaveExpired, and its token no longer resumes it.
func TestWindowExpires(t *testing.T) {
	f := start(t, room.WithReconnectWindow(100*time.Millisecond))
	r := rawDial(t, f.addr)
	if err := room.Hello.Send(ctxT(t), r, room.HelloMsg{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	w := next(t, r, room.Welcome)
	if w.Token == "" || w.Resumed {
		t.Fatalf("welcome %+v", w)
	}
	if err := room.JoinRequest.Send(ctxT(t), r, room.JoinMsg{Req: 9, Kind: "counter", Meta: pass}); err != nil {
		t.Fatal(err)
	}
	j := next(t, r, room.Joined)
	if j.Req != 9 {
		t.Fatalf("joined %+v", j)
	}
	f.expect(t, "join x seat 0")
	if _, err := f.srv.Signal(ctxT(t), j.Room, w.Player); err != nil {
		t.Fatal(err)
	}
	netlooptest.Expect(t, r.h, netloop.EventDisconnect)
	f.expect(t, "dropped x")
	f.expect(t, "leave x expired")
	r2 := rawDial(t, f.addr)
	if err := room.Hello.Send(ctxT(t), r2, room.HelloMsg{Token: w.Token}); err != nil {
		t.Fatal(err)
	}
	if w2 := next(t, r2, room.Welcome); w2.Resumed || w2.Player == w.Player {
		t.Fatalf("expired token resumed: %+v", w2)
	}
}

// A client cut off behind a blackhole is dropped by the server's liveness
// check, notices on its side too, and comes back to its seat with its
// state once the link returns.
func TestBlackholeReconnect(t *testing.T) {
	f := start(t)
	proxy, err := linkproxy.New("127.0.0.1:0", f.addr, linkproxy.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	netlooptest.Go(t, proxy.Run)
	h := newHost(t)
	a := dial(t, h, proxy.Addr().String(), "a")
	j, err := a.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	if err := routeAdd.Send(ctxT(t), a, addMsg{N: 3}); err != nil {
		t.Fatal(err)
	}
	waitSum(t, a, 3)
	for len(a.states) > 0 {
		<-a.states
	}
	proxy.Blackhole(true)
	cut := time.Now()
	f.expect(t, "dropped a")
	t.Logf("server dropped the player %v after the cut", time.Since(cut).Round(time.Millisecond))
	for recv(t, a.states, "state") != client.Disconnected {
	}
	t.Logf("client noticed %v after the cut", time.Since(cut).Round(time.Millisecond))
	proxy.Blackhole(false)
	f.expect(t, "back a")
	j2 := recv(t, a.joined, "joined")
	for !j2.Resumed {
		j2 = recv(t, a.joined, "joined")
	}
	if j2.Room != j.Room || j2.Seat != j.Seat {
		t.Fatalf("back in %+v, was %+v", j2, j)
	}
	if err := routeAdd.Send(ctxT(t), a, addMsg{N: 1}); err != nil {
		t.Fatal(err)
	}
	waitSum(t, a, 4)
}

// Options out of range and bad registrations are errors, never silent.
func TestOptionErrors(t *testing.T) {
	host, err := netloop.New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	for i, o := range []room.Option{room.WithLiveness(time.Millisecond), room.WithReconnectWindow(-1),
		room.WithEmptyGrace(-1), room.WithShutdownGrace(2 * time.Hour), room.WithMaxMembers(0),
		room.WithInputLimit(0), room.WithMux(nil), room.WithThrottle(netloop.Throttle{Interval: -time.Second})} {
		if _, err := room.New(host, o); !errors.Is(err, room.ErrOption) {
			t.Errorf("option %d: %v, want ErrOption", i, err)
		}
	}
	srv, err := room.New(host)
	if err != nil {
		t.Fatal(err)
	}
	f := func() room.Handler { return &counter{} }
	if err := srv.Register("k", f); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{srv.Register("k", f), srv.Register("", f), srv.Register("x", nil)} {
		if !errors.Is(err, room.ErrOption) {
			t.Errorf("Register: %v, want ErrOption", err)
		}
	}
	if _, err := srv.Create("k", nil); !errors.Is(err, room.ErrClosed) {
		t.Errorf("Create before Run: %v, want ErrClosed", err)
	}
}

// A kicked member is told and keeps its connection; a closed room tells
// its members, runs Terminate and leaves the listing.
func TestKickAndClose(t *testing.T) {
	f := start(t)
	h := newHost(t)
	a, b := dial(t, h, f.addr, "a"), dial(t, h, f.addr, "b")
	j, err := a.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(ctxT(t), room.JoinMsg{Room: j.Room, Meta: pass}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Signal(ctxT(t), j.Room, kick(b.Player())); err != nil {
		t.Fatal(err)
	}
	if l := recv(t, b.left, "left"); l.Reason != "kicked" {
		t.Fatalf("b left %+v", l)
	}
	f.expect(t, "leave b kicked")
	if ev := recv(t, a.members, "member event"); ev.Event != room.EventJoined {
		t.Fatalf("a saw %+v", ev)
	}
	if ev := recv(t, a.members, "member event"); ev.Event != room.EventLeft || ev.Reason != "kicked" {
		t.Fatalf("a saw %+v", ev)
	}
	// b is still connected and may join again.
	if _, err := b.Join(ctxT(t), room.JoinMsg{Room: j.Room, Meta: pass}); err != nil {
		t.Fatalf("join after a kick: %v", err)
	}
	if _, err := f.srv.Signal(ctxT(t), j.Room, "close"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*player{a, b} {
		if l := recv(t, p.left, "left"); l.Reason != "closed" || l.Room != j.Room {
			t.Fatalf("left %+v", l)
		}
	}
	f.expect(t, "terminate "+j.Room)
	if list := f.srv.List(""); len(list) != 0 {
		t.Fatalf("rooms: %+v", list)
	}
	if _, ok := a.Room(); ok {
		t.Fatal("client still in a room")
	}
}

// Inputs over a room's limit per tick are dropped and counted; the room
// goes on.
func TestInputLimit(t *testing.T) {
	f := start(t, room.WithInputLimit(1))
	h := newHost(t)
	a := dial(t, h, f.addr, "a")
	j, err := a.Join(ctxT(t), room.JoinMsg{Kind: "counter", Meta: pass, Params: map[string]string{"max": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	// 200 inputs sent at once arrive within a few ticks: one per tick fits.
	for range 200 {
		if err := routeAdd.Send(ctxT(t), a, addMsg{N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var st room.Stats
	deadline := time.After(wait)
	for st.Inputs+st.InputsDropped < 200 {
		select {
		case <-deadline:
			t.Fatalf("stats %+v", st)
		case <-a.sums: // a tick with inputs went by
		}
		v, err := f.srv.Signal(ctxT(t), j.Room, stats{})
		if err != nil {
			t.Fatal(err)
		}
		st = v.(room.Stats)
	}
	if st.InputsDropped == 0 || st.Inputs+st.InputsDropped != 200 {
		t.Fatalf("stats %+v: want some of 200 inputs dropped", st)
	}
	t.Logf("room stats %+v", st)
}

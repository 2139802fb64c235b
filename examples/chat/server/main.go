// Command server is a chat server with nicknames and rooms, speaking the
// protocol of package chatproto over ENet:
//
//	go run ./examples/chat/server
//	go run ./examples/chat/server -addr 127.0.0.1:6790 -peers 1024 -v -metrics 127.0.0.1:9101
//
// Talk to it with go run ./examples/chat/bot -nick alice. It prints
// "listening on <addr>" once its socket is bound, logs to stderr (every
// message too with -v), and runs until SIGINT or SIGTERM: then it
// disconnects its clients and exits with status 0.
//
// Each client says Hello with a nickname, unique on the server, before
// anything else. Rooms are created when first joined and removed when the
// last member leaves; each keeps its last few messages for newcomers. A
// client sends at most 20 messages a second (bursts of 40); the server drops
// the rest.
//
// # Cluster
//
// With -nats URL the server joins a cluster of chat servers through that
// NATS server (JetStream enabled); with -nats-listen ADDR it starts an
// embedded NATS server listening on ADDR and joins through it, so that
// other servers can join with -nats nats://ADDR. Then nicknames are unique
// across the cluster and rooms span its servers: a client sees what is
// said in its room on every server, and who joins and leaves, including
// the clients of a server that died (within -ttl). A room's history is
// kept by each server for its own newcomers. While NATS is unreachable the
// server goes on serving its own clients (their rooms reach local members
// only) and refuses new nicknames and joins with CodeUnavailable; it
// rejoins by itself. See package session/cluster.
//
//	go run ./examples/chat/server -addr 127.0.0.1:6790 -nats-listen 127.0.0.1:4222
//	go run ./examples/chat/server -addr 127.0.0.1:6791 -nats nats://127.0.0.1:4222
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/examples/chat/chatproto"
	"github.com/enetkit/enetkit/metrics"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
	"github.com/enetkit/enetkit/session/cluster"
)

// historySize is how many of a room's last messages a newcomer receives.
const historySize = 20

func main() {
	addr := flag.String("addr", "127.0.0.1:6790", "`address` to listen on")
	peers := flag.Int("peers", 1024, "most clients connected at once")
	verbose := flag.Bool("v", false, "log at debug level: every message")
	metricsAddr := flag.String("metrics", "", "serve Prometheus metrics at http://`addr`/metrics (e.g. 127.0.0.1:9101)")
	var cc clusterConfig
	flag.StringVar(&cc.url, "nats", "", "join a cluster through the NATS server at `URL` (e.g. nats://127.0.0.1:4222)")
	flag.StringVar(&cc.listen, "nats-listen", "", "start an embedded NATS server listening on `addr` and join a cluster through it")
	flag.StringVar(&cc.id, "node", "", "the node's `id` in the cluster (default: random)")
	flag.DurationVar(&cc.ttl, "ttl", 6*time.Second, "how soon the cluster drops a dead node")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal kills at once

	if err := run(ctx, *addr, *peers, *verbose, *metricsAddr, cc); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// clusterConfig is the cluster flags; with neither url nor listen the
// server runs alone.
type clusterConfig struct {
	url, listen, id string
	ttl             time.Duration
}

func run(ctx context.Context, addr string, peers int, verbose bool, metricsAddr string, cc clusterConfig) error {
	cfg := zap.NewDevelopmentConfig()
	if !verbose {
		cfg.Level.SetLevel(zap.InfoLevel)
	}
	log, err := cfg.Build()
	if err != nil {
		return err
	}
	defer log.Sync() // an error only means stderr cannot sync

	host, err := netloop.New(addr, netloop.WithPeers(peers), netloop.WithChannels(chatproto.Channels), netloop.WithLogger(log), netloop.WithTiming())
	if err != nil {
		return err
	}
	// Metrics are collected whether or not they are served: nil registers nothing.
	var reg *prometheus.Registry
	if metricsAddr != "" {
		reg = prometheus.NewRegistry()
	}
	m, err := metrics.New(metrics.WithRegisterer(reg))
	if err != nil {
		return err
	}
	m.AddHost("chat", host)
	c, err := newChat(log, m)
	if err != nil {
		return err
	}
	srv, err := session.New(host, c.mux, session.WithLogger(log), session.WithObserver(m))
	if err != nil {
		return err
	}
	runSessions := srv.Run
	if cc.url != "" || cc.listen != "" {
		cm, err := metrics.NewCluster(metrics.WithRegisterer(reg))
		if err != nil {
			return err
		}
		opts := []cluster.Option{cluster.WithLogger(log), cluster.WithLoginPolicy(cluster.LoginRefuse),
			cluster.WithCapacity(peers), cluster.WithTTL(cc.ttl), cluster.WithWatch(c.nodeEvent), cluster.WithObserver(cm)}
		if cc.url != "" {
			opts = append(opts, cluster.WithURL(cc.url))
		} else {
			opts = append(opts, cluster.WithServer(cc.listen))
		}
		if cc.id != "" {
			opts = append(opts, cluster.WithID(cc.id))
		}
		if c.node, err = cluster.New(srv, opts...); err != nil {
			return err
		}
		cm.SetNode(c.node)
		runSessions = c.node.Run // runs srv too
	}

	// New has bound the socket: clients can connect from now on.
	fmt.Println("listening on", host.Addr())
	g, ctx := errgroup.WithContext(ctx)
	if reg != nil {
		g.Go(func() error { return metrics.Serve(ctx, metricsAddr, reg) })
	}
	g.Go(func() error { return runSessions(ctx) })
	err = g.Wait()
	log.Info("stopped", zap.Error(err))
	return err
}

// chat is the server's state: nicknames and rooms. Its handlers run in the
// sessions' goroutines.
type chat struct {
	log  *zap.Logger
	mux  *dispatch.Mux
	node *cluster.Node // nil when the server runs alone

	// mu guards nicks, rooms and every room's history. Broadcasts to a room
	// are made under it too, so that a newcomer's history and the room's
	// live messages neither overlap nor leave a gap. They only wait while
	// the host's command queue is full.
	mu    sync.Mutex
	nicks map[string]*session.Session
	rooms map[string]*room
}

// room is one chat room, as this server knows it: its local members (all
// of them when the server runs alone), the cluster group that spans the
// servers when clustered, and the history of what was said here.
type room struct {
	name    string
	members *session.Group
	cg      *cluster.Group   // nil when the server runs alone
	history []chatproto.Said // oldest first, at most historySize; guarded by chat.mu
}

// member is a session's state, stored in it with Set under memberKey. Only
// the session's goroutine touches it: its handlers and its end.
type member struct {
	nick  string           // "" until Hello
	rooms map[string]*room // the rooms it is in
}

type memberKey struct{}

func newChat(log *zap.Logger, obs dispatch.Observer) (*chat, error) {
	c := &chat{
		log:   log.Named("chat"),
		nicks: make(map[string]*session.Session),
		rooms: make(map[string]*room),
	}
	var err error
	c.mux, err = dispatch.NewMux(dispatch.WithLogger(log), dispatch.WithMaxSize(chatproto.MaxMessage), dispatch.WithObserver(obs))
	if err != nil {
		return nil, err
	}
	c.mux.Use(dispatch.Recover(log), dispatch.Logging(log), dispatch.RateLimit(20, 40))
	handle(c, chatproto.TypeHello, c.hello)
	handle(c, chatproto.TypeJoin, c.join)
	handle(c, chatproto.TypeLeave, c.leave)
	handle(c, chatproto.TypeSay, c.say)
	handle(c, chatproto.TypeTell, c.tell)
	// A client's state lives in its session from its connect; when the
	// session ends, its nickname is freed and its rooms are told.
	c.mux.OnConnect(func(ctx context.Context, s *session.Session) error {
		s.Set(memberKey{}, &member{rooms: make(map[string]*room)})
		return nil
	})
	c.mux.OnDisconnect(func(ctx context.Context, s *session.Session, _ error) {
		m, _ := s.Get(memberKey{})
		c.gone(ctx, s, m.(*member))
	})
	return c, nil
}

// handle registers fn for messages of type typ, decoded from JSON.
//
// A session's context is cancelled as soon as its peer disconnects, while
// its last messages may still be waiting to be handled. fn gets a context
// without that cancellation, so that what a client said just before it
// left still reaches its rooms. Sends stay bounded: they fail with
// netloop.ErrClosed once the host stops.
func handle[T any](c *chat, typ uint32, fn func(ctx context.Context, s *session.Session, m *member, v T) error) {
	dispatch.Handle(c.mux, typ, chatproto.Codec, func(ctx context.Context, s *session.Session, v T) error {
		m, _ := s.Get(memberKey{})
		return fn(context.WithoutCancel(ctx), s, m.(*member), v)
	})
}

func (c *chat) hello(ctx context.Context, s *session.Session, m *member, h chatproto.Hello) error {
	if m.nick != "" {
		return c.refuse(ctx, s, chatproto.CodeNickSet, "your nickname is %q already", m.nick)
	}
	if err := chatproto.CheckNick(h.Nick); err != nil {
		return c.refuse(ctx, s, chatproto.CodeBadNick, "%v", err)
	}
	c.mu.Lock()
	_, taken := c.nicks[h.Nick]
	if !taken {
		c.nicks[h.Nick] = s
	}
	c.mu.Unlock()
	if taken {
		return c.refuse(ctx, s, chatproto.CodeNickTaken, "nickname %q is taken", h.Nick)
	}
	if c.node != nil {
		// Unique across the cluster: the node refuses a nickname bound elsewhere.
		if err := c.node.Bind(ctx, s, h.Nick); err != nil {
			c.mu.Lock()
			delete(c.nicks, h.Nick)
			c.mu.Unlock()
			switch {
			case errors.Is(err, cluster.ErrTaken):
				return c.refuse(ctx, s, chatproto.CodeNickTaken, "nickname %q is taken", h.Nick)
			case errors.Is(err, cluster.ErrUnavailable):
				return c.refuse(ctx, s, chatproto.CodeUnavailable, "the cluster is unreachable; try again later")
			case errors.Is(err, session.ErrEnded):
				return nil
			}
			return err
		}
	}
	m.nick = h.Nick
	c.log.Info("hello", zap.Stringer("session", s), zap.String("nick", m.nick))
	return nil
}

func (c *chat) join(ctx context.Context, s *session.Session, m *member, j chatproto.Join) error {
	if m.nick == "" {
		return c.refuse(ctx, s, chatproto.CodeNoNick, "say Hello with a nickname before joining a room")
	}
	if err := chatproto.CheckRoom(j.Room); err != nil {
		return c.refuse(ctx, s, chatproto.CodeBadRoom, "%v", err)
	}
	switch {
	case m.rooms[j.Room] != nil:
		return c.refuse(ctx, s, chatproto.CodeJoined, "you are in %s already", j.Room)
	case len(m.rooms) >= chatproto.MaxRooms:
		return c.refuse(ctx, s, chatproto.CodeTooManyRooms, "you are in %d rooms already", len(m.rooms))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[j.Room]
	if r == nil {
		r = &room{name: j.Room}
		if c.node != nil {
			r.cg, _ = c.node.Group(j.Room) // the name is checked
		} else {
			r.members = s.Server().NewGroup() // the server of the session that makes it
		}
		c.rooms[j.Room] = r
	}
	if err := c.add(ctx, r, s); err != nil {
		c.removeLocked(ctx, r, s) // drop the room if we made it
		if errors.Is(err, cluster.ErrUnavailable) {
			return c.refuse(ctx, s, chatproto.CodeUnavailable, "the cluster is unreachable; try again later")
		}
		return nil // s has ended
	}
	m.rooms[r.name] = r
	c.log.Info("joined", zap.Stringer("session", s), zap.String("nick", m.nick), zap.String("room", r.name))
	err := c.broadcast(ctx, r, chatproto.Joined{Room: r.name, Nick: m.nick})
	for i := 0; err == nil && i < len(r.history); i++ {
		err = c.send(ctx, s, r.history[i])
	}
	return sent(err)
}

func (c *chat) leave(ctx context.Context, s *session.Session, m *member, l chatproto.Leave) error {
	r := m.rooms[l.Room]
	if r == nil {
		return c.refuse(ctx, s, chatproto.CodeNotJoined, "you are not in %q", l.Room)
	}
	delete(m.rooms, l.Room)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(ctx, r, s)
	c.log.Info("left", zap.Stringer("session", s), zap.String("nick", m.nick), zap.String("room", r.name))
	left := chatproto.Left{Room: r.name, Nick: m.nick}
	err := c.broadcast(ctx, r, left)
	if err == nil {
		err = c.send(ctx, s, left) // s is not a member any more
	}
	return sent(err)
}

func (c *chat) say(ctx context.Context, s *session.Session, m *member, v chatproto.Say) error {
	r := m.rooms[v.Room]
	switch {
	case m.nick == "":
		return c.refuse(ctx, s, chatproto.CodeNoNick, "say Hello with a nickname before talking")
	case r == nil:
		return c.refuse(ctx, s, chatproto.CodeNotJoined, "join %q before talking there", v.Room)
	}
	if err := chatproto.CheckText(v.Text); err != nil {
		return c.refuse(ctx, s, chatproto.CodeBadText, "%v", err)
	}
	said := chatproto.Said{Room: r.name, Nick: m.nick, Text: v.Text}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(r.history) == historySize {
		r.history = append(r.history[:0], r.history[1:]...)
	}
	r.history = append(r.history, said)
	return sent(c.broadcast(ctx, r, said))
}

// tell sends a private message, through the cluster when clustered.
func (c *chat) tell(ctx context.Context, s *session.Session, m *member, v chatproto.Tell) error {
	if m.nick == "" {
		return c.refuse(ctx, s, chatproto.CodeNoNick, "say Hello with a nickname before talking")
	}
	if err := chatproto.CheckText(v.Text); err != nil {
		return c.refuse(ctx, s, chatproto.CodeBadText, "%v", err)
	}
	told := chatproto.Told{From: m.nick, Text: v.Text}
	if c.node != nil {
		b, err := chatproto.Encode(told)
		if err != nil {
			return err
		}
		n, err := c.node.Push(ctx, []string{v.To}, chatproto.Channel, b, netloop.Reliable)
		switch {
		case errors.Is(err, cluster.ErrUnavailable) && n == 0:
			return c.refuse(ctx, s, chatproto.CodeUnavailable, "the cluster is unreachable; try again later")
		case err != nil && !errors.Is(err, cluster.ErrUnavailable):
			return sent(err)
		case n == 0:
			return c.refuse(ctx, s, chatproto.CodeNoSuchNick, "nobody is called %q", v.To)
		}
		return nil
	}
	c.mu.Lock()
	to := c.nicks[v.To]
	c.mu.Unlock()
	if to == nil {
		return c.refuse(ctx, s, chatproto.CodeNoSuchNick, "nobody is called %q", v.To)
	}
	return sent(c.send(ctx, to, told))
}

// gone runs when s has ended: it frees the nickname, leaves s's rooms and
// tells them. The session has left its groups already, or is about to;
// Remove makes sure before the room is dropped when empty.
func (c *chat) gone(ctx context.Context, s *session.Session, m *member) {
	if m.nick == "" {
		return // no nickname, no rooms
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nicks[m.nick] == s {
		delete(c.nicks, m.nick)
	}
	for _, r := range m.rooms {
		c.removeLocked(ctx, r, s)
		err := c.broadcast(ctx, r, chatproto.Left{Room: r.name, Nick: m.nick})
		if err = sent(err); err != nil {
			c.log.Warn("announce leave", zap.String("room", r.name), zap.String("nick", m.nick), zap.Error(err))
		}
	}
	clear(m.rooms)
	c.log.Info("gone", zap.Stringer("session", s), zap.String("nick", m.nick))
}

// add puts s in r: in the cluster group when clustered.
func (c *chat) add(ctx context.Context, r *room, s *session.Session) error {
	if r.cg != nil {
		return r.cg.Join(ctx, s)
	}
	return r.members.Add(s)
}

// removeLocked takes s out of r and drops r if it has no local members
// left; c.mu is held.
func (c *chat) removeLocked(ctx context.Context, r *room, s *session.Session) {
	n := 0
	if r.cg != nil {
		// An error means the cluster is told when it is back (or that s
		// was unbound already, and left every group with it).
		_ = r.cg.Leave(ctx, s)
		n = len(r.cg.Local())
	} else {
		n = r.members.Remove(s)
	}
	if n == 0 && c.rooms[r.name] == r {
		delete(c.rooms, r.name)
	}
}

// broadcast sends m to r's members, on every node when clustered. A room
// whose cluster is unreachable still reaches its local members: that is
// not an error for the handler.
func (c *chat) broadcast(ctx context.Context, r *room, m chatproto.Message) error {
	b, err := chatproto.Encode(m)
	if err != nil {
		return err
	}
	if r.cg == nil {
		return r.members.Broadcast(ctx, chatproto.Channel, b, netloop.Reliable)
	}
	err = r.cg.Broadcast(ctx, chatproto.Channel, b, netloop.Reliable)
	if errors.Is(err, cluster.ErrUnavailable) {
		c.log.Debug("room reached local members only", zap.String("room", r.name), zap.Error(err))
		return nil
	}
	return err
}

// nodeEvent tells the local members of each room that the clients of a
// dead node left. It runs in the node's goroutine.
func (c *chat) nodeEvent(e cluster.NodeEvent) {
	if e.Kind == cluster.NodeJoined {
		if e.Node.ID == c.node.ID() {
			fmt.Println("joined the cluster as", e.Node.ID)
		} else {
			fmt.Println("node", e.Node.ID, "joined")
		}
		return
	}
	fmt.Println("node", e.Node.ID, "left")
	c.log.Info("node left", zap.String("node", e.Node.ID), zap.Int("rooms", len(e.Lost)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, nicks := range e.Lost {
		r := c.rooms[name]
		if r == nil || r.cg == nil {
			continue
		}
		for _, nick := range nicks {
			b, err := chatproto.Encode(chatproto.Left{Room: name, Nick: nick})
			if err == nil {
				err = r.cg.BroadcastLocal(ctx, chatproto.Channel, b, netloop.Reliable)
			}
			if err = sent(err); err != nil {
				c.log.Warn("announce leave", zap.String("room", name), zap.String("nick", nick), zap.Error(err))
			}
		}
	}
}

// send sends m to s alone.
func (c *chat) send(ctx context.Context, s *session.Session, m chatproto.Message) error {
	b, err := chatproto.Encode(m)
	if err != nil {
		return err
	}
	return s.Send(ctx, chatproto.Channel, b, netloop.Reliable)
}

// refuse answers a request of s with an Error.
func (c *chat) refuse(ctx context.Context, s *session.Session, code chatproto.Code, format string, args ...any) error {
	text := fmt.Sprintf(format, args...)
	c.log.Debug("refused", zap.Stringer("session", s), zap.String("code", string(code)), zap.String("text", text))
	return sent(c.send(ctx, s, chatproto.Error{Code: code, Text: text}))
}

// sent filters out the errors of a send that only mean that the receiver
// has gone (its Disconnect follows, and gone cleans up) or that the server
// is shutting down: a handler must not fail its session for either.
func sent(err error) error {
	if errors.Is(err, netloop.ErrGone) {
		return nil
	}
	return err
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/enetkit/enetkit/session"
)

// Errors of this package. Check them with errors.Is.
var (
	// ErrUnavailable: the node is not joined to the cluster right now (NATS
	// is unreachable, the node is (re)joining, or it is not running). Cluster
	// calls fail with it at once rather than wait.
	ErrUnavailable = errors.New("cluster: unavailable")
	// ErrBadName: a user id, group, service or node name is empty, too long
	// or has control characters.
	ErrBadName = errors.New("cluster: bad name")
	// ErrOption: an option given to New is out of range or inconsistent.
	ErrOption = errors.New("cluster: option out of range")
	// ErrRunning: Run was called on a node that runs or ran already.
	ErrRunning = errors.New("cluster: node ran already")
	// ErrTaken: Bind with the Refuse policy found the user logged in on a live node.
	ErrTaken = errors.New("cluster: user logged in already")
	// ErrNotBound: the session is not bound to a user id.
	ErrNotBound = errors.New("cluster: session not bound")
	// ErrBound: the session is bound to another user id already.
	ErrBound = errors.New("cluster: session bound to another user")
	// ErrMalformed: a message from another node could not be parsed.
	ErrMalformed = errors.New("cluster: malformed message")
	// ErrNoService: no node serves the service (on the node asked for).
	ErrNoService = errors.New("cluster: no such service")
	// ErrTimeout: a request got no answer in time.
	ErrTimeout = errors.New("cluster: request timed out")
	// ErrRemote matches every *RemoteError: the service's handler failed.
	ErrRemote = errors.New("cluster: remote service failed")
)

// LoginPolicy says what Bind does when the user is logged in already.
type LoginPolicy uint8

const (
	// LoginKick binds the new session and kicks the older one, wherever it is. The default.
	LoginKick LoginPolicy = iota
	// LoginRefuse keeps the older session and fails Bind with ErrTaken.
	LoginRefuse
)

// NodeInfo is what a node publishes about itself in the directory.
type NodeInfo struct {
	ID       string    `json:"id"`
	Addr     string    `json:"addr"`     // the ENet address its clients use
	Peers    int       `json:"peers"`    // connected peers at the last heartbeat
	Capacity int       `json:"capacity"` // most peers it takes
	Started  time.Time `json:"started"`
}

// EventKind says whether a node joined or left.
type EventKind uint8

// The kinds of NodeEvent.
const (
	NodeJoined EventKind = iota + 1
	NodeLeft
)

func (k EventKind) String() string {
	switch k {
	case NodeJoined:
		return "joined"
	case NodeLeft:
		return "left"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// NodeEvent tells that a node joined or left the cluster.
type NodeEvent struct {
	Kind EventKind
	Node NodeInfo
	// Left: the members the node still had in each group (group name ->
	// user ids) when it left. They have left those groups; a clean leave
	// removes them first, so only a dead node leaves any here.
	Lost map[string][]string
}

// Observer is told the latency of cluster requests (package metrics
// implements it). It is called from the requesting goroutine and must not block.
type Observer interface {
	RequestDone(service string, d time.Duration, err error)
}

// Stats are a node's counters. NATS messages count the node's own traffic
// (pushes, broadcasts, requests and replies), not the key-value directory's.
type Stats struct {
	Connected bool   // joined: connected to NATS and the directory is in sync
	Joins     uint64 // times the node joined: 1, plus 1 per rejoin after losing NATS
	Nodes     int    // live nodes, this one included
	Users     int    // user bindings in the directory, on live nodes
	Local     int    // bindings of this node's sessions

	Published uint64 // NATS messages published
	Received  uint64 // NATS messages received
	Malformed uint64 // received messages that did not parse, dropped

	// Losses while unavailable: the remote part of a push or broadcast
	// that could not be published (Lost, in NATS messages), and cluster
	// calls refused with ErrUnavailable (Refused).
	Lost    uint64
	Refused uint64
	Kicked  uint64 // local sessions kicked by a newer login of their user
}

// Option configures a Node.
type Option func(*config) error

type config struct {
	url      string
	embedded bool
	listen   string
	id       string
	addr     string
	capacity int
	ttl      time.Duration
	timeout  time.Duration
	prefix   string
	policy   LoginPolicy
	log      *zap.Logger
	obs      Observer
	watch    func(NodeEvent)
}

// WithURL joins the cluster through the NATS server(s) at url
// (comma-separated, e.g. "nats://127.0.0.1:4222").
func WithURL(url string) Option {
	return func(c *config) error {
		if url == "" {
			return fmt.Errorf("%w: empty NATS URL", ErrOption)
		}
		c.url = url
		return nil
	}
}

// WithServer makes Run start an embedded NATS server with JetStream (its
// store in a temporary directory, removed when Run returns) and join
// through it. With listen "" the server is in-process only; with an
// address ("127.0.0.1:4222", ":4222") other nodes can join with
// WithURL("nats://" + listen).
func WithServer(listen string) Option {
	return func(c *config) error {
		c.embedded, c.listen = true, listen
		return nil
	}
}

// WithID sets the node's id (default: a random one). Ids must be unique in
// the cluster.
func WithID(id string) Option {
	return func(c *config) error {
		if err := checkName("node id", id); err != nil {
			return err
		}
		c.id = id
		return nil
	}
}

// WithAddr sets the ENet address the node's clients use, as published in
// the directory (default: the host's bound address).
func WithAddr(addr string) Option {
	return func(c *config) error { c.addr = addr; return nil }
}

// WithCapacity sets the capacity published in the directory (default 0: unknown).
func WithCapacity(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("%w: capacity %d", ErrOption, n)
		}
		c.capacity = n
		return nil
	}
}

// WithTTL sets how long a node that stopped answering stays in the
// directory (default 6s, at least 400ms). A node heartbeats every TTL/4;
// the others drop it, with its bindings and group memberships, within
// the TTL of its last heartbeat. Every node of a cluster must use the same TTL.
func WithTTL(d time.Duration) Option {
	return func(c *config) error {
		if d < 400*time.Millisecond {
			return fmt.Errorf("%w: TTL %v below 400ms", ErrOption, d)
		}
		c.ttl = d
		return nil
	}
}

// WithTimeout bounds each directory operation and each request without a
// deadline of its own (default 2s).
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout %v", ErrOption, d)
		}
		c.timeout = d
		return nil
	}
}

// WithPrefix names the cluster: the prefix of its subjects and buckets
// (default "enetkit"). Clusters with different prefixes share a NATS
// server without seeing each other.
func WithPrefix(p string) Option {
	return func(c *config) error {
		if err := checkName("prefix", p); err != nil {
			return err
		}
		if token(p) != p {
			return fmt.Errorf("%w: prefix %q: use letters, digits, '-' and '_'", ErrBadName, p)
		}
		c.prefix = p
		return nil
	}
}

// WithLoginPolicy sets what Bind does when the user is logged in already
// (default Kick).
func WithLoginPolicy(p LoginPolicy) Option {
	return func(c *config) error {
		if p > LoginRefuse {
			return fmt.Errorf("%w: login policy %d", ErrOption, p)
		}
		c.policy = p
		return nil
	}
}

// WithLogger sets the logger (default and nil: none).
func WithLogger(l *zap.Logger) Option {
	return func(c *config) error {
		if l == nil {
			l = zap.NewNop()
		}
		c.log = l
		return nil
	}
}

// WithObserver sets an observer of requests.
func WithObserver(o Observer) Option {
	return func(c *config) error { c.obs = o; return nil }
}

// WithWatch has fn told, in order, when a node joins or leaves (this one
// included, when it joins). fn runs in the node's goroutine: it must not block.
func WithWatch(fn func(NodeEvent)) Option {
	return func(c *config) error { c.watch = fn; return nil }
}

// Node is one process's membership of a cluster: it runs a session.Server
// and ties its sessions to the cluster's directory, pushes, groups and
// requests. Create it with New and run it with Run. Its methods are safe
// for concurrent use.
type Node struct {
	cfg      config
	srv      *session.Server
	log      *zap.Logger
	started  time.Time
	services map[string]Service   // set before Run, read-only after
	regs     map[string]*Registry // set before Run, read-only after

	ran  atomic.Bool
	nc   atomic.Pointer[nats.Conn]
	kv   atomic.Pointer[buckets] // nil until joined
	live atomic.Bool             // joined and in sync
	gen  atomic.Uint64           // incremented on every NATS disconnect and broken watch
	wake chan struct{}           // NATS state changed or work queued; capacity 1
	ctx  atomic.Pointer[context.Context]
	// life is done when the NATS connection is lost; endLife ends it.
	life    atomic.Pointer[context.Context]
	endLife atomic.Pointer[context.CancelFunc]

	published, received, malformed, lost, refused, kicked, joins atomic.Uint64

	mu      sync.Mutex
	nodes   map[string]*nodeState             // replica: live nodes
	users   map[string]userEntry              // replica: user -> binding
	members map[string]map[string]memberEntry // replica: group -> user -> membership
	local   map[string]*binding               // this node's bindings, by user
	groups  map[string]*groupState            // this node's groups, by name
	ended   []ended                           // sessions ended, to unbind by the loop
	events  []NodeEvent                       // to hand to the watch, outside mu
}

type nodeState struct {
	info NodeInfo
	seen time.Time // when its last heartbeat was seen, by this node's clock
}

// userEntry is the value of a user's key.
type userEntry struct {
	Node    string `json:"node"`
	Session uint64 `json:"session"`
	rev     uint64
}

// binding is a session of this node bound to a user.
type binding struct {
	s      *session.Session
	rev    uint64          // the key's revision; 0 if not in the directory yet
	groups map[string]bool // the groups it is in
	stop   func() bool     // stops the end watch; guarded by n.mu
	gone   bool            // unbound: ended or displaced; guarded by n.mu
}

type ended struct {
	user string
	s    *session.Session
}

type buckets struct {
	nodes, users, groups jetstream.KeyValue
}

type bindKey struct{ n *Node }

// New returns a node serving srv's sessions. It starts nothing; Run does.
// One of WithURL and WithServer is required.
func New(srv *session.Server, opts ...Option) (*Node, error) {
	c := config{ttl: 6 * time.Second, timeout: 2 * time.Second, prefix: "enetkit", log: zap.NewNop()}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	switch {
	case srv == nil:
		return nil, fmt.Errorf("%w: nil server", ErrOption)
	case c.url == "" && !c.embedded:
		return nil, fmt.Errorf("%w: neither WithURL nor WithServer", ErrOption)
	case c.url != "" && c.embedded:
		return nil, fmt.Errorf("%w: both WithURL and WithServer", ErrOption)
	}
	if c.id == "" {
		c.id = nuid.Next()
	}
	if c.addr == "" {
		c.addr = srv.Host().Addr().String()
	}
	n := &Node{
		cfg:      c,
		srv:      srv,
		log:      c.log.Named("cluster").With(zap.String("node", c.id)),
		services: make(map[string]Service),
		wake:     make(chan struct{}, 1),
		nodes:    make(map[string]*nodeState),
		users:    make(map[string]userEntry),
		members:  make(map[string]map[string]memberEntry),
		local:    make(map[string]*binding),
		groups:   make(map[string]*groupState),
	}
	n.newLife()
	return n, nil
}

// ID returns the node's id.
func (n *Node) ID() string { return n.cfg.id }

// Server returns the node's session server.
func (n *Node) Server() *session.Server { return n.srv }

// Live reports whether the node is joined: connected to NATS, with its
// directory in sync. While it is not, cluster calls fail with ErrUnavailable.
func (n *Node) Live() bool { return n.live.Load() }

// Nodes returns the live nodes, this one included, sorted by id.
func (n *Node) Nodes() []NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]NodeInfo, 0, len(n.nodes))
	for _, st := range n.nodes {
		out = append(out, st.info)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return cmpString(a.ID, b.ID) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	nodes, local := len(n.nodes), len(n.local)
	users := 0
	for _, e := range n.users {
		if n.nodes[e.Node] != nil {
			users++
		}
	}
	n.mu.Unlock()
	return Stats{
		Connected: n.live.Load(), Joins: n.joins.Load(),
		Nodes: nodes, Users: users, Local: local,
		Published: n.published.Load(), Received: n.received.Load(), Malformed: n.malformed.Load(),
		Lost: n.lost.Load(), Refused: n.refused.Load(), Kicked: n.kicked.Load(),
	}
}

// Subjects and buckets.
func (n *Node) bucket(kind string) string { return n.cfg.prefix + "-" + kind }
func (n *Node) nodeSubject(id, op string) string {
	return n.cfg.prefix + ".node." + token(id) + "." + op
}
func (n *Node) groupSubject(name string) string { return n.cfg.prefix + ".group." + token(name) }
func (n *Node) serviceSubject(name, node string) string {
	s := n.cfg.prefix + ".svc." + token(name)
	if node != "" {
		s += "." + token(node)
	}
	return s
}

// signal wakes the loop.
func (n *Node) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// unavailable counts a refusal and returns ErrUnavailable.
func (n *Node) unavailable(what string) error {
	n.refused.Add(1)
	return fmt.Errorf("%w: %s", ErrUnavailable, what)
}

// conn returns the NATS connection if the node is joined.
func (n *Node) conn() *nats.Conn {
	nc := n.nc.Load()
	if !n.live.Load() || nc == nil || !nc.IsConnected() {
		return nil
	}
	return nc
}

// opCtx bounds a cluster operation by the node's timeout, and ends it
// when the NATS connection is lost.
func (n *Node) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.timeout)
	ctx, stop := n.connected(ctx)
	return ctx, func() { stop(); cancel() }
}

// connected returns a context that is cancelled when the NATS connection
// is lost: an operation in flight then fails at once rather than at its
// timeout.
func (n *Node) connected(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(*n.life.Load(), cancel)
	return ctx, func() { stop(); cancel() }
}

// newLife ends the operations of the connection that was lost and starts
// a new life for those of the next.
func (n *Node) newLife() {
	ctx, cancel := context.WithCancel(context.Background())
	old := n.endLife.Swap(&cancel)
	n.life.Store(&ctx)
	if old != nil {
		(*old)()
	}
}

// Run joins the cluster and runs the session server until ctx is
// cancelled or the server fails. It starts the embedded NATS server if
// configured, connects (retrying for ever: the node plays locally while
// NATS is unreachable and rejoins by itself when it is back), registers
// the node and heartbeats. On cancel it stops the sessions first (their
// bindings and group memberships are removed as they end), then removes
// the node from the directory, closes the connection and stops the
// embedded server. Run returns nil after a ctx-initiated stop, once every
// goroutine it started has returned.
func (n *Node) Run(ctx context.Context) (err error) {
	if !n.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	n.started = time.Now()
	n.ctx.Store(&ctx)
	url := n.cfg.url
	opts := []nats.Option{
		nats.Name("enetkit-" + n.cfg.id),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, 100*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1), // publish fails at once while disconnected
		nats.PingInterval(n.cfg.ttl / 2),
		nats.MaxPingsOutstanding(2),
		nats.Timeout(n.cfg.timeout),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { n.gen.Add(1); n.live.Store(false); n.newLife(); n.signal() }),
		nats.ReconnectHandler(func(*nats.Conn) { n.signal() }),
		nats.ConnectHandler(func(*nats.Conn) { n.signal() }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			n.log.Warn("nats", zap.Error(err))
		}),
	}
	if n.cfg.embedded {
		ns, dir, err := n.startServer()
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
			if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
				err = fmt.Errorf("cluster: remove store: %w", rerr)
			}
		}()
		if n.cfg.listen == "" {
			opts = append(opts, nats.InProcessServer(ns))
		}
		url = ns.ClientURL()
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("cluster: connect to %s: %w", url, err)
	}
	defer nc.Close()
	n.nc.Store(nc)
	if err := n.subscribe(nc); err != nil {
		return err
	}

	sessions, stopSessions := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSessions()
	stop := context.AfterFunc(ctx, stopSessions)
	defer stop()
	var wg sync.WaitGroup
	var srvErr error
	done := make(chan struct{}) // closed when the server's Run returns
	wg.Go(func() {
		defer close(done)
		srvErr = n.srv.Run(sessions)
	})
	for _, r := range n.regs {
		wg.Go(func() { r.run(ctx) })
	}
	n.loop(ctx, done)
	wg.Wait()
	return srvErr
}

// startServer starts the embedded NATS server.
func (n *Node) startServer() (*server.Server, string, error) {
	dir, err := os.MkdirTemp("", "enetkit-nats-")
	if err != nil {
		return nil, "", fmt.Errorf("cluster: store dir: %w", err)
	}
	o := &server.Options{
		ServerName: "enetkit-" + n.cfg.id,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
		DontListen: n.cfg.listen == "",
		Port:       -1,
	}
	if n.cfg.listen != "" {
		host, port, err := splitHostPort(n.cfg.listen)
		if err != nil {
			os.RemoveAll(dir)
			return nil, "", err
		}
		o.Host, o.Port = host, port
	}
	ns, err := server.NewServer(o)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("cluster: embedded NATS server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("cluster: embedded NATS server on %q did not start", n.cfg.listen)
	}
	return ns, dir, nil
}

// subscribe subscribes the node's own subjects; they survive reconnects.
func (n *Node) subscribe(nc *nats.Conn) error {
	if _, err := nc.Subscribe(n.nodeSubject(n.cfg.id, "push"), n.onPush); err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	for name, svc := range n.services {
		h := n.serveRequest(name, svc)
		if _, err := nc.QueueSubscribe(n.serviceSubject(name, ""), "svc", h); err != nil {
			return fmt.Errorf("cluster: subscribe service %s: %w", name, err)
		}
		if _, err := nc.Subscribe(n.serviceSubject(name, n.cfg.id), h); err != nil {
			return fmt.Errorf("cluster: subscribe service %s: %w", name, err)
		}
	}
	return nil
}

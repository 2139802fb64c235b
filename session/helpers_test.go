package session_test

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait is the longest any test waits for one thing to happen on loopback.
const wait = netlooptest.Timeout

// server is a session.Server running on a loopback host until the test ends.
type server struct {
	*session.Server
	addr string    // where clients connect
	obs  *observer // sees everything the server reports
	// stop cancels Run's context and returns Run's error; it is idempotent.
	stop func() error
}

// startServer runs a session server for h on 127.0.0.1 with two channels,
// the test's logger and an observer; hostOpts and opts come after those
// defaults. The cleanup stops it and fails the test unless Run returns nil.
func startServer(t *testing.T, h session.Handler, hostOpts []netloop.Option, opts ...session.Option) *server {
	t.Helper()
	log := netlooptest.Logger(t)
	hostOpts = append([]netloop.Option{
		netloop.WithLogger(log), netloop.WithChannels(2), netloop.WithDrainTimeout(2 * time.Second),
		netloop.WithPerAddressLimit(netloop.MaxPeers), // every test client is on 127.0.0.1
	}, hostOpts...)
	host, err := netloop.New("127.0.0.1:0", hostOpts...)
	if err != nil {
		t.Fatalf("netloop.New: %v", err)
	}
	obs := newObserver()
	opts = append([]session.Option{session.WithLogger(log), session.WithObserver(obs)}, opts...)
	ss, err := session.New(host, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := &server{
		Server: ss,
		addr:   "127.0.0.1:" + strconv.Itoa(int(host.Addr().Port())),
		obs:    obs,
	}
	srv.stop = netlooptest.Go(t, srv.Run)
	return srv
}

// startClient runs a client host until the test ends.
func startClient(t *testing.T, opts ...netloop.Option) *netloop.Host {
	t.Helper()
	opts = append([]netloop.Option{
		netloop.WithLogger(netlooptest.Logger(t)), netloop.WithChannels(2), netloop.WithDrainTimeout(2 * time.Second),
	}, opts...)
	return netlooptest.Start(t, "", opts...)
}

// dial connects cli to addr and waits for the Connect event, which must be
// the client's next event.
func dial(t *testing.T, cli *netloop.Host, addr string, channels int, data uint32) netloop.Peer {
	t.Helper()
	return netlooptest.Dial(t, cli, addr, channels, data)
}

// next returns h's next event, failing the test after wait.
func next(t *testing.T, h *netloop.Host) netloop.Event {
	t.Helper()
	return netlooptest.Next(t, h)
}

// expect returns h's next event, which must be of kind k.
func expect(t *testing.T, h *netloop.Host, k netloop.Kind) netloop.Event {
	t.Helper()
	return netlooptest.Expect(t, h, k)
}

// send sends data from cli to p or fails the test.
func send(t *testing.T, cli *netloop.Host, p netloop.Peer, ch uint8, data []byte, flag netloop.Flag) {
	t.Helper()
	if err := cli.Send(netlooptest.Context(t), p, ch, data, flag); err != nil {
		t.Fatalf("client Send: %v", err)
	}
}

// roundTrip sends text from cli over p and expects an echo of it.
func roundTrip(t *testing.T, cli *netloop.Host, p netloop.Peer, text string) {
	t.Helper()
	send(t, cli, p, 0, []byte(text), netloop.Reliable)
	ev := expect(t, cli, netloop.EventReceive)
	if ev.Peer != p || string(ev.Payload) != text {
		t.Fatalf("echo %q from %v, want %q from %v", ev.Payload, ev.Peer, text, p)
	}
}

// echo is a handler that sends every message back, as it came.
func echo(ctx context.Context, s *session.Session) error {
	for {
		m, err := s.Receive(ctx)
		if err != nil {
			return nil
		}
		if err := s.Send(ctx, m.Channel, m.Data, m.Flag); err != nil {
			return err
		}
	}
}

// byData picks a session's handler by its connect data; unknown data gets echo.
type byData map[uint32]session.HandlerFunc

func (b byData) ServeSession(ctx context.Context, s *session.Session) error {
	if h, ok := b[s.ConnectData()]; ok {
		return h(ctx, s)
	}
	return echo(ctx, s)
}

// sessions carries sessions from handlers to the test.
type sessions chan *session.Session

func newSessions() sessions { return make(sessions, 256) } // more than any test connects

// next returns the next session, failing the test after wait.
func (c sessions) next(t *testing.T) *session.Session {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(wait):
		t.Fatal("no session")
	}
	return nil
}

// ended waits for s's end and returns its *EndError.
func ended(t *testing.T, s *session.Session) *session.EndError {
	t.Helper()
	select {
	case <-s.Context().Done():
	case <-time.After(wait):
		t.Fatalf("%v did not end", s)
	}
	var end *session.EndError
	if err := s.Err(); !errors.As(err, &end) {
		t.Fatalf("%v: Err() = %v, want an *EndError", s, err)
	}
	if cause := context.Cause(s.Context()); cause != error(end) {
		t.Fatalf("%v: context.Cause = %v, want Err() %v", s, cause, end)
	}
	return end
}

// isEnd checks that err is an *EndError for reason r.
func isEnd(t *testing.T, err error, r session.Reason) *session.EndError {
	t.Helper()
	var end *session.EndError
	if !errors.Is(err, session.ErrEnded) || !errors.As(err, &end) {
		t.Fatalf("error %v, want an *EndError", err)
	}
	if end.Reason != r {
		t.Fatalf("end %v, want reason %v", end, r)
	}
	return end
}

// release returns a channel that handlers block on and a function that
// closes it (idempotent). Register the function with t.Cleanup after
// startServer, so that it runs before the server stops: Run waits for
// every handler.
func release() (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	return ch, func() { once.Do(func() { close(ch) }) }
}

// seqMsg is a numbered message: 4 bytes of sequence number, then padding.
func seqMsg(seq uint32, size int) []byte {
	b := make([]byte, max(size, 4))
	binary.BigEndian.PutUint32(b, seq)
	return b
}

func seqOf(b []byte) uint32 {
	if len(b) < 4 {
		return 1<<32 - 1
	}
	return binary.BigEndian.Uint32(b)
}

// observer is a session.Observer that records every call.
type observer struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every call
	started  []*session.Session
	ends     map[*session.Session]*session.EndError
	endOrder []*session.Session
	dropped  map[*session.Session][]session.Message
	failures []failure
}

type failure struct {
	s        *session.Session
	err      error
	panicked bool
}

func newObserver() *observer {
	return &observer{
		changed: make(chan struct{}),
		ends:    make(map[*session.Session]*session.EndError),
		dropped: make(map[*session.Session][]session.Message),
	}
}

// record runs f under the lock and wakes waiters.
func (o *observer) record(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f()
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *observer) SessionStarted(s *session.Session) {
	o.record(func() { o.started = append(o.started, s) })
}

func (o *observer) SessionEnded(s *session.Session, end *session.EndError, lifetime time.Duration) {
	o.record(func() {
		if _, dup := o.ends[s]; dup {
			panic("SessionEnded twice for " + s.String())
		}
		if lifetime < 0 {
			panic("negative lifetime")
		}
		o.ends[s] = end
		o.endOrder = append(o.endOrder, s)
	})
}

func (o *observer) MessageDropped(s *session.Session, m session.Message) {
	o.record(func() { o.dropped[s] = append(o.dropped[s], m) })
}

func (o *observer) HandlerFailed(s *session.Session, err error, panicked bool) {
	o.record(func() { o.failures = append(o.failures, failure{s, err, panicked}) })
}

// waitFor waits until cond, called with the observer locked, holds.
func (o *observer) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		o.mu.Lock()
		ok, changed := cond(), o.changed
		o.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// endOf waits for the observer to see s end and returns the end it saw;
// by then s has left its groups.
func (o *observer) endOf(t *testing.T, s *session.Session) *session.EndError {
	t.Helper()
	var end *session.EndError
	o.waitFor(t, "end of "+s.String(), func() bool { end = o.ends[s]; return end != nil })
	return end
}

// drops returns the number of messages of s the observer saw dropped.
func (o *observer) drops(s *session.Session) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.dropped[s])
}

// snapshot returns a copy of the recorded failures and starts.
func (o *observer) failuresOf(s *session.Session) []failure {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []failure
	for _, f := range o.failures {
		if f.s == s {
			out = append(out, f)
		}
	}
	return out
}

func (o *observer) wasStarted(s *session.Session) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, x := range o.started {
		if x == s {
			return true
		}
	}
	return false
}

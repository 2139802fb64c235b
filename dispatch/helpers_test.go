package dispatch_test

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait is the longest any test waits for one thing to happen on loopback.
const wait = netlooptest.Timeout

// server is a session server with a Mux as its handler, on loopback.
type server struct {
	*session.Server
	addr     string
	sessions *sessionLog
	stop     func() error // cancels Run and returns its error; idempotent
}

// serve runs mux on a loopback host with two channels until the test ends.
func serve(tb testing.TB, mux *dispatch.Mux, opts ...session.Option) *server {
	tb.Helper()
	log := netlooptest.Logger(tb)
	host, err := netloop.New("127.0.0.1:0", netloop.WithLogger(log), netloop.WithChannels(2), netloop.WithDrainTimeout(2*time.Second))
	if err != nil {
		tb.Fatalf("netloop.New: %v", err)
	}
	sl := newSessionLog()
	ss, err := session.New(host, mux, append([]session.Option{session.WithLogger(log), session.WithObserver(sl)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &server{
		Server:   ss,
		addr:     "127.0.0.1:" + strconv.Itoa(int(host.Addr().Port())),
		sessions: sl,
	}
	srv.stop = netlooptest.Go(tb, srv.Run)
	return srv
}

// client is a plain netloop host with one connection to a server.
type client struct {
	*netloop.Host
	peer netloop.Peer
}

// connect runs a client host until the test ends and connects it to srv
// with two channels and the given connect data.
func connect(tb testing.TB, srv *server, data uint32) *client {
	tb.Helper()
	h := netlooptest.Start(tb, "", netloop.WithLogger(netlooptest.Logger(tb)), netloop.WithChannels(2), netloop.WithDrainTimeout(2*time.Second))
	return &client{Host: h, peer: netlooptest.Dial(tb, h, srv.addr, 2, data)}
}

func (c *client) next(tb testing.TB) netloop.Event {
	tb.Helper()
	return netlooptest.Next(tb, c.Host)
}

func (c *client) expect(tb testing.TB, k netloop.Kind) netloop.Event {
	tb.Helper()
	return netlooptest.Expect(tb, c.Host, k)
}

// send sends raw bytes on channel ch, reliably.
func (c *client) send(tb testing.TB, ch uint8, b []byte) {
	tb.Helper()
	if err := c.Send(netlooptest.Context(tb), c.peer, ch, b, netloop.Reliable); err != nil {
		tb.Fatalf("client Send: %v", err)
	}
}

// sendMsg encodes v with codec as a message of type typ and sends it on channel 0.
func (c *client) sendMsg(tb testing.TB, codec dispatch.Codec, typ uint32, v any) {
	tb.Helper()
	b, err := dispatch.Encode(codec, typ, v)
	if err != nil {
		tb.Fatalf("Encode: %v", err)
	}
	c.send(tb, 0, b)
}

// reply waits for a typed message and decodes its payload with codec into v.
func (c *client) reply(tb testing.TB, codec dispatch.Codec, v any) uint32 {
	tb.Helper()
	ev := c.expect(tb, netloop.EventReceive)
	typ, payload, err := dispatch.ParseMessage(ev.Payload)
	if err != nil {
		tb.Fatalf("reply %q: %v", ev.Payload, err)
	}
	if err := codec.Unmarshal(payload, v); err != nil {
		tb.Fatalf("reply of type %d: %v", typ, err)
	}
	return typ
}

// sessionLog is a session.Observer that keeps sessions and their ends by connect data.
type sessionLog struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every call
	started map[uint32]*session.Session
	ends    map[uint32]*session.EndError
}

func newSessionLog() *sessionLog {
	return &sessionLog{
		changed: make(chan struct{}),
		started: make(map[uint32]*session.Session),
		ends:    make(map[uint32]*session.EndError),
	}
}

func (l *sessionLog) record(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *sessionLog) SessionStarted(s *session.Session) {
	l.record(func() { l.started[s.ConnectData()] = s })
}

func (l *sessionLog) SessionEnded(s *session.Session, end *session.EndError, _ time.Duration) {
	l.record(func() { l.ends[s.ConnectData()] = end })
}

func (l *sessionLog) MessageDropped(*session.Session, session.Message) {}
func (l *sessionLog) HandlerFailed(*session.Session, error, bool)      {}
func (l *sessionLog) session(data uint32) *session.Session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started[data]
}
func (l *sessionLog) ended(data uint32) (end *session.EndError, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	end, ok = l.ends[data]
	return
}

// end waits for the session with connect data to end.
func (l *sessionLog) end(tb testing.TB, data uint32) *session.EndError {
	tb.Helper()
	timeout := time.After(wait)
	for {
		l.mu.Lock()
		end, changed := l.ends[data], l.changed
		l.mu.Unlock()
		if end != nil {
			return end
		}
		select {
		case <-changed:
		case <-timeout:
			tb.Fatalf("session %d did not end", data)
		}
	}
}

// msgLog is a dispatch.Observer that records every call.
type msgLog struct {
	mu       sync.Mutex
	changed  chan struct{}
	handled  []handled
	rejected []rejected
}

type handled struct {
	typ uint32
	err error
}

type rejected struct {
	typ    uint32
	reason error
}

func newMsgLog() *msgLog { return &msgLog{changed: make(chan struct{})} }

func (l *msgLog) record(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *msgLog) MessageHandled(typ uint32, d time.Duration, err error) {
	if d < 0 {
		panic("negative duration")
	}
	l.record(func() { l.handled = append(l.handled, handled{typ, err}) })
}

func (l *msgLog) MessageRejected(typ uint32, reason dispatch.RejectReason, err error) {
	if !errors.Is(err, reason.Err()) && !(reason == dispatch.RejectMalformed && errors.Is(err, dispatch.ErrTypeRange)) {
		panic(fmt.Sprintf("reason %v for error %v", reason, err))
	}
	l.record(func() { l.rejected = append(l.rejected, rejected{typ, err}) })
}

// count returns how many calls the log has seen.
func (l *msgLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.handled) + len(l.rejected)
}

// waitCount waits until the log has seen n calls.
func (l *msgLog) waitCount(tb testing.TB, n int) {
	tb.Helper()
	timeout := time.After(wait)
	for {
		l.mu.Lock()
		got, changed := len(l.handled)+len(l.rejected), l.changed
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			tb.Fatalf("observer saw %d messages, want %d", got, n)
		}
	}
}

func (l *msgLog) snapshot() ([]handled, []rejected) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]handled(nil), l.handled...), append([]rejected(nil), l.rejected...)
}

// mustPanic fails the test unless f panics.
func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

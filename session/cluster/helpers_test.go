package cluster

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

// TestMain checks, after every test, that no goroutine is left and that
// ENet's C allocations are back where they were.
func TestMain(m *testing.M) {
	before := netloop.LiveAllocations()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
		if after := netloop.LiveAllocations(); after != before {
			fmt.Fprintf(os.Stderr, "live C allocations: %d before the tests, %d after\n", before, after)
			code = 1
		}
	}
	os.Exit(code)
}

// testTTL keeps dead-node tests short.
const testTTL = 1200 * time.Millisecond

// testNode is a node with a session server whose handler hands each
// session to the test and holds it until it ends.
type testNode struct {
	*Node
	host     *netloop.Host
	sessions chan *session.Session
	events   chan NodeEvent
	stop     func() error
}

func startNode(t testing.TB, url, id string, opts ...Option) *testNode {
	t.Helper()
	return startNodeSetup(t, url, id, nil, opts...)
}

// startNodeSetup is startNode with setup called before Run.
func startNodeSetup(t testing.TB, url, id string, setup func(*Node), opts ...Option) *testNode {
	t.Helper()
	host, err := netloop.New("127.0.0.1:0", netloop.WithPeers(1024), netloop.WithChannels(2), netloop.WithDrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{host: host, sessions: make(chan *session.Session, 1024), events: make(chan NodeEvent, 256)}
	srv, err := session.New(host, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		tn.sessions <- s
		<-ctx.Done()
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{WithURL(url), WithID(id), WithTTL(testTTL), WithLogger(zaptest.NewLogger(t)),
		WithWatch(func(e NodeEvent) {
			select {
			case tn.events <- e:
			default:
				t.Errorf("node %s: watch events overflow", id)
			}
		})}, opts...)
	if tn.Node, err = New(srv, opts...); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(tn.Node)
	}
	tn.stop = netlooptest.Go(t, tn.Run)
	netlooptest.Eventually(t, "node "+id+" live", tn.Live)
	return tn
}

// connect connects a client to tn and returns the client host, its peer
// and the server's session of it.
func (tn *testNode) connect(t *testing.T) (*netloop.Host, *session.Session) {
	t.Helper()
	cli := netlooptest.Start(t, "", netloop.WithChannels(2))
	netlooptest.Dial(t, cli, tn.host.Addr().String(), 2, 0)
	select {
	case s := <-tn.sessions:
		return cli, s
	case <-time.After(netlooptest.Timeout):
		t.Fatal("no session")
	}
	return nil, nil
}

// login connects a client and binds its session to user.
func (tn *testNode) login(t *testing.T, user string) (*netloop.Host, *session.Session) {
	t.Helper()
	cli, s := tn.connect(t)
	if err := tn.Bind(context.Background(), s, user); err != nil {
		t.Fatalf("bind %s: %v", user, err)
	}
	return cli, s
}

// expectData waits for the client to receive want.
func expectData(t *testing.T, cli *netloop.Host, want string) {
	t.Helper()
	ev := netlooptest.Expect(t, cli, netloop.EventReceive)
	if string(ev.Payload) != want {
		t.Fatalf("received %q, want %q", ev.Payload, want)
	}
}

// expectEvent waits for a node event of kind about node id.
func (tn *testNode) expectEvent(t *testing.T, kind EventKind, id string) NodeEvent {
	t.Helper()
	deadline := time.After(netlooptest.Timeout)
	for {
		select {
		case e := <-tn.events:
			if e.Kind == kind && e.Node.ID == id {
				return e
			}
		case <-deadline:
			t.Fatalf("node %s: no %v event for %s", tn.ID(), kind, id)
		}
	}
}

func sessionServer(t testing.TB, h *netloop.Host) *session.Server {
	srv, err := session.New(h, session.HandlerFunc(func(ctx context.Context, s *session.Session) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func users(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// TestShutdownUnderLoad stops a server while it and its clients are busy
// sending reliable messages to each other. Every message whose Send
// returned nil reaches its client, in order: the shutdown drains what it
// accepted before it disconnects anyone.
func TestShutdownUnderLoad(t *testing.T) {
	// The server's senders each send a fixed number of messages, and the
	// one whose Send is the last to be accepted cancels the server at once.
	t.Run("CancelAfterLastSend", func(t *testing.T) { testShutdownUnderLoad(t, 2000, false) })
	// The server's senders send until Send fails, and the test cancels the
	// server once they have had some accepted: cancel races with sends.
	t.Run("CancelDuringSends", func(t *testing.T) { testShutdownUnderLoad(t, 2000, true) })
}

func testShutdownUnderLoad(t *testing.T, each int, racing bool) {
	const (
		clientHosts  = 2
		peersPerHost = 4
		peers        = clientHosts * peersPerHost
	)
	base := measure()
	counts := newTally()
	errs := &errorLimit{t: t, tally: counts}

	var (
		mu       sync.Mutex
		srvPeers []netloop.Peer
	)
	srv := startNode(t, "127.0.0.1:0", func(h *netloop.Host, ev netloop.Event) {
		switch ev.Kind {
		case netloop.EventConnect:
			mu.Lock()
			srvPeers = append(srvPeers, ev.Peer)
			mu.Unlock()
			counts.add("server.connect", 1)
		case netloop.EventReceive:
			counts.add("server.receive", 1) // the clients' load; may be cut short
		}
	}, netloop.WithPeers(64), netloop.WithChannels(2), netloop.WithDrainTimeout(15*time.Second))

	// Each client checks that each of the server's streams (tagged by the
	// sender) arrives in order, on one connection, and counts it.
	var (
		recvMu   sync.Mutex
		received = make(map[byte]uint32)       // messages per sender tag
		owner    = make(map[byte]netloop.Peer) // the connection each tag came on
	)
	clients := make([]*node, clientHosts)
	for i := range clients {
		clients[i] = startNode(t, "", func(h *netloop.Host, ev netloop.Event) {
			switch ev.Kind {
			case netloop.EventConnect:
				counts.add("client.connect", 1)
			case netloop.EventReceive:
				tag, seq, ok := parseNumbered(ev.Payload)
				recvMu.Lock()
				defer recvMu.Unlock()
				if p, seen := owner[tag]; seen && p != ev.Peer {
					errs.Errorf("client: stream %d on %v and %v", tag, p, ev.Peer)
				}
				owner[tag] = ev.Peer
				if !ok || seq != received[tag] {
					errs.Errorf("client: stream %d: message %d (intact: %v), want %d", tag, seq, ok, received[tag])
				}
				received[tag] = seq + 1
			case netloop.EventDisconnect:
				if ev.Reason != netloop.ReasonRemote {
					errs.Errorf("client: %v disconnected (%v), want remote (the server shut down)", ev.Peer, ev.Reason)
				}
				counts.add("client.disconnect", 1)
			}
		}, netloop.WithPeers(peersPerHost), netloop.WithChannels(2))
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cliPeers []struct {
		c *node
		p netloop.Peer
	}
	for _, c := range clients {
		for range peersPerHost {
			p, err := c.Connect(ctx, hostAddr(srv.Host), 2, 0)
			if err != nil {
				t.Fatal(err)
			}
			cliPeers = append(cliPeers, struct {
				c *node
				p netloop.Peer
			}{c, p})
		}
	}
	counts.await(t, "client.connect", peers, stepWait)
	counts.await(t, "server.connect", peers, stepWait)

	// The clients' load: they send until their connection ends.
	var load sync.WaitGroup
	var clientSent atomic.Int64
	for _, cp := range cliPeers {
		load.Go(func() {
			for seq := uint32(0); ; seq++ {
				err := cp.c.Send(ctx, cp.p, uint8(seq%2), numbered(0xFF, seq, 64), netloop.Reliable)
				if errors.Is(err, netloop.ErrStalePeer) || errors.Is(err, netloop.ErrNotConnected) {
					return // the server disconnected
				}
				if err != nil {
					errs.Errorf("client: send: %v", err)
					return
				}
				clientSent.Add(1)
			}
		})
	}

	// The server's load: one sender per connection.
	mu.Lock()
	targets := append([]netloop.Peer(nil), srvPeers...)
	mu.Unlock()
	accepted := make([]uint32, len(targets))
	var total atomic.Int64
	var (
		cancelled   time.Time
		gotByCancel uint32 // messages the clients had received when the server was cancelled
	)
	cancelOnce := sync.OnceFunc(func() {
		cancelled = time.Now()
		srv.cancel()
		recvMu.Lock()
		for _, n := range received {
			gotByCancel += n
		}
		recvMu.Unlock()
	})
	var senders sync.WaitGroup
	for k, p := range targets {
		senders.Go(func() {
			for seq := uint32(0); racing || seq < uint32(each); seq++ {
				// One channel: reliable order holds per channel.
				err := srv.Send(ctx, p, 0, numbered(byte(k), seq, 16+int(seq%500)), netloop.Reliable)
				if errors.Is(err, netloop.ErrClosed) {
					return // the server is stopping: Sends from now on fail
				}
				if err != nil {
					errs.Errorf("server: send %d to %v: %v", seq, p, err)
					return
				}
				accepted[k] = seq + 1
				if total.Add(1) == int64(each*len(targets)) {
					// Right after the last Send of the fixed number; when
					// racing, the senders go on until Send fails.
					cancelOnce()
				}
			}
		})
	}
	senders.Wait()
	load.Wait()
	cancelOnce() // no-op, unless a sender failed early
	if err := srv.stop(); err != nil {
		t.Fatalf("server: %v", err)
	}
	drained := time.Since(cancelled)
	counts.await(t, "client.disconnect", peers, stepWait)

	var sum, got uint32
	recvMu.Lock()
	for k := range targets {
		sum += accepted[k]
		got += received[byte(k)]
		if received[byte(k)] != accepted[k] {
			t.Errorf("stream %d: the server accepted %d messages, the client received %d", k, accepted[k], received[byte(k)])
		}
	}
	recvMu.Unlock()
	t.Logf("server accepted %d messages (%d after the cancel), clients received %d (%d of them after the cancel); shutdown took %v; clients sent %d, the server read %d before it stopped",
		sum, int(sum)-each*len(targets), got, got-gotByCancel, drained.Round(time.Millisecond), clientSent.Load(), counts.get("server.receive"))
	for _, c := range clients {
		if err := c.stop(); err != nil {
			t.Error(err)
		}
	}
	expectBaseline(t, base, 8<<20)
	if n := errs.count(); n > 0 {
		t.Errorf("%d errors", n)
	}
}

// TestRepeatedStartStop creates, runs, connects, uses and stops a server
// and a client 50 times, alternating netloop and session servers and which
// side stops first: no goroutine survives (goleak checks it too, in
// TestMain), and ENet's live C allocations are back to their count.
func TestRepeatedStartStop(t *testing.T) {
	const cycles = 50
	base := measure()
	start := time.Now()
	for i := range cycles {
		withSession := i%2 == 1
		serverFirst := i%4 < 2
		if err := startStopCycle(t, withSession, serverFirst); err != nil {
			t.Fatalf("cycle %d (session %v, server stops first %v): %v", i, withSession, serverFirst, err)
		}
	}
	after := expectBaseline(t, base, 4<<20)
	t.Logf("%d cycles in %v; before %v; after %v", cycles, time.Since(start).Round(time.Millisecond), base, after)
}

func startStopCycle(t *testing.T, withSession, serverFirst bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), stepWait)
	defer cancel()
	var (
		addr    string
		stopSrv func() error
	)
	if withSession {
		host, err := netloop.New("127.0.0.1:0", netloop.WithLogger(quietLogger(t)), netloop.WithDrainTimeout(time.Second))
		if err != nil {
			return err
		}
		srv, err := session.New(host, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
			for {
				m, err := s.Receive(ctx)
				if err != nil {
					return nil // ended
				}
				if err := s.Send(ctx, m.Channel, m.Data, m.Flag); err != nil {
					return nil // ending
				}
			}
		}), session.WithLogger(quietLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(runCtx) }()
		defer stop()
		addr = hostAddr(host)
		stopSrv = func() error {
			stop()
			select {
			case err := <-done:
				if st := srv.Stats(); st.Started != 1 || st.Ended != 1 || st.Live != 0 {
					return fmt.Errorf("session stats %+v, want one session started and ended", st)
				}
				return err
			case <-time.After(stepWait):
				return errors.New("session server did not stop")
			}
		}
	} else {
		srv := startNode(t, "127.0.0.1:0", func(h *netloop.Host, ev netloop.Event) {
			if ev.Kind == netloop.EventReceive {
				h.Send(context.Background(), ev.Peer, ev.Channel, ev.Payload, ev.Flag)
			}
		}, netloop.WithDrainTimeout(time.Second))
		addr = hostAddr(srv.Host)
		stopSrv = srv.stop
	}

	evs := make(chan netloop.Event, 16)
	cli := startNode(t, "", forward(t, evs), netloop.WithPeers(1), netloop.WithDrainTimeout(time.Second))
	p, err := cli.Connect(ctx, addr, 1, 0)
	if err != nil {
		return err
	}
	if ev := nextEvent(t, evs, stepWait, "connect"); ev.Kind != netloop.EventConnect {
		return fmt.Errorf("%v event (%v), want connect", ev.Kind, ev.Reason)
	}
	if err := cli.Send(ctx, p, 0, []byte("hello"), netloop.Reliable); err != nil {
		return err
	}
	if ev := nextEvent(t, evs, stepWait, "echo"); ev.Kind != netloop.EventReceive || string(ev.Payload) != "hello" {
		return fmt.Errorf("%v event %q, want the echo", ev.Kind, ev.Payload)
	}
	if serverFirst {
		if err := stopSrv(); err != nil {
			return fmt.Errorf("server: %w", err)
		}
		if ev := nextEvent(t, evs, stepWait, "disconnect"); ev.Kind != netloop.EventDisconnect || ev.Reason != netloop.ReasonRemote {
			return fmt.Errorf("client: %v event (%v), want a remote disconnect", ev.Kind, ev.Reason)
		}
		return cli.stop()
	}
	if err := cli.stop(); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if ev := nextEvent(t, evs, stepWait, "disconnect"); ev.Kind != netloop.EventDisconnect || ev.Reason != netloop.ReasonShutdown {
		return fmt.Errorf("client: %v event (%v), want shutdown", ev.Kind, ev.Reason)
	}
	return stopSrv()
}

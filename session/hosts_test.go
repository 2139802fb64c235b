package session_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
)

// TestServerForGroup runs sessions over two hosts on one port, with client
// hosts until both serve some: each session echoes in order and reports its
// host; a room holding every session reaches clients on both hosts with one
// Broadcast; the server's Stats span the hosts, and on shutdown every
// session ends with Shutdown and the port is released.
func TestServerForGroup(t *testing.T) {
	base := netloop.LiveAllocations()
	log := netlooptest.Logger(t)
	g, err := netloop.NewGroup("127.0.0.1:0", 2, netloop.WithLogger(log), netloop.WithChannels(2), netloop.WithDrainTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	index := make(map[*netloop.Host]byte)
	for i, h := range g.Hosts() {
		index[h] = byte(i)
	}
	started := make(chan byte, 64) // the host index of each session, as it starts
	ended := make(chan session.Reason, 64)
	var srv *session.Server
	var room *session.Group
	srv, err = session.NewForGroup(g, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
		if err := room.Add(s); err != nil {
			return err
		}
		started <- index[s.Peer().Host()]
		for {
			m, err := s.Receive(ctx)
			if err != nil {
				var end *session.EndError
				errors.As(err, &end)
				ended <- end.Reason
				return nil
			}
			if err := s.Send(ctx, m.Channel, append(m.Data, index[s.Peer().Host()]), m.Flag); err != nil {
				return err
			}
		}
	}), session.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	room = srv.NewGroup()
	if len(srv.Hosts()) != 2 || srv.Host() != g.Hosts()[0] {
		t.Fatalf("server hosts %v, host %v; want the group's", srv.Hosts(), srv.Host())
	}
	stop := netlooptest.Go(t, srv.Run)

	type conn struct {
		cli  *netloop.Host
		peer netloop.Peer
		host byte
	}
	var conns []conn
	served := [2]int{}
	for served[0] == 0 || served[1] == 0 {
		if len(conns) == 64 {
			t.Fatalf("64 client hosts all on one host: %v", served)
		}
		cli := startClient(t)
		p := dial(t, cli, g.Addr().String(), 2, 0)
		select {
		case i := <-started:
			served[i]++
			conns = append(conns, conn{cli, p, i})
		case <-time.After(wait):
			t.Fatal("no session started")
		}
	}
	for _, c := range conns {
		for n := range uint32(50) {
			send(t, c.cli, c.peer, 0, binary.BigEndian.AppendUint32(nil, n), netloop.Reliable)
		}
	}
	for i, c := range conns {
		for n := range uint32(50) {
			ev := expect(t, c.cli, netloop.EventReceive)
			if got := binary.BigEndian.Uint32(ev.Payload); got != n || ev.Payload[4] != c.host {
				t.Fatalf("client %d: echo %d from host %d, want %d from host %d", i, got, ev.Payload[4], n, c.host)
			}
		}
	}
	if err := room.Broadcast(netlooptest.Context(t), 1, []byte("all"), netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		if ev := expect(t, c.cli, netloop.EventReceive); string(ev.Payload) != "all" || ev.Channel != 1 {
			t.Fatalf("client %d: %q on channel %d, want the broadcast", i, ev.Payload, ev.Channel)
		}
	}
	if st := srv.Stats(); st.Started != int64(len(conns)) || st.Live != int64(len(conns)) {
		t.Fatalf("stats %+v, want %d started and live", st, len(conns))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for range conns {
		if r := <-ended; r != session.ReasonShutdown {
			t.Errorf("session ended with %v, want shutdown", r)
		}
	}
	for _, c := range conns {
		expect(t, c.cli, netloop.EventDisconnect)
		if err := c.cli.Close(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-g.Done():
	default:
		t.Fatal("group not stopped after the server's Run returned")
	}
	if after := netloop.LiveAllocations(); after != base {
		t.Fatalf("live C allocations: %d before, %d after", base, after)
	}
}

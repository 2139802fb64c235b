package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/enetkit/enetkit/examples/chat/chatproto"
)

// TestChatCluster runs a NATS server (natsd) and three clustered chat
// servers as processes, with clients on each: rooms span the servers,
// nicknames are unique across them, private messages cross them; a
// server killed with SIGKILL has its clients leave everyone's rooms
// within the TTL; and with NATS killed and restarted, each server goes on
// serving its own clients and rejoins by itself.
func TestChatCluster(t *testing.T) {
	bin := buildChat(t)
	natsd := buildNatsd(t)
	natsAddr := freeTCPAddr(t)
	url := "nats://" + natsAddr
	startNatsd := func() *proc {
		p := startProc(t, natsd, "-addr", natsAddr)
		p.waitFor(t, "listening on "+url)
		return p
	}
	nats := startNatsd()

	var addrs [3]string
	var servers [3]*proc
	for i := range servers {
		addrs[i] = freeUDPAddr(t)
		servers[i] = startProc(t, filepath.Join(bin, "server"), "-addr", addrs[i], "-nats", url, "-node", fmt.Sprint("n", i), "-ttl", "2s")
		servers[i].waitFor(t, fmt.Sprint("joined the cluster as n", i))
	}
	for i, s := range servers {
		for j := range servers {
			if i != j {
				s.waitFor(t, fmt.Sprintf("node n%d joined", j))
			}
		}
	}

	// Rooms span the servers.
	const lobby = "lobby"
	alice := joinChat(t, addrs[0], "alice", lobby)
	bob := joinChat(t, addrs[1], "bob", lobby)
	alice.expect(chatproto.Joined{Room: lobby, Nick: "bob"})
	carol := joinChat(t, addrs[2], "carol", lobby)
	expectAll(chatproto.Joined{Room: lobby, Nick: "carol"}, alice, bob)
	bob.send(chatproto.Say{Room: lobby, Text: "hi from n1"})
	expectAll(chatproto.Said{Room: lobby, Nick: "bob", Text: "hi from n1"}, alice, bob, carol)

	// Nicknames are unique across the cluster.
	dup := dialChat(t, addrs[2], "dup")
	dup.send(chatproto.Hello{Nick: "alice"})
	dup.expectError(chatproto.CodeNickTaken)

	// A private message reaches its receiver on another server.
	carol.send(chatproto.Tell{To: "alice", Text: "psst"})
	alice.expect(chatproto.Told{From: "carol", Text: "psst"})
	carol.send(chatproto.Tell{To: "nobody", Text: "hello?"})
	carol.expectError(chatproto.CodeNoSuchNick)

	// A bot on n0 watches the room while n2 dies.
	eve := startProc(t, filepath.Join(bin, "bot"), "-addr", addrs[0], "-nick", "eve", "-room", lobby, "-wait", "1m")
	eve.waitFor(t, "joined lobby as eve")
	expectAll(chatproto.Joined{Room: lobby, Nick: "eve"}, alice, bob, carol)
	expectAll(chatproto.Said{Room: lobby, Nick: "eve", Text: "hello from eve"}, alice, bob, carol)
	killed := time.Now()
	if err := servers[2].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	expectAll(chatproto.Left{Room: lobby, Nick: "carol"}, alice, bob)
	eve.waitFor(t, "[lobby] * carol left")
	t.Logf("carol left the room %v after n2 was killed (TTL 2s)", time.Since(killed).Round(time.Millisecond))
	for _, s := range servers[:2] {
		s.waitFor(t, "node n2 left")
	}
	eve.signal(t, os.Interrupt)
	if code := eve.wait(t); code != 0 {
		t.Fatalf("eve exited with status %d", code)
	}
	expectAll(chatproto.Left{Room: lobby, Nick: "eve"}, alice, bob)

	// NATS dies: each server goes on serving its own clients, and refuses
	// what needs the cluster.
	gina := joinChat(t, addrs[0], "gina", lobby)
	gina.expect(chatproto.Said{Room: lobby, Nick: "eve", Text: "hello from eve"}) // n0's history of the room
	expectAll(chatproto.Joined{Room: lobby, Nick: "gina"}, alice, bob)
	if err := nats.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	awaitCluster(t, addrs[0], false)
	t.Logf("n0 refuses new nicknames %v after NATS was killed", time.Since(down).Round(time.Millisecond))
	alice.send(chatproto.Say{Room: lobby, Text: "local only"})
	expectAll(chatproto.Said{Room: lobby, Nick: "alice", Text: "local only"}, alice, gina)
	alice.send(chatproto.Tell{To: "bob", Text: "psst"})
	alice.expectError(chatproto.CodeUnavailable)

	// NATS is back, with an empty directory: the servers rejoin and
	// restore it by themselves.
	restarted := time.Now()
	startNatsd()
	awaitCluster(t, addrs[0], true)
	awaitCluster(t, addrs[1], true)
	t.Logf("NATS down for %v; both servers rejoined %v after it was back (natsd start included)",
		restarted.Sub(down).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	alice.send(chatproto.Say{Room: lobby, Text: "back"})
	expectAll(chatproto.Said{Room: lobby, Nick: "alice", Text: "back"}, alice, gina, bob) // bob's first since the outage
	bob.send(chatproto.Tell{To: "gina", Text: "welcome back"})
	gina.expect(chatproto.Told{From: "bob", Text: "welcome back"})
	dup2 := dialChat(t, addrs[1], "dup2")
	dup2.send(chatproto.Hello{Nick: "alice"})
	dup2.expectError(chatproto.CodeNickTaken)

	for _, s := range servers[:2] {
		s.signal(t, os.Interrupt)
	}
	for _, s := range servers[:2] {
		if code := s.wait(t); code != 0 {
			t.Errorf("%s exited with status %d", s, code)
		}
	}
}

// joinChat connects a client to a chat server, takes nick and joins room.
func joinChat(t *testing.T, addr, nick, room string) *chatClient {
	t.Helper()
	c := dialChat(t, addr, nick)
	c.send(chatproto.Hello{Nick: nick}, chatproto.Join{Room: room})
	c.expect(chatproto.Joined{Room: room, Nick: nick})
	return c
}

func expectAll(m chatproto.Message, cs ...*chatClient) {
	for _, c := range cs {
		c.t.Helper()
		c.expect(m)
	}
}

// awaitCluster waits until the server at addr accepts a new nickname
// (live) or refuses it with CodeUnavailable (not live), probing with new
// clients in a room of their own.
func awaitCluster(t *testing.T, addr string, live bool) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(chatTimeout)
	for i := 0; ; i++ {
		nick := fmt.Sprintf("probe%d", i)
		c := dialChat(t, addr, nick)
		c.send(chatproto.Hello{Nick: nick}, chatproto.Join{Room: "probes"})
		m := c.receive()
		_, joined := m.(chatproto.Joined)
		if e, ok := m.(chatproto.Error); !joined && (!ok || e.Code != chatproto.CodeUnavailable) {
			t.Fatalf("probe received %#v", m)
		}
		c.disconnect()
		if joined == live {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("server at %s not live=%v within %v", addr, live, chatTimeout)
		}
	}
}

// buildNatsd builds integration/natsd and returns its path.
func buildNatsd(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"github.com/enetkit/enetkit/integration/natsd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build natsd: %v\n%s", err, out)
	}
	return filepath.Join(dir, "natsd")
}

package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/enetkit/enetkit/examples/chat/chatproto"
	"github.com/enetkit/enetkit/netloop"
)

// chatTimeout bounds every wait of the chat tests: a step that takes
// longer fails the test.
const chatTimeout = 10 * time.Second

// TestChat builds the chat server and bot, runs the server on a free
// loopback port, talks to it with bots and with an in-process client, then
// stops it with SIGINT.
func TestChat(t *testing.T) {
	bin := buildChat(t)
	addr := freeUDPAddr(t)
	server := startProc(t, filepath.Join(bin, "server"), "-addr", addr)
	server.waitFor(t, "listening on "+addr)
	bot := func(t *testing.T, args ...string) *proc {
		return startProc(t, filepath.Join(bin, "bot"), append([]string{"-addr", addr}, args...)...)
	}

	t.Run("TwoBots", func(t *testing.T) {
		alice := bot(t, "-nick", "alice", "-room", "lobby", "-wait", "2s")
		bob := bot(t, "-nick", "bob", "-room", "lobby", "-wait", "2s")
		for _, p := range []*proc{alice, bob} {
			if code := p.wait(t); code != 0 {
				t.Fatalf("%s exited with status %d, want 0", p, code)
			}
		}
		for _, c := range []struct {
			p    *proc
			want []string
		}{
			{alice, []string{"joined lobby as alice", "[lobby] alice: hello from alice", "[lobby] bob: hello from bob", "left lobby"}},
			{bob, []string{"joined lobby as bob", "[lobby] bob: hello from bob", "[lobby] alice: hello from alice", "left lobby"}},
		} {
			out := c.p.stdout()
			for _, w := range c.want {
				if !strings.Contains(out, w+"\n") {
					t.Errorf("%s printed\n%s\nwant a line %q", c.p, out, w)
				}
			}
		}
	})

	t.Run("DuplicateNick", func(t *testing.T) {
		holder := bot(t, "-nick", "carol", "-wait", "1m")
		holder.waitFor(t, "joined lobby as carol")
		dup := bot(t, "-nick", "carol", "-timeout", "5s")
		if code := dup.wait(t); code != 1 {
			t.Errorf("second carol exited with status %d, want 1", code)
		}
		if got, want := dup.stderr(), `bot: the server refused: nickname "carol" is taken`; !strings.Contains(got, want) {
			t.Errorf("second carol's stderr is %q, want %q", got, want)
		}
		if out := dup.stdout(); out != "" {
			t.Errorf("second carol printed %q, want nothing", out)
		}

		// SIGINT ends the holder's wait; it still leaves cleanly.
		holder.signal(t, os.Interrupt)
		if code := holder.wait(t); code != 0 {
			t.Errorf("carol exited with status %d after SIGINT, want 0", code)
		}
		if out := holder.stdout(); !strings.HasSuffix(out, "left lobby\n") {
			t.Errorf("carol printed\n%s\nwant it to end with \"left lobby\"", out)
		}
	})

	t.Run("Protocol", func(t *testing.T) { testChatProtocol(t, addr) })

	server.signal(t, os.Interrupt)
	if code := server.wait(t); code != 0 {
		t.Fatalf("server exited with status %d after SIGINT, want 0", code)
	}
}

// testChatProtocol speaks chatproto to the server with in-process clients,
// checking refusals, notifications, history and cleanup exactly.
func testChatProtocol(t *testing.T, addr string) {
	const room = "proto"
	type (
		Hello  = chatproto.Hello
		Join   = chatproto.Join
		Leave  = chatproto.Leave
		Say    = chatproto.Say
		Said   = chatproto.Said
		Joined = chatproto.Joined
		Left   = chatproto.Left
	)

	// Requests before Hello, and malformed ones, are refused.
	dave := dialChat(t, addr, "dave")
	dave.send(Join{Room: room})
	dave.expectError(chatproto.CodeNoNick)
	dave.send(Say{Room: room, Text: "hi"})
	dave.expectError(chatproto.CodeNoNick)
	dave.send(Hello{Nick: "no spaces"})
	dave.expectError(chatproto.CodeBadNick)
	dave.send(Hello{Nick: "dave"}, Hello{Nick: "dave2"})
	dave.expectError(chatproto.CodeNickSet)
	dave.send(Say{Room: room, Text: "hi"})
	dave.expectError(chatproto.CodeNotJoined)
	dave.send(Join{Room: "no spaces"})
	dave.expectError(chatproto.CodeBadRoom)
	dave.send(Join{Room: room}, Say{Room: room, Text: "hi"})
	dave.expect(Joined{Room: room, Nick: "dave"}, Said{Room: room, Nick: "dave", Text: "hi"})
	dave.send(Join{Room: room})
	dave.expectError(chatproto.CodeJoined)
	dave.send(Say{Room: room, Text: "bell\a"})
	dave.expectError(chatproto.CodeBadText)

	// Nicknames are unique; a newcomer gets the room's history.
	erin := dialChat(t, addr, "erin")
	erin.send(Hello{Nick: "dave"})
	erin.expectError(chatproto.CodeNickTaken)
	erin.send(Hello{Nick: "erin"}, Join{Room: room})
	erin.expect(Joined{Room: room, Nick: "erin"}, Said{Room: room, Nick: "dave", Text: "hi"})
	dave.expect(Joined{Room: room, Nick: "erin"})
	erin.send(Say{Room: room, Text: "hello dave"})
	erin.expect(Said{Room: room, Nick: "erin", Text: "hello dave"})
	dave.expect(Said{Room: room, Nick: "erin", Text: "hello dave"})

	// Leave tells the room and the leaver.
	erin.send(Leave{Room: room})
	erin.expect(Left{Room: room, Nick: "erin"})
	dave.expect(Left{Room: room, Nick: "erin"})
	erin.send(Leave{Room: room})
	erin.expectError(chatproto.CodeNotJoined)

	// What a client says just before it disconnects reaches the room, and
	// the server tells the room it left. Its nickname is free again.
	erin.send(Join{Room: room})
	erin.expect(Joined{Room: room, Nick: "erin"}, Said{Room: room, Nick: "dave", Text: "hi"}, Said{Room: room, Nick: "erin", Text: "hello dave"})
	dave.expect(Joined{Room: room, Nick: "erin"})
	const last = 20 // within RateLimit's burst
	for i := range last {
		erin.send(Say{Room: room, Text: fmt.Sprint("last words ", i)})
	}
	erin.disconnect()
	for i := range last {
		dave.expect(Said{Room: room, Nick: "erin", Text: fmt.Sprint("last words ", i)})
	}
	dave.expect(Left{Room: room, Nick: "erin"})

	// The last to leave removes the room, and its history with it.
	dave.send(Leave{Room: room})
	dave.expect(Left{Room: room, Nick: "dave"})
	erin2 := dialChat(t, addr, "erin2")
	erin2.send(Hello{Nick: "erin"}, Join{Room: room}, Say{Room: room, Text: "anyone?"})
	erin2.expect(Joined{Room: room, Nick: "erin"}, Said{Room: room, Nick: "erin", Text: "anyone?"})
}

// buildChat builds the chat server and bot into a temporary directory.
func buildChat(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found:", err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", dir+string(filepath.Separator),
		"github.com/enetkit/enetkit/examples/chat/server", "github.com/enetkit/enetkit/examples/chat/bot")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// freeUDPAddr returns a loopback address with a UDP port that was free a
// moment ago.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// proc is a command run by a test. Its stdout is read line by line as it
// comes, so that a test can wait for a line.
type proc struct {
	cmd *exec.Cmd

	mu    sync.Mutex
	lines []string      // stdout so far
	more  chan struct{} // a token after lines grows; capacity 1
	errb  syncBuffer    // stderr

	done chan struct{} // closed after the process has exited and its output is read
	err  error         // of cmd.Wait, read after done
}

func startProc(t *testing.T, path string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(path, args...), more: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd.Stderr = &p.errb
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
		p.err = p.cmd.Wait() // after the last read, as StdoutPipe requires
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", p, p.stdout(), p, p.stderr())
		}
	})
	return p
}

// String names the process by its command line.
func (p *proc) String() string {
	return strings.Join(append([]string{filepath.Base(p.cmd.Path)}, p.cmd.Args[1:]...), " ")
}

// stdout returns what the process has printed so far.
func (p *proc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) == 0 {
		return ""
	}
	return strings.Join(p.lines, "\n") + "\n"
}

func (p *proc) stderr() string { return p.errb.String() }

func (p *proc) printed(line string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if l == line {
			return true
		}
	}
	return false
}

// waitFor waits until the process prints line.
func (p *proc) waitFor(t *testing.T, line string) {
	t.Helper()
	timer := time.NewTimer(chatTimeout)
	defer timer.Stop()
	for !p.printed(line) {
		select {
		case <-p.more:
		case <-p.done:
			if !p.printed(line) {
				t.Fatalf("%s exited (%v) without printing %q", p, p.err, line)
			}
		case <-timer.C:
			t.Fatalf("%s printed no %q within %v", p, line, chatTimeout)
		}
	}
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p, err)
	}
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(chatTimeout):
		t.Fatalf("%s did not exit within %v", p, chatTimeout)
	}
	var exit *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &exit) && exit.Exited():
		return exit.ExitCode()
	}
	t.Fatalf("%s: %v", p, p.err)
	return -1
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// chatClient is an in-process chat client on a netloop host of its own.
// Its methods must be called from the test's goroutine.
type chatClient struct {
	t      *testing.T
	name   string
	host   *netloop.Host
	server netloop.Peer
}

// dialChat connects to the chat server at addr. The test's cleanup
// disconnects it and stops its host.
func dialChat(t *testing.T, addr, name string) *chatClient {
	t.Helper()
	host, err := netloop.New("", netloop.WithPeers(1), netloop.WithChannels(chatproto.Channels), netloop.WithDrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- host.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range host.Events() { // until Run closes it
		}
		if err := <-ran; err != nil {
			t.Errorf("%s: host: %v", name, err)
		}
	})
	c := &chatClient{t: t, name: name, host: host}
	if c.server, err = host.Connect(ctx, addr, chatproto.Channels, 0); err != nil {
		t.Fatalf("%s: connect: %v", name, err)
	}
	if ev := c.event(); ev.Kind != netloop.EventConnect {
		t.Fatalf("%s: %v event (%v), want connect", name, ev.Kind, ev.Reason)
	}
	return c
}

// event returns the host's next event.
func (c *chatClient) event() netloop.Event {
	c.t.Helper()
	select {
	case ev, ok := <-c.host.Events():
		if !ok {
			c.t.Fatalf("%s: host stopped", c.name)
		}
		return ev
	case <-time.After(chatTimeout):
		c.t.Fatalf("%s: no event within %v", c.name, chatTimeout)
		return netloop.Event{}
	}
}

func (c *chatClient) send(ms ...chatproto.Message) {
	c.t.Helper()
	for _, m := range ms {
		data, err := chatproto.Encode(m)
		if err != nil {
			c.t.Fatal(err)
		}
		if err := c.host.Send(context.Background(), c.server, chatproto.Channel, data, netloop.Reliable); err != nil {
			c.t.Fatalf("%s: send %T: %v", c.name, m, err)
		}
	}
}

// receive returns the next message from the server.
func (c *chatClient) receive() chatproto.Message {
	c.t.Helper()
	ev := c.event()
	if ev.Kind != netloop.EventReceive {
		c.t.Fatalf("%s: %v event (%v), want a message", c.name, ev.Kind, ev.Reason)
	}
	m, err := chatproto.Decode(ev.Payload)
	if err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
	return m
}

// expect checks that the server sends exactly want, in order.
func (c *chatClient) expect(want ...chatproto.Message) {
	c.t.Helper()
	for _, w := range want {
		if got := c.receive(); got != w {
			c.t.Fatalf("%s received %#v, want %#v", c.name, got, w)
		}
	}
}

// expectError checks that the server's next message is an Error with code.
func (c *chatClient) expectError(code chatproto.Code) {
	c.t.Helper()
	got := c.receive()
	if e, ok := got.(chatproto.Error); !ok || e.Code != code || e.Text == "" {
		c.t.Fatalf("%s received %#v, want an Error with code %q", c.name, got, code)
	}
}

// disconnect disconnects from the server once everything sent has been
// delivered, and waits for the server's acknowledgement.
func (c *chatClient) disconnect() {
	c.t.Helper()
	if err := c.host.DisconnectLater(context.Background(), c.server, 0); err != nil {
		c.t.Fatalf("%s: disconnect: %v", c.name, err)
	}
	for {
		ev := c.event()
		if ev.Kind == netloop.EventDisconnect {
			if ev.Reason != netloop.ReasonLocal {
				c.t.Fatalf("%s: disconnect: %v", c.name, ev.Reason)
			}
			return
		}
	}
}

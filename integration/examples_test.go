package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// The examples under examples/ are built and run as real processes over
// loopback. Helpers here are prefixed so as not to clash with other tests
// of the package.

const (
	examplesPath = "github.com/enetkit/enetkit/examples/"

	exampleBuildTimeout = 5 * time.Minute  // one go build, cold cache and -race included
	exampleTestTimeout  = time.Minute      // every process of a test is killed after it
	exampleWait         = 10 * time.Second // the longest a test waits for one thing
)

func TestExampleEcho(t *testing.T) {
	t.Parallel()
	bin := buildExamples(t, "echo/server", "echo/client")
	ctx := exampleContext(t)
	addr := freeLoopbackAddr(t)
	srv := startExampleServer(t, ctx, filepath.Join(bin, "server"), "-addr", addr)

	out := runExampleClient(t, ctx, filepath.Join(bin, "client"), "-addr", addr)
	expectOutput(t, "client", out, "Connected to "+addr, "Got message: hello world")
	out = runExampleClient(t, ctx, filepath.Join(bin, "client"), "-addr", addr, "-msg", "second message")
	expectOutput(t, "client", out, "Got message: second message")

	out = srv.interrupt(t)
	expectOutput(t, "server", out,
		"Got message: hello world from 127.0.0.1:",
		"Got message: second message from 127.0.0.1:",
		"(remote)") // the clients disconnected cleanly
}

func TestExampleEchoNoServer(t *testing.T) {
	t.Parallel()
	bin := buildExamples(t, "echo/client")
	ctx := exampleContext(t)
	addr := freeLoopbackAddr(t) // nobody listens there

	cmd := exec.CommandContext(ctx, filepath.Join(bin, "client"), "-addr", addr, "-timeout", "500ms")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("client without a server: %v, want exit status 1\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	expectOutput(t, "client stderr", stderr.String(), "no answer from "+addr+" within 500ms")
}

func TestExampleChannels(t *testing.T) {
	t.Parallel()
	bin := buildExamples(t, "channels/server", "channels/client")
	ctx := exampleContext(t)
	addr := freeLoopbackAddr(t)
	srv := startExampleServer(t, ctx, filepath.Join(bin, "server"), "-addr", addr)

	out := runExampleClient(t, ctx, filepath.Join(bin, "client"), "-addr", addr, "-n", "5")
	expectOutput(t, "client", out,
		"got back 5 on channel 0 and 0 on channel 1",
		"OK: exactly the channel-0 messages came back")

	out = srv.interrupt(t)
	expectOutput(t, "server", out,
		"channel 0: message 4 on channel 0 from 127.0.0.1:",
		"channel 1: message 4 on channel 1 from 127.0.0.1:",
		"echoed 5, ignored 5")
}

func TestExampleUnreliable(t *testing.T) {
	t.Parallel()
	bin := buildExamples(t, "unreliable/server", "unreliable/client")
	ctx := exampleContext(t)
	addr := freeLoopbackAddr(t)
	srv := startExampleServer(t, ctx, filepath.Join(bin, "server"), "-addr", addr)

	// Loopback loses nothing, and the burst is far below a socket buffer.
	out := runExampleClient(t, ctx, filepath.Join(bin, "client"), "-addr", addr, "-n", "100")
	expectOutput(t, "client", out, "server: received 100 of 100 in order")

	out = srv.interrupt(t)
	expectOutput(t, "server", out, "Got message: hello from 127.0.0.1:", "received 100 of 100 in order")
}

// exampleContext returns a context that ends exampleTestTimeout from now,
// or when the test ends.
func exampleContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), exampleTestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// buildExamples compiles main packages under examples/ into a temporary
// directory, which it returns; each binary is named after the last element
// of its package path. Under -race, the examples are built with -race too.
func buildExamples(t *testing.T, pkgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), exampleBuildTimeout)
	defer cancel()
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	if builtWithRace() {
		args = append(args, "-race")
	}
	for _, p := range pkgs {
		args = append(args, examplesPath+p)
	}
	if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return dir
}

// builtWithRace reports whether the test binary has the race detector.
func builtWithRace() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// freeLoopbackAddr returns a loopback UDP address that was free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// runExampleClient runs a client to completion and returns its standard
// output; it fails the test unless the client exits with status 0.
func runExampleClient(t *testing.T, ctx context.Context, bin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), err, &stdout, &stderr)
	}
	return stdout.String()
}

// expectOutput checks that out, the output of what, contains every want.
func expectOutput(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s output lacks %q:\n%s", what, w, out)
		}
	}
}

// An exampleServer is a running example server process.
type exampleServer struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer // written by exec until Wait returns

	mu  sync.Mutex
	out strings.Builder // standard output so far

	ready chan struct{} // closed when the server has printed "listening on"
	done  chan struct{} // closed when the process has exited and err is set
	err   error         // from Wait
}

// startExampleServer starts a server and waits until it prints that it is
// listening. The process is killed when the test ends if it is still
// running then.
func startExampleServer(t *testing.T, ctx context.Context, bin string, args ...string) *exampleServer {
	t.Helper()
	s := &exampleServer{
		cmd:   exec.CommandContext(ctx, bin, args...),
		ready: make(chan struct{}),
		done:  make(chan struct{}),
	}
	s.cmd.Stderr = &s.stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.read(stdout, "listening on ")
		s.err = s.cmd.Wait() // after the last read from the pipe, as exec requires
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})

	select {
	case <-s.ready:
		return s
	case <-s.done:
		t.Fatalf("%s exited before listening: %v\n%s", filepath.Base(bin), s.err, s.output())
	case <-time.After(exampleWait):
		t.Fatalf("%s did not say it was listening within %v\n%s", filepath.Base(bin), exampleWait, s.output())
	}
	return nil
}

// read copies r, the server's standard output, into s.out until EOF,
// closing s.ready at the first line that starts with prefix.
func (s *exampleServer) read(r io.Reader, prefix string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		s.out.WriteString(line + "\n")
		s.mu.Unlock()
		if prefix != "" && strings.HasPrefix(line, prefix) {
			close(s.ready)
			prefix = ""
		}
	}
	io.Copy(io.Discard, r) // after a line too long for the scanner: keep the pipe flowing
}

// output returns what the server printed so far, for failure messages.
func (s *exampleServer) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := "stdout:\n" + s.out.String()
	select {
	case <-s.done:
		out += "stderr:\n" + s.stderr.String()
	default:
	}
	return out
}

// interrupt sends SIGINT to the server, checks that it exits with status 0
// within exampleWait, and returns its standard output.
func (s *exampleServer) interrupt(t *testing.T) string {
	t.Helper()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatalf("interrupt server: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(exampleWait):
		t.Fatalf("server still running %v after SIGINT\n%s", exampleWait, s.output())
	}
	if s.err != nil {
		t.Fatalf("server after SIGINT: %v, want exit status 0\n%s", s.err, s.output())
	}
	if s.stderr.Len() > 0 {
		t.Errorf("server wrote to stderr:\n%s", &s.stderr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

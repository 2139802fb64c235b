// Command scale measures how an echo server built on the framework behaves
// with many peers, on loopback, each scenario with the server in a process
// of its own so that its CPU figure is clean:
//
//   - idle: 512 connected peers that send nothing (ENet still pings each
//     every 500ms). Reports the server's CPU use as a percentage of one
//     core, and its loop iterations and datagrams per second. Target: < 2%.
//   - manypeers: 4000 connected peers, 100 of which send a small reliable
//     message at 60 Hz each (echoed), plus one ping-pong client measuring
//     round-trip times. Target: ping-pong p99 < 2ms.
//   - multicore: N hosts in one server process, one per port, each with its
//     own loop goroutine, for N = 1 and 2; 64 echo clients (8 messages in
//     flight each) split over the ports. Reports total messages/s for each
//     N and their ratio. The load generator shares the machine's cores with
//     the server, which caps what a second host can gain.
//
// The idle peers run in a second child process; the load (senders,
// ping-pong, echo clients) comes from package load in this process.
//
// Usage:
//
//	go run ./examples/bench/scale [-scenario all|idle|manypeers|multicore] [-duration 10s] [-impl netloop|session|ref] [-json]
//
// It prints a summary per scenario, or with -json one JSON line per
// scenario, and stops by itself: every wait is bounded and the children
// exit when this process closes their standard input or dies.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/codecat/go-enet"
	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/examples/bench/echo"
	"github.com/enetkit/enetkit/examples/bench/load"
	"github.com/enetkit/enetkit/examples/bench/refserver"
	"github.com/enetkit/enetkit/netloop"
)

// Scenario parameters.
const (
	idlePeers       = 512
	manyPeers       = 4000 // connected peers in manypeers, senders and ping-pong client included
	senders         = 100
	senderHz        = 60
	senderSize      = 32
	multicoreTotal  = 64 // echo clients in multicore, split over the hosts
	multicoreWindow = 8

	settle      = 2 * time.Second  // after the idle peers connect, before measuring
	warmup      = time.Second      // of every load run
	connectWait = 60 * time.Second // for the idle peers to connect
	childWait   = 20 * time.Second // for a child to start, answer or exit
)

func main() {
	role := flag.String("role", "", "internal: run as `server` or `clients` (the command starts itself so)")
	scenario := flag.String("scenario", "all", "idle, manypeers, multicore or all")
	duration := flag.Duration("duration", 10*time.Second, "measured time per scenario (per N in multicore)")
	impl := flag.String("impl", "netloop", "server: netloop (echo on netloop's events), session (session+dispatch) or ref (hand-written go-enet loop)")
	asJSON := flag.Bool("json", false, "print one JSON line per scenario")
	hosts := flag.Int("hosts", 1, "with -role: server hosts (one port each), or client hosts")
	peers := flag.Int("peers", 64, "with -role server: peer slots per host; with -role clients: peers to connect")
	addr := flag.String("addr", "", "with -role clients: the server's address")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch *role {
	case "server":
		err = runServer(ctx, *impl, *hosts, *peers)
	case "clients":
		err = runClients(ctx, *addr, *peers, *hosts)
	case "":
		err = coordinate(ctx, *scenario, *impl, *duration, *asJSON)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale %s: %v\n", *role, err)
		os.Exit(1)
	}
}

// ---- The server child ----

// serverStats is what the server child reports on a "stats" line: its CPU
// time and the sums of its hosts' netloop counters (zero for ref).
type serverStats struct {
	CPU               time.Duration `json:"cpu_ns"`
	Iterations        uint64        `json:"iterations"`
	Wakes             uint64        `json:"wakes"`
	ReceivedDatagrams uint64        `json:"received_datagrams"`
	SentDatagrams     uint64        `json:"sent_datagrams"`
	Receives          uint64        `json:"receives"`
	ConnectedPeers    int           `json:"connected_peers"`
	EventsDropped     uint64        `json:"events_dropped"`
	NumGC             uint32        `json:"num_gc"`
}

// runServer runs hosts echo servers, one per loopback port, until ctx is
// done or its standard input closes. It prints "listening on A,B,..."
// once bound, and answers each "stats" line on standard input with a
// "stats {json}" line.
func runServer(ctx context.Context, impl string, hosts, peers int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		addrs []string
		runs  []func(context.Context) error
		nl    []*netloop.Host
	)
	switch impl {
	case "netloop", "session":
		serve := echo.Netloop
		if impl == "session" {
			serve = func(ctx context.Context, h *netloop.Host) error { return echo.Session(ctx, h, nil) }
		}
		for range hosts {
			h, err := netloop.New("127.0.0.1:0", netloop.WithPeers(peers), netloop.WithChannels(echo.Channels), netloop.WithPerAddressLimit(netloop.MaxPeers))
			if err != nil {
				for _, h := range nl {
					h.Close()
				}
				return err
			}
			nl = append(nl, h)
			addrs = append(addrs, h.Addr().String())
			runs = append(runs, func(ctx context.Context) error { return serve(ctx, h) })
		}
	case "ref":
		enet.Initialize()
		defer enet.Deinitialize()
		for range hosts {
			a, err := freePort()
			if err != nil {
				return err
			}
			s, err := refserver.Listen(a, peers, false)
			if err != nil {
				return err
			}
			addrs = append(addrs, a)
			runs = append(runs, s.Run)
		}
	default:
		return fmt.Errorf("unknown server %q", impl)
	}
	fmt.Printf("listening on %s\n", strings.Join(addrs, ","))

	// Commands on standard input; EOF (the coordinator is done or gone) stops the server.
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "stats" {
				b, _ := json.Marshal(collect(ctx, nl))
				fmt.Printf("stats %s\n", b)
			}
		}
		cancel()
	}()
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range runs {
		g.Go(func() error { return run(gctx) })
	}
	return g.Wait()
}

// collect sums the hosts' counters and reads the process's CPU time.
func collect(ctx context.Context, hosts []*netloop.Host) serverStats {
	var s serverStats
	for _, h := range hosts {
		st, err := h.Stats(ctx)
		if err != nil {
			continue
		}
		s.Iterations += st.Iterations
		s.Wakes += st.Wakes
		s.ReceivedDatagrams += st.ReceivedDatagrams
		s.SentDatagrams += st.SentDatagrams
		s.Receives += st.Receives
		s.ConnectedPeers += st.ConnectedPeers
		s.EventsDropped += st.EventsDropped
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.NumGC = ms.NumGC
	return s
}

// freePort returns a loopback address whose UDP port was free a moment ago
// (go-enet cannot report the port it binds to).
func freePort() (string, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// ---- The idle clients child ----

// runClients connects peers silent peers to addr, spread over hosts netloop
// hosts, prints "connected N" once all are, and keeps them connected until
// ctx is done or standard input closes; then it disconnects them.
func runClients(ctx context.Context, addr string, peers, hosts int) error {
	if addr == "" || peers < 1 || hosts < 1 || hosts > peers {
		return fmt.Errorf("need -addr, -peers >= 1 and 1 <= -hosts <= -peers")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	g, gctx := errgroup.WithContext(ctx)
	ready := make(chan struct{}, hosts) // one per host: never blocks
	for i := range hosts {
		n := peers / hosts
		if i < peers%hosts {
			n++
		}
		h, err := netloop.New("", netloop.WithPeers(n), netloop.WithChannels(1), netloop.WithDrainTimeout(2*time.Second))
		if err != nil {
			cancel()
			g.Wait()
			return err
		}
		g.Go(func() error { return h.Run(gctx) })
		g.Go(func() error { return dial(gctx, h, addr, n, ready) })
	}
	g.Go(func() error {
		for range hosts {
			select {
			case <-ready:
			case <-gctx.Done():
				return nil
			}
		}
		fmt.Printf("connected %d\n", peers)
		return nil
	})
	return g.Wait()
}

// dial connects n peers of h to addr, at most 64 connections pending at a
// time, signals ready, then consumes h's events until they close and
// reports peers lost before ctx was done.
func dial(ctx context.Context, h *netloop.Host, addr string, n int, ready chan<- struct{}) error {
	defer func() {
		for range h.Events() { // until Run has returned: never block its shutdown
		}
	}()
	const inFlight = 64
	started, pending, up := 0, 0, 0
	for up < n {
		for started < n && pending < inFlight {
			if _, err := h.Connect(ctx, addr, 1, 0); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			started++
			pending++
		}
		select {
		case ev, ok := <-h.Events():
			if !ok {
				return nil
			}
			switch ev.Kind {
			case netloop.EventConnect:
				up++
				pending--
			case netloop.EventDisconnect:
				return fmt.Errorf("peer %v: %v after %d of %d connected", ev.Peer, ev.Reason, up, n)
			}
		case <-ctx.Done():
			return nil
		}
	}
	ready <- struct{}{}
	lost := 0
	for ev := range h.Events() {
		if ev.Kind == netloop.EventDisconnect && ctx.Err() == nil {
			lost++
		}
	}
	if lost > 0 {
		fmt.Fprintf(os.Stderr, "scale clients: %d of %d peers of a host lost during the run\n", lost, n)
	}
	return nil
}

// ---- The coordinator ----

// result is one scenario's outcome: one JSON line.
type result struct {
	Scenario string  `json:"scenario"`
	Impl     string  `json:"impl"`
	Seconds  float64 `json:"seconds"`         // the measured window
	Peers    int     `json:"peers,omitempty"` // connected to the server at the end (netloop, session)

	ServerCPUPct  float64 `json:"server_cpu_pct"` // % of one core
	ClientsCPUPct float64 `json:"clients_cpu_pct,omitempty"`
	IterPerSec    float64 `json:"loop_iterations_per_sec,omitempty"`
	WakesPerSec   float64 `json:"wakes_per_sec,omitempty"`
	DgramsInSec   float64 `json:"datagrams_in_per_sec,omitempty"`
	DgramsOutSec  float64 `json:"datagrams_out_per_sec,omitempty"`
	GCs           uint32  `json:"gcs,omitempty"`

	// manypeers
	PingMessages int64   `json:"ping_messages,omitempty"`
	PingP50us    float64 `json:"ping_p50_us,omitempty"`
	PingP99us    float64 `json:"ping_p99_us,omitempty"`
	PingP999us   float64 `json:"ping_p999_us,omitempty"`
	PingMaxus    float64 `json:"ping_max_us,omitempty"`
	SendMsgsSec  float64 `json:"senders_msgs_per_sec,omitempty"`
	SendP50us    float64 `json:"senders_p50_us,omitempty"`
	SendP99us    float64 `json:"senders_p99_us,omitempty"`

	// multicore
	Runs  []multicoreRun `json:"runs,omitempty"`
	Ratio float64        `json:"ratio,omitempty"` // msgs/s with 2 hosts / with 1

	Errors int64  `json:"errors"` // protocol errors seen by the load generator
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
}

type multicoreRun struct {
	Hosts        int     `json:"hosts"`
	MsgsPerSec   float64 `json:"msgs_per_sec"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	ServerCPUPct float64 `json:"server_cpu_pct"`
	IterPerSec   float64 `json:"loop_iterations_per_sec,omitempty"`
}

func coordinate(ctx context.Context, scenario, impl string, d time.Duration, asJSON bool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	enet.Initialize() // for package load; the children initialise their own
	defer enet.Deinitialize()
	all := map[string]func(context.Context, string, string, time.Duration) (result, error){
		"idle": idle, "manypeers": manypeers, "multicore": multicore,
	}
	names := []string{"idle", "manypeers", "multicore"}
	if scenario != "all" {
		if all[scenario] == nil {
			return fmt.Errorf("unknown scenario %q", scenario)
		}
		names = []string{scenario}
	}
	fmt.Fprintf(os.Stderr, "scale: %d CPUs, GOMAXPROCS %d, server %s, %v per scenario\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), impl, d)
	for _, name := range names {
		// Every scenario is bounded: its measured windows, connects and stops.
		sctx, cancel := context.WithTimeout(ctx, 3*d+3*time.Minute)
		res, err := all[name](sctx, self, impl, d)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		res.Scenario, res.Impl, res.Seconds = name, impl, d.Seconds()
		if asJSON {
			b, err := json.Marshal(res)
			if err != nil {
				return err
			}
			fmt.Println(string(b))
		} else {
			summary(res)
		}
	}
	return nil
}

func met(ok bool) *bool { return &ok }

// idle: a server with 512 silent peers.
func idle(ctx context.Context, self, impl string, d time.Duration) (result, error) {
	srv, addrs, err := startServer(ctx, self, impl, 1, idlePeers+64)
	if err != nil {
		return result{}, err
	}
	defer srv.stop()
	cl, err := startClients(ctx, self, addrs[0], idlePeers, 4)
	if err != nil {
		return result{}, err
	}
	defer cl.stop()
	if err := pause(ctx, settle); err != nil {
		return result{}, err
	}
	s0, err := srv.stats()
	if err != nil {
		return result{}, err
	}
	c0, _ := processCPU(cl.cmd.Process.Pid)
	t0 := time.Now()
	if err := pause(ctx, d); err != nil {
		return result{}, err
	}
	s1, err := srv.stats()
	if err != nil {
		return result{}, err
	}
	c1, _ := processCPU(cl.cmd.Process.Pid)
	el := time.Since(t0)
	res := rates(s0, s1, el)
	res.ClientsCPUPct = pct(c1-c0, el)
	res.Target = "server CPU < 2% of one core"
	res.Met = met(res.ServerCPUPct < 2)
	return res, nil
}

// manypeers: 4000 peers, 100 sending at 60 Hz, one ping-pong client.
func manypeers(ctx context.Context, self, impl string, d time.Duration) (result, error) {
	srv, addrs, err := startServer(ctx, self, impl, 1, netloop.MaxPeers)
	if err != nil {
		return result{}, err
	}
	defer srv.stop()
	silent := manyPeers - senders - 1
	cl, err := startClients(ctx, self, addrs[0], silent, 8)
	if err != nil {
		return result{}, err
	}
	defer cl.stop()
	if err := pause(ctx, settle); err != nil {
		return result{}, err
	}
	s0, err := srv.stats()
	if err != nil {
		return result{}, err
	}
	t0 := time.Now()
	var ping, send load.Result
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		ping, err = load.Run(gctx, load.Config{
			Addr: addrs[0], Mode: load.PingPong, Size: senderSize,
			Duration: d, Warmup: warmup,
		})
		return err
	})
	g.Go(func() (err error) {
		send, err = load.Run(gctx, load.Config{
			Addr: addrs[0], Mode: load.Throughput, Clients: senders, Hosts: 2, Window: 4,
			Size: senderSize, Rate: senders * senderHz,
			Duration: d, Warmup: warmup, ServerPID: srv.cmd.Process.Pid,
		})
		return err
	})
	// Count the peers in the middle of the measured window: the load's
	// clients are gone by its end.
	var mid serverStats
	g.Go(func() error {
		if err := pause(gctx, warmup+d/2); err != nil {
			return nil
		}
		var err error
		mid, err = srv.stats()
		return err
	})
	if err := g.Wait(); err != nil {
		return result{}, err
	}
	s1, err := srv.stats()
	if err != nil {
		return result{}, err
	}
	res := rates(s0, s1, time.Since(t0))
	res.Peers = mid.ConnectedPeers
	res.ServerCPUPct = pct(send.ServerCPU, send.Duration) // the measured window only
	res.PingMessages = ping.Messages
	res.PingP50us, res.PingP99us, res.PingP999us, res.PingMaxus = us(ping.P50), us(ping.P99), us(ping.P999), us(ping.Max)
	res.SendMsgsSec, res.SendP50us, res.SendP99us = send.MsgsPerSec, us(send.P50), us(send.P99)
	res.Errors = ping.Errors + send.Errors
	res.Target = "ping-pong p99 < 2ms"
	res.Met = met(ping.P99 < 2*time.Millisecond)
	return res, nil
}

// multicore: echo throughput with 1 and 2 hosts in one server process.
func multicore(ctx context.Context, self, impl string, d time.Duration) (result, error) {
	var res result
	for _, n := range []int{1, 2} {
		run, errs, err := multicoreRunN(ctx, self, impl, d, n)
		if err != nil {
			return result{}, fmt.Errorf("%d hosts: %w", n, err)
		}
		res.Runs = append(res.Runs, run)
		res.Errors += errs
	}
	res.ServerCPUPct = res.Runs[len(res.Runs)-1].ServerCPUPct
	res.Ratio = res.Runs[1].MsgsPerSec / res.Runs[0].MsgsPerSec
	return res, nil
}

func multicoreRunN(ctx context.Context, self, impl string, d time.Duration, n int) (multicoreRun, int64, error) {
	srv, addrs, err := startServer(ctx, self, impl, n, multicoreTotal/n+8)
	if err != nil {
		return multicoreRun{}, 0, err
	}
	defer srv.stop()
	s0, err := srv.stats()
	if err != nil {
		return multicoreRun{}, 0, err
	}
	t0 := time.Now()
	results := make([]load.Result, n)
	g, gctx := errgroup.WithContext(ctx)
	for i, a := range addrs {
		cfg := load.Config{
			Addr: a, Mode: load.Throughput, Clients: multicoreTotal / n, Hosts: 4 / n,
			Window: multicoreWindow, Duration: d, Warmup: warmup,
		}
		if i == 0 {
			cfg.ServerPID = srv.cmd.Process.Pid
		}
		g.Go(func() (err error) {
			results[i], err = load.Run(gctx, cfg)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return multicoreRun{}, 0, err
	}
	s1, err := srv.stats()
	if err != nil {
		return multicoreRun{}, 0, err
	}
	run := multicoreRun{Hosts: n, ServerCPUPct: pct(results[0].ServerCPU, results[0].Duration)}
	var errs int64
	for _, r := range results {
		run.MsgsPerSec += r.MsgsPerSec
		run.P50us = max(run.P50us, us(r.P50))
		run.P99us = max(run.P99us, us(r.P99))
		errs += r.Errors
	}
	run.IterPerSec = rates(s0, s1, time.Since(t0)).IterPerSec
	return run, errs, nil
}

// rates turns two stats snapshots of the server into a result's rates.
func rates(s0, s1 serverStats, el time.Duration) result {
	per := func(a, b uint64) float64 { return float64(b-a) / el.Seconds() }
	return result{
		Peers:        s1.ConnectedPeers,
		ServerCPUPct: pct(s1.CPU-s0.CPU, el),
		IterPerSec:   per(s0.Iterations, s1.Iterations),
		WakesPerSec:  per(s0.Wakes, s1.Wakes),
		DgramsInSec:  per(s0.ReceivedDatagrams, s1.ReceivedDatagrams),
		DgramsOutSec: per(s0.SentDatagrams, s1.SentDatagrams),
		GCs:          s1.NumGC - s0.NumGC,
	}
}

func pct(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return 100 * cpu.Seconds() / wall.Seconds()
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func summary(r result) {
	fmt.Printf("== %s (server %s, %.0fs)\n", r.Scenario, r.Impl, r.Seconds)
	switch {
	case r.Scenario == "multicore":
	case r.IterPerSec > 0: // netloop's counters (not for ref)
		fmt.Printf("   server: %d peers connected, CPU %.2f%% of one core, %.0f loop iterations/s, %.0f wakes/s, %.0f datagrams in/s, %.0f out/s, %d GCs\n",
			r.Peers, r.ServerCPUPct, r.IterPerSec, r.WakesPerSec, r.DgramsInSec, r.DgramsOutSec, r.GCs)
	default:
		fmt.Printf("   server: CPU %.2f%% of one core, %d GCs\n", r.ServerCPUPct, r.GCs)
	}
	switch r.Scenario {
	case "idle":
		fmt.Printf("   idle clients' process: CPU %.2f%% of one core\n", r.ClientsCPUPct)
	case "manypeers":
		fmt.Printf("   ping-pong: %d round trips, p50 %.0fµs, p99 %.0fµs, p99.9 %.0fµs, max %.0fµs\n",
			r.PingMessages, r.PingP50us, r.PingP99us, r.PingP999us, r.PingMaxus)
		fmt.Printf("   %d senders at %d Hz: %.0f echoes/s, p50 %.0fµs, p99 %.0fµs\n",
			senders, senderHz, r.SendMsgsSec, r.SendP50us, r.SendP99us)
	case "multicore":
		for _, run := range r.Runs {
			fmt.Printf("   %d host(s): %.0f msgs/s, p50 %.0fµs, p99 %.0fµs, server CPU %.0f%% of one core",
				run.Hosts, run.MsgsPerSec, run.P50us, run.P99us, run.ServerCPUPct)
			if run.IterPerSec > 0 {
				fmt.Printf(", %.0f loop iterations/s", run.IterPerSec)
			}
			fmt.Println()
		}
		fmt.Printf("   2 hosts / 1 host: %.2fx (%d CPUs, shared with the load generator)\n", r.Ratio, runtime.NumCPU())
	}
	if r.Errors != 0 {
		fmt.Printf("   load generator protocol errors: %d\n", r.Errors)
	}
	if r.Met != nil {
		verdict := "met"
		if !*r.Met {
			verdict = "NOT met"
		}
		fmt.Printf("   target %s: %s\n", r.Target, verdict)
	}
}

// pause waits for d or ctx.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ---- Children ----

// child is a process running this command in a role. It exits when its
// standard input closes.
type child struct {
	name   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan string   // its standard output; closed when it has exited
	exited chan struct{} // closed when it has exited
	err    error         // Wait's, once exited is closed
	once   sync.Once
}

func spawn(ctx context.Context, self, name string, args ...string) (*child, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = childWait
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, in: in, lines: make(chan string, 64), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	go func() {
		c.err = cmd.Wait()
		pw.Close()
		close(c.exited)
	}()
	return c, nil
}

// expect returns the rest of the child's next output line that starts
// with prefix; other lines go to standard error.
func (c *child) expect(prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				<-c.exited
				return "", fmt.Errorf("%s exited (%v) before printing %q", c.name, c.err, prefix)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest, nil
			}
			fmt.Fprintf(os.Stderr, "%s: %s\n", c.name, l)
		case <-t.C:
			return "", fmt.Errorf("%s printed no %q within %v", c.name, prefix, timeout)
		}
	}
}

// stop closes the child's standard input, which makes it shut down, and
// waits for it to exit (killing it if it takes too long).
func (c *child) stop() {
	c.once.Do(func() {
		c.in.Close()
		t := time.NewTimer(childWait)
		defer t.Stop()
		select {
		case <-c.exited:
		case <-t.C:
			c.cmd.Process.Kill()
			<-c.exited
		}
		if c.err != nil {
			fmt.Fprintf(os.Stderr, "scale: %s: %v\n", c.name, c.err)
		}
	})
}

// server is the server child.
type server struct{ *child }

func startServer(ctx context.Context, self, impl string, hosts, peers int) (*server, []string, error) {
	c, err := spawn(ctx, self, "server", "-role", "server", "-impl", impl, "-hosts", strconv.Itoa(hosts), "-peers", strconv.Itoa(peers))
	if err != nil {
		return nil, nil, err
	}
	line, err := c.expect("listening on ", childWait)
	if err != nil {
		c.stop()
		return nil, nil, err
	}
	return &server{c}, strings.Split(line, ","), nil
}

// stats asks the server for its counters.
func (s *server) stats() (serverStats, error) {
	var st serverStats
	if _, err := io.WriteString(s.in, "stats\n"); err != nil {
		return st, fmt.Errorf("server stats: %w", err)
	}
	line, err := s.expect("stats ", childWait)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(line), &st)
}

// startClients starts the idle peers' child and waits until all are connected.
func startClients(ctx context.Context, self, addr string, peers, hosts int) (*child, error) {
	c, err := spawn(ctx, self, "clients", "-role", "clients", "-addr", addr, "-peers", strconv.Itoa(peers), "-hosts", strconv.Itoa(hosts))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := c.expect("connected ", connectWait); err != nil {
		c.stop()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "scale: %d idle peers connected in %v\n", peers, time.Since(start).Round(time.Millisecond))
	return c, nil
}

// processCPU returns the user+system CPU time of process pid so far
// (10ms resolution).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

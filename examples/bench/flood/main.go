// Command flood measures how a server stands a handshake flood: forged ENet
// CONNECTs from many loopback source addresses (netlooptest.Flood) against
// the plain go-enet reference server (package refserver) and the netloop echo
// server (package echo), each in its own process, side by side.
//
// For each scenario (peer slots and flood rate) and each server it measures:
//
//   - a real client's connect time during the flood: a fresh client host
//     (netlooptest.ConnectTime) tries every -interval from -settle after
//     the flood starts, each try bounded by -try; the table gives the
//     tries that connected, their p50 and max
//   - the time from the end of the flood until a real client connects
//     (tries every -interval after the flood, the first success counts;
//     at most -recover)
//   - the server's resident memory (VmRSS) before the flood, at its peak
//     (sampled every 100ms), and once a client connected again after it
//   - the server's CPU time during the flood
//
// Run it with
//
//	go run ./examples/bench/flood [-scenarios 64@2000,4095@10000] [-sources 2000] [-duration 10s] [-impls ref,netloop]
//
// Everything runs on loopback and stops by itself; the generator and the
// clients share the machine with the server, so compare within one run.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/codecat/go-enet"

	"github.com/enetkit/enetkit/examples/bench/echo"
	"github.com/enetkit/enetkit/examples/bench/refserver"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
)

// config is what one run measures.
type config struct {
	scenarios []scenario
	impls     []string
	sources   int
	duration  time.Duration
	try       time.Duration // bound of one connect try
	interval  time.Duration // between the starts of two tries
	settle    time.Duration // from the start of the flood to the first try
	recover   time.Duration // how long to wait for a connect after the flood
}

// scenario is a server size and a flood rate.
type scenario struct{ slots, rate int }

func main() {
	serve := flag.String("serve", "", "run as the server `impl` (ref or netloop) instead, with -peers slots, on -addr")
	peers := flag.Int("peers", 64, "peer slots (with -serve)")
	addr := flag.String("addr", "127.0.0.1:6789", "listen address (with -serve)")
	scen := flag.String("scenarios", "64@2000,4095@10000", "comma-separated `slots@rate` pairs: peer slots of the servers, forged CONNECTs a second")
	impls := flag.String("impls", "ref,netloop", "servers to compare: ref (plain go-enet), netloop (netloop echo)")
	var cfg config
	flag.IntVar(&cfg.sources, "sources", 2000, "distinct forged source addresses")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "flood duration")
	flag.DurationVar(&cfg.try, "try", 2*time.Second, "bound of one real client's connect try")
	flag.DurationVar(&cfg.interval, "interval", 250*time.Millisecond, "time between the starts of two connect tries")
	flag.DurationVar(&cfg.settle, "settle", time.Second, "time from the start of the flood to the first connect try")
	flag.DurationVar(&cfg.recover, "recover", 60*time.Second, "how long to wait for a real client to connect after the flood")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *serve != "" {
		err = runServer(ctx, *serve, *addr, *peers)
	} else {
		cfg.impls = strings.Split(*impls, ",")
		if cfg.scenarios, err = parseScenarios(*scen); err == nil {
			err = run(ctx, os.Stdout, cfg)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
}

func parseScenarios(s string) ([]scenario, error) {
	var out []scenario
	for _, f := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(f, "@")
		slots, err1 := strconv.Atoi(a)
		rate, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || slots < 1 || slots > netloop.MaxPeers || rate < 1 || rate > netlooptest.MaxFloodRate {
			return nil, fmt.Errorf("bad scenario %q: want slots@rate, slots 1..%d", f, netloop.MaxPeers)
		}
		out = append(out, scenario{slots, rate})
	}
	return out, nil
}

// runServer runs one server on addr until ctx is done.
func runServer(ctx context.Context, impl, addr string, peers int) error {
	switch impl {
	case "ref":
		enet.Initialize()
		defer enet.Deinitialize()
		s, err := refserver.Listen(addr, peers, false)
		if err != nil {
			return err
		}
		return s.Run(ctx)
	case "netloop":
		h, err := netloop.New(addr, netloop.WithPeers(peers), netloop.WithChannels(echo.Channels))
		if err != nil {
			return err
		}
		return echo.Netloop(ctx, h)
	}
	return fmt.Errorf("unknown server %q", impl)
}

// freeAddr returns a loopback address whose UDP port was free a moment ago
// (go-enet cannot bind port 0 and report the port).
func freeAddr() (netip.AddrPort, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}

// result is one server's figures in one scenario.
type result struct {
	flood        netlooptest.FloodStats
	tries, oks   int
	p50, max     time.Duration
	after        time.Duration // from the end of the flood to a connect; -1 if none
	rssBefore    int64         // KiB
	rssPeak      int64
	rssAfter     int64
	cpu          time.Duration // server CPU during the flood
	baseline     time.Duration // a connect before the flood
	recoverLimit time.Duration
}

// run measures every scenario with every server and prints a table per
// scenario to w.
func run(ctx context.Context, w io.Writer, cfg config) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintln(w, strings.TrimSpace("`go run ./examples/bench/flood "+strings.Join(os.Args[1:], " "))+"`")
	for _, sc := range cfg.scenarios {
		results := make([]result, len(cfg.impls))
		for i, impl := range cfg.impls {
			fmt.Fprintf(os.Stderr, "flood: %s, %d slots, %d CONNECTs/s from %d sources for %v\n", impl, sc.slots, sc.rate, cfg.sources, cfg.duration)
			if results[i], err = measure(ctx, cfg, self, impl, sc); err != nil {
				return fmt.Errorf("%s, %d slots, %d/s: %w", impl, sc.slots, sc.rate, err)
			}
		}
		table(w, cfg, sc, results)
	}
	return nil
}

// measure starts impl with sc.slots slots in a child process, floods it
// and measures it, and stops it.
func measure(ctx context.Context, cfg config, self, impl string, sc scenario) (result, error) {
	res := result{after: -1, recoverLimit: cfg.recover}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	target, err := freeAddr()
	if err != nil {
		return res, err
	}
	addr := target.String()
	cmd := exec.CommandContext(ctx, self, "-serve", impl, "-peers", strconv.Itoa(sc.slots), "-addr", addr)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		cancel() // interrupts the server
		cmd.Wait()
	}()
	pid := cmd.Process.Pid

	// The server is up once a client connects (ENet retransmits the
	// CONNECT until it is bound); then a connect to compare with.
	if _, err := connect(ctx, addr, 10*time.Second); err != nil {
		return res, fmt.Errorf("server did not start: %w", err)
	}
	if res.baseline, err = connect(ctx, addr, cfg.try); err != nil {
		return res, fmt.Errorf("before the flood: %w", err)
	}
	if res.rssBefore, err = rss(pid); err != nil {
		return res, err
	}
	cpu0, err := cpuTime(pid)
	if err != nil {
		return res, err
	}

	// Memory, sampled until the end.
	peak := make(chan int64, 1)
	sampling, stopSampling := context.WithCancel(ctx)
	go func() { peak <- samplePeak(sampling, pid) }()
	defer stopSampling()

	// The flood, with connect tries every interval while it lasts.
	floodCtx, floodCancel := context.WithTimeout(ctx, cfg.duration)
	defer floodCancel()
	tries := newProber(nil)
	go tries.every(floodCtx, addr, cfg, cfg.settle) // once the flood is under way
	if res.flood, err = netlooptest.Flood(floodCtx, target, netlooptest.FloodConfig{Rate: sc.rate, Sources: cfg.sources, Duration: cfg.duration}); err != nil {
		return res, err
	}
	end := time.Now()
	cpu1, err := cpuTime(pid)
	if err != nil {
		return res, err
	}
	res.cpu = cpu1 - cpu0

	// After the flood: tries every interval until one connects.
	afterCtx, afterCancel := context.WithTimeout(ctx, cfg.recover)
	defer afterCancel()
	after := newProber(afterCancel)
	after.every(afterCtx, addr, cfg, 0)
	tries.wait()
	after.wait()
	if first, ok := after.firstOK(); ok {
		res.after = first.Sub(end)
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if res.rssAfter, err = rss(pid); err != nil {
		return res, err
	}
	stopSampling()
	res.rssPeak = max(<-peak, res.rssBefore, res.rssAfter)
	res.tries, res.oks, res.p50, res.max = tries.summary()
	return res, nil
}

// connect is one real client's try: a fresh client host, bounded by try.
func connect(ctx context.Context, addr string, try time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, try)
	defer cancel()
	return netlooptest.ConnectTime(ctx, addr, netloop.WithConnectTimeout(try))
}

// prober starts connect tries at a fixed interval and keeps their outcomes.
type prober struct {
	stopped chan struct{} // closed when every returns
	wg      sync.WaitGroup
	until   func() // if set, called on the first success

	mu    sync.Mutex
	oks   []time.Duration // connect times of the tries that connected
	fails int
	first time.Time // when the first successful try finished
}

func newProber(until func()) *prober {
	return &prober{stopped: make(chan struct{}), until: until}
}

// every starts a try every interval after delay until ctx is done. Call it
// once.
func (p *prober) every(ctx context.Context, addr string, cfg config, delay time.Duration) {
	defer close(p.stopped)
	select {
	case <-ctx.Done():
		return
	case <-time.After(delay):
	}
	tick := time.NewTicker(cfg.interval)
	defer tick.Stop()
	for {
		p.wg.Go(func() {
			d, err := connect(context.WithoutCancel(ctx), addr, cfg.try)
			p.mu.Lock()
			defer p.mu.Unlock()
			if err != nil {
				p.fails++
				return
			}
			p.oks = append(p.oks, d)
			if p.first.IsZero() {
				p.first = time.Now()
				if p.until != nil {
					p.until()
				}
			}
		})
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// wait waits until every has returned and its tries have ended.
func (p *prober) wait() {
	<-p.stopped
	p.wg.Wait()
}

func (p *prober) firstOK() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first, !p.first.IsZero()
}

func (p *prober) summary() (tries, oks int, p50, maxd time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := slices.Clone(p.oks)
	slices.Sort(s)
	if len(s) > 0 {
		p50, maxd = s[len(s)/2], s[len(s)-1]
	}
	return len(s) + p.fails, len(s), p50, maxd
}

// samplePeak returns the highest VmRSS of pid seen every 100ms until ctx
// is done.
func samplePeak(ctx context.Context, pid int) int64 {
	var peak int64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if kb, err := rss(pid); err == nil {
			peak = max(peak, kb)
		}
		select {
		case <-ctx.Done():
			return peak
		case <-tick.C:
		}
	}
}

// rss returns the VmRSS of pid, in KiB.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuTime returns the user+system CPU time of pid so far (fields 14 and 15
// of /proc/PID/stat, in clock ticks of 10ms).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	_, rest, ok := strings.Cut(string(b), ") ") // after the command name
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// table prints one scenario's results as a markdown table, a column per
// server.
func table(w io.Writer, cfg config, sc scenario, rs []result) {
	fmt.Fprintf(w, "\n### %d slots, flood of %d CONNECTs/s from %d sources for %v\n\n", sc.slots, sc.rate, cfg.sources, cfg.duration)
	row := func(name string, cell func(r result) string) {
		fmt.Fprintf(w, "| %s |", name)
		for _, r := range rs {
			fmt.Fprintf(w, " %s |", cell(r))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "| |")
	for _, impl := range cfg.impls {
		fmt.Fprintf(w, " %s |", map[string]string{"ref": "go-enet reference", "netloop": "netloop echo"}[impl]+" ("+impl+")")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "|---|"+strings.Repeat("---|", len(rs)))
	row("connect before the flood", func(r result) string { return ms(r.baseline) })
	row("flood: CONNECTs sent (rate)", func(r result) string {
		return fmt.Sprintf("%d (%.0f/s)", r.flood.Sent, r.flood.Rate())
	})
	row("flood: slots held / VERIFY_CONNECTs", func(r result) string {
		return fmt.Sprintf("%d / %d", r.flood.Slots, r.flood.VerifyConnects)
	})
	row(fmt.Sprintf("during: tries connected (each ≤ %v)", cfg.try), func(r result) string {
		return fmt.Sprintf("%d of %d", r.oks, r.tries)
	})
	row("during: connect p50 / max", func(r result) string {
		if r.oks == 0 {
			return "–"
		}
		return ms(r.p50) + " / " + ms(r.max)
	})
	row("after: first connect after the flood", func(r result) string {
		if r.after < 0 {
			return fmt.Sprintf("none within %v", r.recoverLimit)
		}
		return fmt.Sprintf("%.2fs", r.after.Seconds())
	})
	row("server RSS before / peak / after", func(r result) string {
		return fmt.Sprintf("%.1f / %.1f / %.1f MiB", mib(r.rssBefore), mib(r.rssPeak), mib(r.rssAfter))
	})
	row("server CPU during the flood", func(r result) string { return fmt.Sprintf("%.2fs", r.cpu.Seconds()) })
	fmt.Fprintln(w)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func mib(kb int64) float64 { return float64(kb) / 1024 }

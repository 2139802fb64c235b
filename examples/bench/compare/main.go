// Command compare runs the same load against echo servers written three
// ways, each in its own process, and prints one table with ratios to the
// hand-written go-enet loop:
//
//   - ref: a plain go-enet loop blocking in Service(1) (package refserver)
//   - ref-poll: the same loop busy-polling Service(0)
//   - netloop: echo on netloop's event channel (package echo)
//   - netloop/inline: echo in an inline handler, on the loop's goroutine
//   - session: echo through session and dispatch (package echo)
//   - netloop+metrics, session+metrics: the same with package metrics on
//     (loop timing, observers, per-peer series, a scrape every second)
//   - group: netloop echo on a host group of -group-hosts hosts (default 2)
//     sharing one port, one consumer per host
//   - any of them with the suffix /1p: the server process with GOMAXPROCS=1
//   - any of them followed by @path: served by another build of this command
//     (for example of an earlier commit), to compare two versions in one run
//
// Scenarios: ping-pong with one busy-polling client (RTT p50/p99), throughput with 64
// clients and 8 messages in flight each (messages/s, server CPU per
// million), and a fixed offered rate of 20k messages/s (server CPU per
// million, RTT p50). The load generator (package load, C engine by
// default) runs in this process; the table gives its own CPU per million
// messages beside the server's, which it should stay well below. Run it with
//
//	go run ./examples/bench/compare [-duration 5s] [-repeat 3] [-impls ref,netloop,session] [-scenarios pingpong,throughput,rate20k] [-json]
//
// The servers share the machine's cores with the load generator; the
// numbers that count are the ratios within one run.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/codecat/go-enet"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/enetkit/enetkit/examples/bench/echo"
	"github.com/enetkit/enetkit/examples/bench/load"
	"github.com/enetkit/enetkit/examples/bench/refserver"
	"github.com/enetkit/enetkit/metrics"
	"github.com/enetkit/enetkit/netloop"
)

func main() {
	serve := flag.String("serve", "", "run as the server `impl` (ref, ref-poll, netloop, netloop/inline, session, netloop+metrics, session+metrics) instead")
	addr := flag.String("addr", "127.0.0.1:0", "server address (with -serve)")
	peers := flag.Int("peers", 1024, "peer slots of every server")
	impls := flag.String("impls", "ref,ref-poll,netloop,netloop/1p,session,session/1p", "servers to compare, the first is the reference")
	duration := flag.Duration("duration", 5*time.Second, "measured time per scenario")
	warmup := flag.Duration("warmup", time.Second, "warm-up time per scenario")
	asJSON := flag.Bool("json", false, "print one JSON line per result")
	repeat := flag.Int("repeat", 1, "rounds; the table shows medians")
	only := flag.String("scenarios", "pingpong,throughput,rate20k", "scenarios to run")
	cpuprofile := flag.String("cpuprofile", "", "with -serve: write the server's CPU profile to `file`")
	mutexprofile := flag.String("mutexprofile", "", "with -serve: write the server's mutex contention profile to `file` on exit")
	blockprofile := flag.String("blockprofile", "", "with -serve: write the server's blocking profile to `file` on exit")
	engine := flag.String("engine", "", "load generator engine: c or go (default: c where it applies)")
	flag.BoolVar(&immediateAcks, "immediate-acks", false, "C engine: acknowledge in datagrams of their own, as ENet does")
	flag.IntVar(&groupHosts, "group-hosts", 2, "hosts of the group server")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if *mutexprofile != "" {
		runtime.SetMutexProfileFraction(1)
		defer writeProfile("mutex", *mutexprofile)
	}
	if *blockprofile != "" {
		runtime.SetBlockProfileRate(1)
		defer writeProfile("block", *blockprofile)
	}
	loadEngine = load.Engine(*engine)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *serve != "" {
		err = runServer(ctx, *serve, *addr, *peers)
	} else {
		err = compare(ctx, strings.Split(*impls, ","), strings.Split(*only, ","), *peers, *duration, *warmup, max(*repeat, 1), *asJSON)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// runServer runs one server until ctx is done. It prints "listening on
// ADDR" once it is bound.
func runServer(ctx context.Context, impl, addr string, peers int) error {
	if base, ok := strings.CutSuffix(impl, "/1p"); ok {
		// One processor for the server, like the single-threaded reference:
		// on a small machine shared with the load generator this avoids
		// spreading one host's work over cores the generator needs.
		runtime.GOMAXPROCS(1)
		impl = base
	}
	switch impl {
	case "ref", "ref-poll":
		enet.Initialize()
		defer enet.Deinitialize()
		if strings.HasSuffix(addr, ":0") {
			addr = freePort()
		}
		s, err := refserver.Listen(addr, peers, impl == "ref-poll")
		if err != nil {
			return err
		}
		fmt.Printf("listening on %s\n", addr)
		return s.Run(ctx)
	case "group":
		g, err := netloop.NewGroup(addr, groupHosts, netloop.WithPeers(peers), netloop.WithChannels(echo.Channels), netloop.WithPerAddressLimit(netloop.MaxPeers))
		if err != nil {
			return err
		}
		fmt.Printf("listening on %s\n", g.Addr())
		received := make([]int64, groupHosts)
		err = echo.Group(ctx, g, received)
		fmt.Fprintf(os.Stderr, "group: messages received per host: %v\n", received)
		return err
	case "netloop", "netloop/inline", "session", "netloop+metrics", "session+metrics":
		base, withMetrics := strings.CutSuffix(impl, "+metrics")
		opts := []netloop.Option{netloop.WithPeers(peers), netloop.WithChannels(echo.Channels), netloop.WithPerAddressLimit(netloop.MaxPeers)} // every load client is on 127.0.0.1
		if withMetrics {
			opts = append(opts, netloop.WithTiming())
		}
		h, err := netloop.New(addr, opts...)
		if err != nil {
			return err
		}
		var m *metrics.Metrics
		if withMetrics {
			reg := prometheus.NewRegistry()
			if m, err = metrics.New(metrics.WithRegisterer(reg), metrics.WithPeerMetrics()); err != nil {
				return err
			}
			m.AddHost("echo", h)
			go scrape(ctx, reg)
		}
		fmt.Printf("listening on %s\n", h.Addr())
		switch base {
		case "netloop":
			return echo.Netloop(ctx, h)
		case "netloop/inline":
			return echo.Inline(ctx, h)
		}
		return echo.Session(ctx, h, m)
	}
	return fmt.Errorf("unknown server %q", impl)
}

// scrape gathers reg every second, as a Prometheus server would (more
// often than the usual 15s, to count its cost).
func scrape(ctx context.Context, reg prometheus.Gatherer) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			reg.Gather()
		}
	}
}

// freePort returns a loopback address whose UDP port was free a moment ago
// (go-enet cannot report the port it binds to).
func freePort() string {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return "127.0.0.1:6789"
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// Settings of main's flags.
var (
	groupHosts    int
	loadEngine    load.Engine
	immediateAcks bool
)

// writeProfile writes the named runtime profile to path.
func writeProfile(name, path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return
	}
	defer f.Close()
	pprof.Lookup(name).WriteTo(f, 0)
}

type scenario struct {
	name string
	cfg  load.Config
}

func scenarios(d, warmup time.Duration) []scenario {
	return []scenario{
		{"pingpong", load.Config{Mode: load.PingPong, Duration: d, Warmup: warmup, Poll: true}},
		{"throughput", load.Config{Mode: load.Throughput, Clients: 64, Hosts: 4, Window: 8, Duration: d, Warmup: warmup}},
		{"rate20k", load.Config{Mode: load.Throughput, Clients: 64, Hosts: 4, Window: 8, Rate: 20000, Duration: d, Warmup: warmup}},
	}
}

// row is one server's results, by scenario.
type row struct {
	impl    string
	results map[string]load.Result
}

func compare(ctx context.Context, impls, only []string, peers int, d, warmup time.Duration, repeat int, asJSON bool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// Rounds interleave the servers, so that drift in the machine's load
	// spreads over all of them; the table shows each figure's median.
	all := make(map[string]map[string][]load.Result)
	for _, impl := range impls {
		all[impl] = make(map[string][]load.Result)
	}
	for round := 0; round < repeat; round++ {
		for _, sc := range scenarios(d, warmup) {
			if !slices.Contains(only, sc.name) {
				continue
			}
			for _, impl := range impls {
				res, err := measure(ctx, self, impl, peers, sc.cfg)
				if err != nil {
					return fmt.Errorf("%s %s: %w", impl, sc.name, err)
				}
				all[impl][sc.name] = append(all[impl][sc.name], res)
				if asJSON {
					b, _ := json.Marshal(struct {
						Impl, Scenario string
						Round          int
						load.Result
					}{impl, sc.name, round, res})
					fmt.Println(string(b))
				} else {
					fmt.Fprintf(os.Stderr, "%-16s %-10s %9.0f msgs/s  p50 %v  p99 %v  cpu/M %.2fs  load cpu/M %.2fs\n", impl, sc.name, res.MsgsPerSec, res.P50, res.P99, res.CPUPerMillion, res.LoadCPUPerMillion)
				}
			}
		}
	}
	if !asJSON {
		var rows []row
		for _, impl := range impls {
			r := row{impl: impl, results: make(map[string]load.Result)}
			for name, rs := range all[impl] {
				r.results[name] = median(rs)
			}
			rows = append(rows, r)
		}
		table(rows)
	}
	return nil
}

// median returns, field by field, the medians of rs.
func median(rs []load.Result) load.Result {
	mid := func(get func(load.Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return load.Result{
		MsgsPerSec:        mid(func(r load.Result) float64 { return r.MsgsPerSec }),
		P50:               time.Duration(mid(func(r load.Result) float64 { return float64(r.P50) })),
		P99:               time.Duration(mid(func(r load.Result) float64 { return float64(r.P99) })),
		CPUPerMillion:     mid(func(r load.Result) float64 { return r.CPUPerMillion }),
		LoadCPUPerMillion: mid(func(r load.Result) float64 { return r.LoadCPUPerMillion }),
	}
}

// measure starts impl in a child process, runs the load against it and stops it.
func measure(ctx context.Context, self, impl string, peers int, cfg load.Config) (load.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if name, bin, ok := strings.Cut(impl, "@"); ok {
		impl, self = name, bin // another build of this command, for A/B runs
	}
	cmd := exec.CommandContext(ctx, self, "-serve", impl, "-peers", fmt.Sprint(peers), "-group-hosts", fmt.Sprint(groupHosts))
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return load.Result{}, err
	}
	if err := cmd.Start(); err != nil {
		return load.Result{}, err
	}
	defer func() {
		cancel() // interrupts the server
		cmd.Wait()
	}()
	addr, err := listening(out, 10*time.Second)
	if err != nil {
		return load.Result{}, err
	}
	cfg.Addr = addr
	cfg.ServerPID = cmd.Process.Pid
	cfg.Engine, cfg.ImmediateAcks = loadEngine, immediateAcks
	return load.Run(ctx, cfg)
}

// listening reads the child's "listening on ADDR" line.
func listening(r interface{ Read([]byte) (int, error) }, timeout time.Duration) (string, error) {
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				line <- a
				break
			}
		}
		close(line)
	}()
	select {
	case a, ok := <-line:
		if !ok {
			return "", errors.New("server exited before listening")
		}
		return a, nil
	case <-time.After(timeout):
		return "", errors.New("server did not start")
	}
}

func table(rows []row) {
	if len(rows) == 0 {
		return
	}
	ref := rows[0].results
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "server\tping-pong p50\tp99\tthroughput msgs/s\tratio\tp99\tCPU s/M msgs\tratio\tload CPU s/M\t20k/s CPU s/M\tratio\tload CPU s/M\t20k/s p50\t")
	for _, r := range rows {
		pp, th, fx := r.results["pingpong"], r.results["throughput"], r.results["rate20k"]
		fmt.Fprintf(w, "%s\t%s\t%s\t%.0f\t%.2fx\t%s\t%.2f\t%.2fx\t%.2f\t%.2f\t%.2fx\t%.2f\t%s\t\n", r.impl,
			us(pp.P50), us(pp.P99),
			th.MsgsPerSec, th.MsgsPerSec/ref["throughput"].MsgsPerSec, us(th.P99),
			th.CPUPerMillion, th.CPUPerMillion/ref["throughput"].CPUPerMillion, th.LoadCPUPerMillion,
			fx.CPUPerMillion, fx.CPUPerMillion/ref["rate20k"].CPUPerMillion, fx.LoadCPUPerMillion, us(fx.P50))
	}
	w.Flush()
}

func us(d time.Duration) string { return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond)) }

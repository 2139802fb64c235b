// Command server is the arena example's server: a game of tag in rooms of
// up to eight players, one room goroutine each, ticking at -tick Hz and
// sending every member a snapshot of its room each tick.
//
//	go run ./examples/arena/server -addr 127.0.0.1:7300 -http 127.0.0.1:8080 -metrics 127.0.0.1:9300
//	go run ./examples/arena/bot -addr 127.0.0.1:7300 -n 16 -duration 10s
//
// -http serves a spectator page drawing every room's players, updated
// several times a second (/), and the rooms' state as JSON (/state).
// -metrics serves Prometheus metrics (/metrics). On SIGINT or SIGTERM the
// server shuts its rooms down gracefully and, last, prints one JSON line
// with its figures: ticks, overruns, tick lateness percentiles, tick
// durations, and its CPU time.
//
// Servers can form a cluster (rooms across nodes, package room's
// WithCluster): -nats-listen runs a NATS server in the process, -nats
// joins one, and a join that arrives at one server is sent to another's
// open room:
//
//	go run ./examples/arena/server -addr 127.0.0.1:7300 -node a -nats-listen 127.0.0.1:4222
//	go run ./examples/arena/server -addr 127.0.0.1:7301 -node b -nats nats://127.0.0.1:4222
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/examples/arena/arenaproto"
	"github.com/enetkit/enetkit/metrics"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
	"github.com/enetkit/enetkit/session/cluster"
	"github.com/enetkit/enetkit/session/room"
)

//go:embed spectator.html
var spectatorPage []byte

type config struct {
	addr, httpAddr, metricsAddr  string
	tickHz, peers                int
	window, liveness, spin, park time.Duration
	verbose, throttle            bool
	cpuProfile, tickLog, trace   string
	natsURL, natsListen, node    string
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:7300", "ENet `address` to listen on")
	flag.StringVar(&c.httpAddr, "http", "", "serve the spectator page on this `address`")
	flag.StringVar(&c.metricsAddr, "metrics", "", "serve Prometheus metrics on this `address`")
	flag.IntVar(&c.tickHz, "tick", 30, "tick rate, `Hz` (1..128)")
	flag.IntVar(&c.peers, "peers", 1024, "most players connected at once")
	flag.DurationVar(&c.window, "window", 10*time.Second, "reconnection window")
	flag.DurationVar(&c.liveness, "liveness", 1500*time.Millisecond, "a silent player is dropped after this")
	flag.DurationVar(&c.park, "park", 10*time.Millisecond, "longest wait of the host's loop on its socket (netloop.WithParkInterval)")
	flag.DurationVar(&c.spin, "spin", 50*time.Microsecond, "how long the host's loop may poll before it parks (netloop.WithSpin; 0 never polls)")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `file`")
	flag.StringVar(&c.trace, "trace", "", "write an execution trace of the run to `file` (go tool trace)")
	flag.StringVar(&c.natsURL, "nats", "", "join the cluster of the NATS server at this `url`")
	flag.StringVar(&c.natsListen, "nats-listen", "", "run a NATS server in the process, listening on this `address`, and join its cluster")
	flag.StringVar(&c.node, "node", "", "the node's `id` in the cluster (default: a random one)")
	flag.StringVar(&c.tickLog, "ticklog", "", "write every tick (room, deadline, lateness; CSV) to `file` at the end")
	flag.BoolVar(&c.verbose, "v", false, "log at debug level (default: warnings and errors only)")
	flag.BoolVar(&c.throttle, "throttle", false, "keep ENet's unreliable packet throttle (default: snapshots are never throttled)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if c.tickHz < room.MinTickRate || c.tickHz > room.MaxTickRate {
		return fmt.Errorf("-tick %d: want %d..%d", c.tickHz, room.MinTickRate, room.MaxTickRate)
	}
	logCfg := zap.NewProductionConfig()
	logCfg.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	if c.verbose {
		logCfg.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	}
	log, err := logCfg.Build()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	// Bots on one machine share an address: let each hold every slot.
	host, err := netloop.New(c.addr, netloop.WithPeers(c.peers), netloop.WithChannels(arenaproto.Channels),
		netloop.WithLogger(log), netloop.WithDrainTimeout(2*time.Second), netloop.WithSocketBuffers(4<<20, 4<<20),
		netloop.WithPerAddressLimit(c.peers), netloop.WithSpin(c.spin), netloop.WithParkInterval(c.park))
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	rm, err := metrics.NewRooms(metrics.WithRegisterer(reg))
	if err != nil {
		return err
	}
	rec := &recorder{Rooms: rm, logTicks: c.tickLog != "", roomIdx: make(map[string]int32)}
	hm, err := metrics.New(metrics.WithRegisterer(reg)) // the host's, the sessions' and the messages' figures
	if err != nil {
		return err
	}
	hm.AddHost("arena", host)
	mux, err := dispatch.NewMux(dispatch.WithObserver(hm), dispatch.WithLogger(log))
	if err != nil {
		return err
	}
	opts := []room.Option{room.WithLogger(log), room.WithObserver(rec),
		room.WithReconnectWindow(c.window), room.WithLiveness(c.liveness),
		room.WithSessionOptions(session.WithObserver(hm)), room.WithMux(mux)}
	if c.natsURL != "" || c.natsListen != "" {
		var copts []cluster.Option
		if c.natsURL != "" {
			copts = append(copts, cluster.WithURL(c.natsURL))
		}
		if c.natsListen != "" {
			copts = append(copts, cluster.WithServer(c.natsListen))
		}
		if c.node != "" {
			copts = append(copts, cluster.WithID(c.node))
		}
		opts = append(opts, room.WithCluster(copts...))
	}
	if !c.throttle {
		opts = append(opts, room.WithThrottle(netloop.Throttle{Steady: true}))
	}
	srv, err := room.New(host, opts...)
	if err != nil {
		return err
	}
	if err := srv.Register(arenaproto.Kind, func() room.Handler { return &game{tickHz: c.tickHz} }); err != nil {
		return err
	}
	room.HandleInput(srv, arenaproto.Move)

	g, gctx := errgroup.WithContext(ctx)
	if c.httpAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(spectatorPage)
		})
		mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) { state(w, r, srv) })
		if err := serveHTTP(gctx, g, c.httpAddr, mux); err != nil {
			return err
		}
		fmt.Printf("spectator page on http://%s/\n", c.httpAddr)
	}
	if c.metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		if err := serveHTTP(gctx, g, c.metricsAddr, mux); err != nil {
			return err
		}
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if c.trace != "" {
		f, err := os.Create(c.trace)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	start := time.Now()
	cpu0 := cpuTime()
	sched0 := readSched()
	fmt.Printf("listening on %s, %d Hz\n", host.Addr(), c.tickHz)
	g.Go(func() error { return srv.Run(gctx) })
	err = g.Wait()
	rep := rec.report(time.Since(start), cpuTime()-cpu0)
	sq := schedQuantiles(sched0, readSched(), .5, .99)
	rep.SchedP50us, rep.SchedP99us = float64(sq[0].Microseconds()), float64(sq[1].Microseconds())
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))
	if c.tickLog != "" {
		if werr := rec.writeTicks(c.tickLog); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// serveHTTP listens on addr now (so a bad address fails at start) and
// serves h in g until ctx is done.
func serveHTTP(ctx context.Context, g *errgroup.Group, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	g.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	})
	return nil
}

// roomView is one room on the spectator page.
type roomView struct {
	room.Info
	State arenaproto.SnapshotMsg `json:"state"`
}

// state answers the spectator page: every room's players, asked of each
// room's goroutine with a Signal.
func state(w http.ResponseWriter, r *http.Request, srv *room.Server) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	list := srv.List(arenaproto.Kind)
	views := make([]roomView, 0, len(list))
	for _, info := range list {
		v, err := srv.Signal(ctx, info.ID, nil)
		if err != nil {
			continue // closed meanwhile
		}
		s, _ := v.(arenaproto.SnapshotMsg)
		views = append(views, roomView{Info: info, State: s})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(views)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report is the server's last line.
type report struct {
	Seconds    float64 `json:"seconds"`
	CPUPercent float64 `json:"cpu_percent"` // of one core, over the run
	Ticks      uint64  `json:"ticks"`
	Overruns   uint64  `json:"overruns"`
	LateP50us  float64 `json:"tick_late_p50_us"`
	LateP99us  float64 `json:"tick_late_p99_us"`
	LateMaxus  float64 `json:"tick_late_max_us"`
	// How long the server's goroutines waited, runnable, for a thread
	// (the runtime's /sched/latencies histogram; bucket upper bounds).
	SchedP50us  float64 `json:"sched_latency_p50_us"`
	SchedP99us  float64 `json:"sched_latency_p99_us"`
	TickP50us   float64 `json:"tick_p50_us"`
	TickP99us   float64 `json:"tick_p99_us"`
	InputsPerTk float64 `json:"inputs_per_tick"`
	Joins       int64   `json:"joins"`
	Drops       int64   `json:"drops"`
	Returns     int64   `json:"returns"`
}

func (rec *recorder) report(wall, cpu time.Duration) report {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := report{Seconds: wall.Seconds(), CPUPercent: 100 * cpu.Seconds() / wall.Seconds(),
		Ticks: rec.ticks, Overruns: rec.overruns, Joins: rec.joins, Drops: rec.drops, Returns: rec.returns}
	if rec.ticks > 0 {
		r.InputsPerTk = float64(rec.inputs) / float64(rec.ticks)
	}
	q := func(xs []time.Duration, p float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		return float64(xs[min(len(xs)-1, int(p*float64(len(xs))))].Microseconds())
	}
	sort.Slice(rec.late, func(i, j int) bool { return rec.late[i] < rec.late[j] })
	sort.Slice(rec.dur, func(i, j int) bool { return rec.dur[i] < rec.dur[j] })
	r.LateP50us, r.LateP99us, r.LateMaxus = q(rec.late, .5), q(rec.late, .99), q(rec.late, 1)
	r.TickP50us, r.TickP99us = q(rec.dur, .5), q(rec.dur, .99)
	return r
}

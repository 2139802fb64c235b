// Command bot plays the arena example (examples/arena/server) with -n bots
// at once: each connects, identifies, joins an arena room (rooms of eight
// fill up one after the other), sends its direction -rate times a second
// and reads the room's snapshots, for -duration. Bots share ENet client
// hosts, -per-host bots each, so hundreds of them need no thread each.
//
//	go run ./examples/arena/bot -addr 127.0.0.1:7300 -n 800 -duration 30s
//
// -cut k cuts the connection of k bots at -cut-at: with -blackhole D those
// bots go through an in-process impairment proxy (integration/linkproxy)
// that drops everything for D; otherwise their connections are reset. They
// reconnect by themselves and must come back to their seats with their
// state (their score) within the server's reconnection window.
//
// Last, it prints one JSON line: bots, seconds measured, tick_hz,
// snapshots_per_s_min and _mean (per bot, over the measured window, after
// -warmup), bots_below_target (bots that got fewer than tick_hz-0.5
// snapshots a second), input-to-snapshot latency percentiles (from sending an input
// to the first snapshot that acknowledges it), disconnects, reconnects,
// and the cut bots' fate. It exits with status 1 if a bot failed to join.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/examples/arena/arenaproto"
	"github.com/enetkit/enetkit/integration/linkproxy"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session/room"
	"github.com/enetkit/enetkit/session/room/client"
)

type config struct {
	addr                          string
	n, perHost, cut               int
	rate                          float64
	duration, warmup, cutAt, hole time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:7300", "server `address`")
	flag.IntVar(&c.n, "n", 8, "number of bots")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long to play")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "not measured: the time after every bot joined")
	flag.Float64Var(&c.rate, "rate", 30, "inputs per second per bot")
	flag.IntVar(&c.perHost, "per-host", 100, "bots per ENet client host")
	flag.IntVar(&c.cut, "cut", 0, "cut the connection of this many bots")
	flag.DurationVar(&c.cutAt, "cut-at", 3*time.Second, "when to cut, after every bot joined")
	flag.DurationVar(&c.hole, "blackhole", 0, "cut by blackholing for this long behind a proxy (default: reset)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t0, cpu0 := time.Now(), cpuTime()
	res, err := run(ctx, c)
	if res != nil {
		res.CPUPercent = 100 * (cpuTime() - cpu0).Seconds() / time.Since(t0).Seconds()
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bot:", err)
		os.Exit(1)
	}
}

// bot is one player. Its counters are written by its client's goroutine
// (snapshots) and its host's sender (inputs).
type bot struct {
	c      *client.Client
	joined chan room.JoinedMsg // OnJoined's, the latest only
	id     atomic.Uint64
	seat   atomic.Int64
	tickHz atomic.Int64

	sentSeq [256]atomic.Uint32 // input seq, by seq%256
	sentAt  [256]atomic.Int64  // its send time, ns
	seq     uint32             // the sender's

	window              *window
	mu                  sync.Mutex // guards what follows, written by the client's goroutine
	snaps               int
	lastAck             uint32
	lat                 []time.Duration
	score               float64 // the bot's score in the latest snapshot
	scoreAtCut          float64
	cutAt, backAt       time.Time
	seatAtCut, seatBack int64
	keptState           bool
}

// window is the measured interval, set once every bot has joined.
type window struct{ from, to atomic.Int64 }

func (w *window) in(t time.Time) bool {
	f, e := w.from.Load(), w.to.Load()
	return f != 0 && t.UnixNano() >= f && t.UnixNano() < e
}

func (b *bot) snapshot(s arenaproto.SnapshotMsg) {
	now := time.Now()
	id := b.id.Load()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.window.in(now) {
		b.snaps++
	}
	for _, p := range s.Players {
		if p.ID != id {
			continue
		}
		b.score = p.Score
		if !b.cutAt.IsZero() && b.backAt.IsZero() && p.Connected {
			b.backAt, b.seatBack = now, int64(p.Seat)
			b.keptState = p.Score >= b.scoreAtCut
		}
		if p.Acked != b.lastAck {
			b.lastAck = p.Acked
			i := p.Acked % 256
			if b.sentSeq[i].Load() == p.Acked && len(b.lat) < 1<<16 {
				b.lat = append(b.lat, now.Sub(time.Unix(0, b.sentAt[i].Load())))
			}
		}
	}
}

type result struct {
	Bots          int     `json:"bots"`
	Joined        int     `json:"joined"`
	Seconds       float64 `json:"seconds"`
	CPUPercent    float64 `json:"cpu_percent"` // of one core, the bot process's, over its whole run
	TickHz        int64   `json:"tick_hz"`
	SnapsMin      float64 `json:"snapshots_per_s_min"`
	SnapsMean     float64 `json:"snapshots_per_s_mean"`
	BelowTarget   int     `json:"bots_below_target"` // bots with fewer than tick_hz-0.5 snapshots/s
	LatP50ms      float64 `json:"latency_ms_p50"`
	LatP99ms      float64 `json:"latency_ms_p99"`
	InputsSent    int64   `json:"inputs_sent"`
	Disconnects   int64   `json:"disconnects"`
	Reconnects    int64   `json:"reconnects"`
	Rejoined      int64   `json:"rejoined"`
	EventsDropped int64   `json:"events_dropped"`
	Cut           int     `json:"cut"`
	CutBack       int     `json:"cut_back_same_seat"`
	CutKeptState  int     `json:"cut_kept_state"`
	CutBackMsMax  float64 `json:"cut_back_ms_max"`
	CutBlackholed bool    `json:"cut_blackholed,omitempty"`
}

func run(sig context.Context, c config) (*result, error) {
	if c.n < 1 || c.perHost < 1 || c.rate <= 0 || c.duration <= 0 || c.cut < 0 || c.cut > c.n {
		return nil, errors.New("bad flags: -n, -per-host, -rate, -duration must be positive, -cut within 0..n")
	}
	ctx, cancel := context.WithCancel(sig)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	target := c.addr
	var proxy *linkproxy.Proxy
	if c.cut > 0 && c.hole > 0 {
		var err error
		if proxy, err = linkproxy.New("127.0.0.1:0", c.addr, linkproxy.Config{Seed: 1}); err != nil {
			return nil, err
		}
		g.Go(func() error { return proxy.Run(gctx) })
	}
	w := &window{}
	var hosts []*client.Host
	bots := make([]*bot, c.n)
	for i := range bots {
		if i%c.perHost == 0 {
			// A large receive buffer rides out the stalls of a busy
			// machine: a hundred bots get about 700 KB of snapshots a second.
			h, err := client.NewHost(arenaproto.Channels, netloop.WithPeers(c.perHost+c.perHost/4),
				netloop.WithDrainTimeout(time.Second), netloop.WithSocketBuffers(4<<20, 1<<20))
			if err != nil {
				return nil, err
			}
			hosts = append(hosts, h)
		}
		b := &bot{window: w, joined: make(chan room.JoinedMsg, 1)}
		addr := target
		if proxy != nil && i < c.cut {
			addr = proxy.Addr().String()
		}
		cl, err := hosts[len(hosts)-1].Client(addr, client.WithName(fmt.Sprintf("bot-%d", i)),
			client.OnJoined(func(j room.JoinedMsg) {
				b.seat.Store(int64(j.Seat))
				b.tickHz.Store(int64(j.TickHz))
				select {
				case <-b.joined: // replace an unread one
				default:
				}
				b.joined <- j
			}))
		if err != nil {
			return nil, err
		}
		client.Handle(cl, arenaproto.Snapshot, b.snapshot)
		client.Handle(cl, arenaproto.Tagged, func(arenaproto.TaggedMsg) {})
		b.c = cl
		bots[i] = b
	}
	// Hosts run until the clients are done, so that they disconnect cleanly.
	hctx, stopHosts := context.WithCancel(context.Background())
	defer stopHosts()
	var hg errgroup.Group
	for _, h := range hosts {
		hg.Go(func() error { return h.Run(hctx) })
	}
	var joined atomic.Int64
	for _, b := range bots {
		g.Go(func() error { return b.c.Run(gctx) })
		g.Go(func() error {
			jctx, cancel := context.WithTimeout(gctx, 20*time.Second)
			defer cancel()
			j, err := join(jctx, b)
			if err != nil {
				return fmt.Errorf("join: %w", err)
			}
			b.id.Store(b.c.Player())
			b.seat.Store(int64(j.Seat))
			joined.Add(1)
			return nil
		})
	}
	var inputs atomic.Int64
	allJoined := make(chan struct{})
	g.Go(func() error { // the scenario's clock
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for joined.Load() < int64(c.n) {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
		}
		close(allJoined)
		start := time.Now()
		w.from.Store(start.Add(c.warmup).UnixNano())
		w.to.Store(start.Add(c.warmup + c.duration).UnixNano())
		if c.cut > 0 {
			if err := sleep(gctx, c.cutAt); err != nil {
				return nil
			}
			cutBots(gctx, c, bots[:c.cut], proxy)
		}
		if err := sleep(gctx, time.Until(time.Unix(0, w.to.Load()))); err != nil {
			return nil
		}
		cancel() // done: stop every client
		return nil
	})
	for hi := range hosts { // one input sender per host
		mine := bots[hi*c.perHost : min(len(bots), (hi+1)*c.perHost)]
		g.Go(func() error {
			select {
			case <-allJoined:
			case <-gctx.Done():
				return nil
			}
			return sendInputs(gctx, c.rate, mine, &inputs)
		})
	}
	err := g.Wait()
	stopHosts()
	if herr := hg.Wait(); err == nil {
		err = herr
	}
	if joined.Load() < int64(c.n) && err == nil {
		err = fmt.Errorf("%d of %d bots joined", joined.Load(), c.n)
	}
	return summarize(c, bots, w, int(joined.Load()), inputs.Load(), proxy != nil), err
}

// join joins an arena room. A connection lost during the join is made
// again by the client, and the join is asked again; if the server had
// seated the player already, it says so, and the reconnection's Joined
// message (OnJoined) brings the seat.
func join(ctx context.Context, b *bot) (room.JoinedMsg, error) {
	for {
		j, err := b.c.Join(ctx, room.JoinMsg{Kind: arenaproto.Kind})
		switch {
		case errors.Is(err, client.ErrNotConnected):
			continue // Join waits for the next connection
		case errors.Is(err, client.ErrRefused) && strings.Contains(err.Error(), "already in a room"):
			select {
			case j := <-b.joined:
				return j, nil
			case <-ctx.Done():
				return j, ctx.Err()
			}
		}
		return j, err
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// cutBots cuts the bots' connections: a blackhole for c.hole, or a reset.
func cutBots(ctx context.Context, c config, bots []*bot, proxy *linkproxy.Proxy) {
	now := time.Now()
	for _, b := range bots {
		b.mu.Lock()
		b.cutAt, b.scoreAtCut, b.seatAtCut = now, b.score, b.seat.Load()
		b.mu.Unlock()
	}
	if proxy != nil {
		proxy.Blackhole(true)
		_ = sleep(ctx, c.hole)
		proxy.Blackhole(false)
		return
	}
	for _, b := range bots {
		_ = b.c.Drop(ctx)
	}
}

// sendInputs sends every bot's direction rate times a second: a random
// walk, changing direction now and then.
func sendInputs(ctx context.Context, rate float64, bots []*bot, n *atomic.Int64) error {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	dirs := make([][2]float64, len(bots))
	period := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	for {
		next = next.Add(period)
		if err := sleep(ctx, time.Until(next)); err != nil {
			return nil
		}
		for i, b := range bots {
			if rng.IntN(15) == 0 || dirs[i] == [2]float64{} {
				a := rng.Float64() * 2 * math.Pi
				dirs[i] = [2]float64{math.Cos(a), math.Sin(a)}
			}
			b.seq++
			j := b.seq % 256
			b.sentSeq[j].Store(b.seq)
			b.sentAt[j].Store(time.Now().UnixNano())
			err := arenaproto.Move.Send(ctx, b.c, arenaproto.MoveMsg{Seq: b.seq, DX: dirs[i][0], DY: dirs[i][1]})
			if err == nil {
				n.Add(1)
			} else if ctx.Err() != nil {
				return nil
			}
		}
	}
}

func summarize(c config, bots []*bot, w *window, joined int, inputs int64, holed bool) *result {
	r := &result{Bots: c.n, Joined: joined, InputsSent: inputs, Cut: c.cut, CutBlackholed: holed, SnapsMin: math.Inf(1)}
	secs := float64(w.to.Load()-w.from.Load()) / 1e9
	if w.from.Load() == 0 {
		secs = 0
	}
	r.Seconds = secs
	var lat []time.Duration
	var sum float64
	for _, b := range bots {
		r.TickHz = max(r.TickHz, b.tickHz.Load())
	}
	target := float64(r.TickHz) - 0.5 // a snapshot every tick, at most one lost in two seconds
	for i, b := range bots {
		b.mu.Lock()
		rate := 0.0
		if secs > 0 {
			rate = float64(b.snaps) / secs
		}
		sum += rate
		r.SnapsMin = math.Min(r.SnapsMin, rate)
		if rate < target {
			r.BelowTarget++
		}
		lat = append(lat, b.lat...)
		if i < c.cut && !b.backAt.IsZero() {
			if b.seatBack == b.seatAtCut {
				r.CutBack++
			}
			if b.keptState {
				r.CutKeptState++
			}
			r.CutBackMsMax = math.Max(r.CutBackMsMax, float64(b.backAt.Sub(b.cutAt).Milliseconds()))
		}
		b.mu.Unlock()
		st := b.c.Stats()
		r.Disconnects += st.Disconnects
		r.Reconnects += st.Resumed
		r.Rejoined += st.Rejoined
		r.EventsDropped += st.EventsDropped
	}
	r.SnapsMean = sum / float64(len(bots))
	if math.IsInf(r.SnapsMin, 1) {
		r.SnapsMin = 0
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		r.LatP50ms = float64(lat[len(lat)/2].Microseconds()) / 1000
		r.LatP99ms = float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()) / 1000
	}
	return r
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

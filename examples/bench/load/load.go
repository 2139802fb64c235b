// Package load is a load generator for any ENet 1.3 echo server: a server
// that sends every packet it receives back to its sender, on the same
// channel, with the same flags. Servers that also implement the broadcast
// protocol (see BroadcastRequest) can be measured in Broadcast mode.
//
// # Usage
//
//	enet.Initialize() // once per process, from main
//	defer enet.Deinitialize()
//	res, err := load.Run(ctx, load.Config{
//		Addr: "127.0.0.1:6789", Mode: load.Throughput,
//		Clients: 64, Hosts: 4, Window: 8, Duration: 5 * time.Second,
//	})
//
// # Design
//
// The clients (ENet peers) are spread round-robin over Config.Hosts client
// hosts. Each host is created, serviced and destroyed by exactly one
// goroutine, so several hosts use several cores.
//
// Two engines drive the hosts. EngineC (cworker.c), the default for
// PingPong and reliable Throughput, runs each host's whole measured window
// in one cgo call: it handles every event of a service call in one pass,
// with no Go allocation and no cgo call per message, and, unpaced, sends
// its acknowledgements with its next messages (see
// Config.ImmediateAcks). It costs the generator less CPU per message than
// EngineGo, which drives the hosts through go-enet, one Service call per
// event, and runs every mode. Result.LoadCPUPerMillion reports what the
// generator cost, to set beside the server's.
//
// Both engines service the hosts with
// Service(1): ENet first sends everything queued, then blocks in poll(2)
// until a datagram arrives or 1 ms passes, so an echo is handled as soon as
// it arrives and an idle or window-bound generator does not spin a core the
// server under test needs. Paced sends are checked whenever Service returns,
// at least every millisecond: at low rates a send may start up to 1 ms late
// (its timestamp is taken when it is queued, so RTTs stay exact), at high
// rates the echoes keep the loop turning.
//
// Every message carries its send time (monotonic nanoseconds: since the
// start of Run with EngineGo, CLOCK_MONOTONIC with EngineC; little endian)
// in bytes 0..8 and a per-client sequence number in bytes 8..16. Round-trip times of echoes received during the measured window
// (after Warmup, for Duration) are kept exactly and sorted for percentiles.
package load

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Mode selects the traffic pattern of a run.
type Mode string

const (
	// PingPong runs one client with one message in flight: pure latency.
	PingPong Mode = "pingpong"
	// Throughput runs Clients clients with Window messages in flight each,
	// optionally paced to a total Rate.
	Throughput Mode = "throughput"
	// Broadcast has client 0 send a BroadcastRequest and measures the
	// one-way latency (server wall clock to client wall clock, so server and
	// generator must share a clock, e.g. run on one machine) of every
	// broadcast packet each client receives.
	Broadcast Mode = "broadcast"
)

// Defaults applied by Run to zero fields of Config.
const (
	DefaultMode           = Throughput      // Config.Mode
	DefaultSize           = 64              // Config.Size, bytes
	DefaultDuration       = 5 * time.Second // Config.Duration
	DefaultConnectTimeout = 5 * time.Second // Config.ConnectTimeout
	DefaultBroadcastRate  = 100             // Config.Rate in Broadcast mode, Hz
)

// MinSize is the smallest Config.Size in PingPong and Throughput modes:
// an 8-byte timestamp and an 8-byte sequence number.
const MinSize = 16

const (
	maxPeersPerHost = 4095 // ENET_PROTOCOL_MAXIMUM_PEER_ID
	maxChannel      = 254  // ENet allows 255 channels
	userHZ          = 100  // Linux USER_HZ, the tick of /proc/<pid>/stat

	drainTimeout = time.Second          // wait this long for disconnect acknowledgements
	lossTimeout  = time.Second          // unreliable: in-flight messages older than this are lost
	minLag       = 5 * time.Millisecond // paced: smallest backlog kept (Service(1) may wake 1-2 ms late)

	defaultPrealloc = 1 << 16 // latency samples preallocated per host, unpaced
	maxPrealloc     = 1 << 22 // cap for paced runs (32 MiB per host)
)

// Errors returned (wrapped) by Run. Check them with errors.Is.
var (
	ErrBadAddress         = errors.New("load: bad address")         // Addr is not a usable IPv4 host:port
	ErrBadConfig          = errors.New("load: bad config")          // a Config field is out of range
	ErrConnectTimeout     = errors.New("load: connect timeout")     // a client did not connect in time
	ErrServerDisconnected = errors.New("load: server disconnected") // the server dropped a connected client
)

// Config describes a run. The zero value of every field but Addr is usable.
type Config struct {
	// Addr is the server's IPv4 "host:port".
	Addr string
	// Mode defaults to Throughput.
	Mode Mode
	// Clients is the number of ENet peers (default 1). PingPong uses 1.
	Clients int
	// Hosts is the number of client hosts, each serviced by its own
	// goroutine (default 1, at most Clients). PingPong uses 1.
	Hosts int
	// Window is the number of messages in flight per client (default 1).
	// PingPong uses 1; Broadcast ignores it.
	Window int
	// Size is the message size in bytes (default DefaultSize; at least
	// MinSize, or BroadcastStampSize in Broadcast mode).
	Size int
	// Rate is the total offered load in messages per second; 0 sends as fast
	// as the window allows. Sends are paced evenly; Window still caps the
	// messages in flight. In Broadcast mode Rate is the server's broadcast
	// rate in Hz (default DefaultBroadcastRate), so each client receives Rate
	// messages per second.
	Rate float64
	// Duration is the measured window (default DefaultDuration).
	Duration time.Duration
	// Warmup runs the load before the measured window, unmeasured (default 0).
	Warmup time.Duration
	// ConnectTimeout bounds the connection of all clients
	// (default DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// Channel is the ENet channel of the messages (default 0, at most 254).
	// Clients ask for Channel+1 channels; a server that accepts fewer gets
	// no messages. Broadcast mode always uses BroadcastChannel.
	Channel uint8
	// Unreliable sends unreliable (sequenced) messages instead of reliable
	// ones. Broadcast mode is always reliable. Lost unreliable messages are
	// counted in Result.Lost and free their window slot.
	Unreliable bool
	// ServerPID, if positive, is the process whose CPU time (user+system,
	// from /proc/<pid>/stat) is measured over the measured window.
	ServerPID int
	// Poll makes the client hosts busy-poll Service(0) instead of blocking
	// in Service(1), to take the generator's own wake-ups out of the RTT
	// (for ping-pong; each host then keeps a core busy).
	Poll bool
	// Engine drives the client hosts: EngineC (the default where it
	// applies: PingPong and reliable Throughput) or EngineGo.
	Engine Engine
	// ImmediateAcks makes the C engine acknowledge what it reads in
	// datagrams of their own, as ENet does by itself (and EngineGo always
	// does). By default, when unpaced (Rate 0), it holds them back until it
	// next sends, which it does at once, since every echo frees a window
	// slot of its client: they share the datagrams of its next messages,
	// one datagram per message instead of two, for the generator and for
	// the server that reads them. Paced, a client's next send may be far
	// off, and acknowledgements held that long would slow the server's
	// reliable stream: they always go at once.
	ImmediateAcks bool
}

// Result is the outcome of a run. Latencies are round-trip times, or
// one-way latencies in Broadcast mode.
type Result struct {
	Mode     Mode          // the mode run
	Clients  int           // the clients connected
	Messages int64         // echoes (or broadcast packets) received in the measured window
	Duration time.Duration // the measured window
	// MsgsPerSec is Messages per second of Duration.
	MsgsPerSec float64
	// P50, P99 and P999 are exact (nearest-rank) latency percentiles of the
	// Messages; Max is the largest latency.
	P50, P99, P999, Max time.Duration
	// ServerCPU is the server's user+system CPU time over the measured
	// window (10 ms resolution), when Config.ServerPID > 0.
	ServerCPU time.Duration
	// CPUPerMillion is seconds of ServerCPU per million Messages.
	CPUPerMillion float64
	// LoadCPU is the load generator's own process CPU time (user+system)
	// over the measured window, and LoadCPUPerMillion its seconds per
	// million Messages: it should be well below the server's, or the
	// generator, not the server, sets the pace on a shared machine.
	LoadCPU           time.Duration
	LoadCPUPerMillion float64
	// Engine is the engine that ran.
	Engine Engine
	// Errors counts protocol violations: wrong size or channel, unknown or
	// repeated sequence numbers, gaps in reliable mode, negative latencies.
	Errors int64
	// Lost counts unreliable messages that were never echoed.
	Lost int64
}

// Run connects the clients, runs the load for Warmup+Duration and
// disconnects them. It returns early with an error if ctx is done, the
// address is bad, the clients do not all connect within ConnectTimeout, or
// the server disconnects a client. enet.Initialize must have been called.
// Run is safe for concurrent use, each call with its own hosts.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, err
	}
	ap, err := ResolveAddr(ctx, cfg.Addr)
	if err != nil {
		return Result{}, err
	}
	if ap.Addr().IsUnspecified() || ap.Port() == 0 {
		return Result{}, fmt.Errorf("%w: %q: need a host and a non-zero port", ErrBadAddress, cfg.Addr)
	}
	if cfg.ServerPID > 0 {
		if _, err := processCPU(cfg.ServerPID); err != nil {
			return Result{}, err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &run{
		cfg:   cfg,
		wait:  1,
		epoch: time.Now(),
		ready: make(chan struct{}, cfg.Hosts), // one per worker: never blocks
		start: make(chan struct{}),
	}
	if cfg.Poll {
		r.wait = 0
	}
	workers := make([]*worker, cfg.Hosts)
	g, gctx := errgroup.WithContext(ctx)
	for i := range workers {
		w := newWorker(r, i, ap)
		workers[i] = w
		g.Go(func() error { return w.run(gctx) })
	}
	cpu, self, cerr := r.coordinate(gctx)
	if cerr != nil {
		cancel()
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}
	if cerr != nil {
		return Result{}, cerr
	}
	return r.result(workers, cpu, self), nil
}

// run is the state shared by the workers of one Run.
type run struct {
	cfg   Config
	wait  uint32        // Service timeout of the client hosts: 1ms, or 0 with Poll
	epoch time.Time     // origin of all timestamps
	ready chan struct{} // workers -> coordinator: all my clients are connected
	start chan struct{} // closed by the coordinator once from and to are set
	from  time.Duration // measured window, since epoch; written before start is closed
	to    time.Duration
}

// now is the time since r.epoch, from the monotonic clock.
func (r *run) now() time.Duration { return time.Since(r.epoch) }

// coordinate starts the load once every worker is connected and measures the
// server's CPU time and its own over the measured window.
func (r *run) coordinate(ctx context.Context) (server, self time.Duration, err error) {
	for range r.cfg.Hosts {
		select {
		case <-r.ready:
		case <-ctx.Done():
			return 0, 0, nil // a worker failed or ctx is done: g.Wait reports why
		}
	}
	t0 := r.now()
	r.from = t0 + r.cfg.Warmup
	r.to = r.from + r.cfg.Duration
	close(r.start)
	var cpu, own [2]time.Duration
	for i, at := range []time.Duration{r.from, r.to} {
		t := time.NewTimer(at - r.now())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, 0, nil
		}
		if own[i], err = processCPU(os.Getpid()); err != nil {
			return 0, 0, err
		}
		if r.cfg.ServerPID > 0 {
			if cpu[i], err = processCPU(r.cfg.ServerPID); err != nil {
				return 0, 0, err
			}
		}
	}
	return cpu[1] - cpu[0], own[1] - own[0], nil
}

// result merges the workers' counters and samples.
func (r *run) result(workers []*worker, cpu, self time.Duration) Result {
	res := Result{Mode: r.cfg.Mode, Clients: r.cfg.Clients, Duration: r.cfg.Duration, ServerCPU: cpu, LoadCPU: self, Engine: r.cfg.Engine}
	n := 0
	for _, w := range workers {
		n += len(w.samples)
	}
	all := make([]time.Duration, 0, n)
	for _, w := range workers {
		res.Messages += w.messages
		res.Errors += w.errors
		res.Lost += w.lost
		all = append(all, w.samples...)
	}
	slices.Sort(all)
	res.P50 = percentile(all, 0.50)
	res.P99 = percentile(all, 0.99)
	res.P999 = percentile(all, 0.999)
	if len(all) > 0 {
		res.Max = all[len(all)-1]
	}
	res.MsgsPerSec = float64(res.Messages) / res.Duration.Seconds()
	if res.Messages > 0 {
		res.CPUPerMillion = cpu.Seconds() * 1e6 / float64(res.Messages)
		res.LoadCPUPerMillion = self.Seconds() * 1e6 / float64(res.Messages)
	}
	return res
}

// percentile returns the nearest-rank p-quantile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// withDefaults validates c and fills in its zero fields.
func (c Config) withDefaults() (Config, error) {
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	minSize := MinSize
	switch c.Mode {
	case PingPong:
		c.Clients, c.Hosts, c.Window = 1, 1, 1
	case Throughput:
	case Broadcast:
		c.Window, c.Channel, c.Unreliable, minSize = 0, BroadcastChannel, false, BroadcastStampSize
		if c.Rate == 0 {
			c.Rate = DefaultBroadcastRate
		}
	default:
		return c, fmt.Errorf("%w: unknown mode %q", ErrBadConfig, c.Mode)
	}
	switch c.Engine {
	case "":
		c.Engine = EngineGo
		if c.supportsC() {
			c.Engine = EngineC
		}
	case EngineC:
		if !c.supportsC() {
			return c, fmt.Errorf("%w: the C engine does not run %s mode or unreliable messages", ErrBadConfig, c.Mode)
		}
	case EngineGo:
	default:
		return c, fmt.Errorf("%w: unknown engine %q", ErrBadConfig, c.Engine)
	}
	c.Clients = max(c.Clients, 1)
	c.Hosts = min(max(c.Hosts, 1), c.Clients)
	c.Window = max(c.Window, 1)
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	switch {
	case c.Clients > c.Hosts*maxPeersPerHost:
		return c, fmt.Errorf("%w: %d clients need at least %d hosts", ErrBadConfig, c.Clients, (c.Clients+maxPeersPerHost-1)/maxPeersPerHost)
	case c.Size < minSize || c.Size > MaxBroadcastSize:
		return c, fmt.Errorf("%w: size %d out of range %d..%d", ErrBadConfig, c.Size, minSize, MaxBroadcastSize)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return c, fmt.Errorf("%w: rate %v", ErrBadConfig, c.Rate)
	case c.Duration < 0 || c.Warmup < 0 || c.ConnectTimeout < 0:
		return c, fmt.Errorf("%w: negative duration", ErrBadConfig)
	case c.Channel > maxChannel:
		return c, fmt.Errorf("%w: channel %d > %d", ErrBadConfig, c.Channel, maxChannel)
	}
	if c.Mode == Broadcast {
		if err := c.broadcastRequest().Validate(); err != nil {
			return c, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
	}
	return c, nil
}

// broadcastRequest is the request that client 0 sends in Broadcast mode:
// long enough to cover the warmup and the measured window.
func (c Config) broadcastRequest() BroadcastRequest {
	d := (c.Warmup + c.Duration + time.Millisecond - 1).Truncate(time.Millisecond)
	return BroadcastRequest{Rate: int(math.Round(c.Rate)), Size: c.Size, Duration: d}
}

// ResolveAddr parses an IPv4 "host:port" for ENet, resolving host names in
// Go (ENet's own resolver turns a bad name into 0.0.0.0). An empty host
// gives 0.0.0.0 (any); a missing or out-of-range port is an error. Errors
// wrap ErrBadAddress.
func ResolveAddr(ctx context.Context, addr string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrBadAddress, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %q: bad port", ErrBadAddress, addr)
	}
	if host == "" {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(p)), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, lerr := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		if lerr != nil || len(ips) == 0 {
			return netip.AddrPort{}, fmt.Errorf("%w: %q: %v", ErrBadAddress, addr, lerr)
		}
		ip = ips[0]
	}
	ip = ip.Unmap()
	if !ip.Is4() {
		return netip.AddrPort{}, fmt.Errorf("%w: %q: ENet supports IPv4 only", ErrBadAddress, addr)
	}
	return netip.AddrPortFrom(ip, uint16(p)), nil
}

// processCPU returns the user+system CPU time of process pid so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("load: server cpu: %w", err)
	}
	// Fields after the ")" that closes the command name start at field 3.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("load: server cpu: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("load: server cpu: %w", err)
	}
	return time.Duration(utime+stime) * (time.Second / userHZ), nil
}

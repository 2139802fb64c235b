package linkproxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by New, SetLink and Run.
var (
	ErrInvalidConfig = errors.New("linkproxy: invalid config")
	ErrRunning       = errors.New("linkproxy: Run called twice")
)

// Direction names one way through the proxy.
type Direction int

const (
	// Upstream is client to target.
	Upstream Direction = iota
	// Downstream is target to client.
	Downstream
)

// String returns "up" or "down".
func (d Direction) String() string {
	switch d {
	case Upstream:
		return "up"
	case Downstream:
		return "down"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// Link describes the impairment of one direction. The zero Link forwards
// everything at once. Probabilities are in [0, 1]; durations are not
// negative. See the package documentation for the model.
type Link struct {
	Loss         float64       // independent drop probability
	BurstEnter   float64       // per datagram: good to bad state (bad drops all)
	BurstExit    float64       // per datagram: bad to good state
	Delay        time.Duration // one-way delay
	Jitter       time.Duration // uniform in [-Jitter, +Jitter], added to Delay
	Duplicate    float64       // probability a second copy is sent
	Reorder      float64       // probability of an extra ReorderDelay
	ReorderDelay time.Duration // extra delay of a reordered datagram; zero means 10ms
}

const defaultReorderDelay = 10 * time.Millisecond

// Config configures a Proxy.
type Config struct {
	Up   Link // client to target
	Down Link // target to client

	// Seed seeds the pseudo-random streams (one per direction). Every
	// value, zero included, is a fixed seed.
	Seed int64

	// MaxDatagram is the largest datagram relayed; longer ones are dropped
	// and counted as Overflow. Zero means 65535.
	MaxDatagram int

	// MaxQueue bounds the datagrams waiting in each direction's delay
	// queue; beyond it they are dropped and counted as Overflow. Zero
	// means 4096.
	MaxQueue int
}

// DirStats counts the datagrams of one direction.
type DirStats struct {
	Received   uint64 // read from the sender
	Forwarded  uint64 // copies handed to the socket (duplicates; failed writes too)
	Lost       uint64 // dropped by independent loss
	BurstLost  uint64 // dropped in the bad state of the burst model
	Blackholed uint64 // dropped, or copies dropped when due, while blackholed
	Overflow   uint64 // dropped: queue full or longer than MaxDatagram
	Duplicated uint64 // given a second copy
	Reordered  uint64 // given an extra ReorderDelay
	Errors     uint64 // socket errors: copies not written, clients without a session
}

// Stats counts the datagrams of both directions.
type Stats struct {
	Up   DirStats // client to target
	Down DirStats // target to client
}

// A Proxy relays UDP datagrams between clients and a target through an
// impaired link. Its methods are safe for concurrent use.
type Proxy struct {
	conn        *net.UDPConn // the listening socket, clients send here
	target      *net.UDPAddr
	maxDatagram int
	up, down    *pipe
	blackhole   atomic.Bool
	started     atomic.Bool
}

// New validates cfg, resolves target and binds the listen address (for
// example "127.0.0.1:0"). It starts nothing: call Run, which also releases
// the socket (Run with a cancelled context only releases it).
func New(listen, target string, cfg Config) (*Proxy, error) {
	if err := validate(Upstream, cfg.Up); err != nil {
		return nil, err
	}
	if err := validate(Downstream, cfg.Down); err != nil {
		return nil, err
	}
	if cfg.MaxDatagram < 0 || cfg.MaxDatagram > 65535 {
		return nil, fmt.Errorf("%w: MaxDatagram = %d, want 0..65535", ErrInvalidConfig, cfg.MaxDatagram)
	}
	if cfg.MaxQueue < 0 {
		return nil, fmt.Errorf("%w: MaxQueue = %d, want >= 0", ErrInvalidConfig, cfg.MaxQueue)
	}
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, fmt.Errorf("linkproxy: target %q: %w", target, err)
	}
	if taddr.Port == 0 {
		return nil, fmt.Errorf("%w: target %q has no port", ErrInvalidConfig, target)
	}
	laddr, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return nil, fmt.Errorf("linkproxy: listen %q: %w", listen, err)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("linkproxy: listen %q: %w", listen, err)
	}
	cfg.MaxDatagram = cmp.Or(cfg.MaxDatagram, 65535)
	cfg.MaxQueue = cmp.Or(cfg.MaxQueue, 4096)
	p := &Proxy{conn: conn, target: taddr, maxDatagram: cfg.MaxDatagram}
	p.up = newPipe(Upstream, cfg.Up, cfg, &p.blackhole)
	p.down = newPipe(Downstream, cfg.Down, cfg, &p.blackhole)
	return p, nil
}

func validate(d Direction, l Link) error {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"Loss", l.Loss}, {"BurstEnter", l.BurstEnter}, {"BurstExit", l.BurstExit},
		{"Duplicate", l.Duplicate}, {"Reorder", l.Reorder},
	} {
		if !(f.v >= 0 && f.v <= 1) { // also rejects NaN
			return fmt.Errorf("%w: %s.%s = %v, want a probability in [0, 1]", ErrInvalidConfig, d, f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"Delay", l.Delay}, {"Jitter", l.Jitter}, {"ReorderDelay", l.ReorderDelay},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: %s.%s = %v, want >= 0", ErrInvalidConfig, d, f.name, f.v)
		}
	}
	return nil
}

// Addr returns the address clients should send to.
func (p *Proxy) Addr() *net.UDPAddr { return p.conn.LocalAddr().(*net.UDPAddr) }

// SetLink replaces the impairment of direction d, from the next datagram
// read on. Datagrams already delayed keep their schedule.
func (p *Proxy) SetLink(d Direction, l Link) error {
	if d != Upstream && d != Downstream {
		return fmt.Errorf("%w: unknown %v", ErrInvalidConfig, d)
	}
	if err := validate(d, l); err != nil {
		return err
	}
	p.pipe(d).link.Store(&l)
	return nil
}

// Blackhole drops every datagram in both directions while on, including
// those already delayed, as if the link had gone away. Turning it off
// resumes relaying; sessions are kept.
func (p *Proxy) Blackhole(on bool) { p.blackhole.Store(on) }

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	return Stats{Up: p.up.stats.snapshot(), Down: p.down.stats.snapshot()}
}

func (p *Proxy) pipe(d Direction) *pipe {
	if d == Upstream {
		return p.up
	}
	return p.down
}

// Run relays until ctx is cancelled, then closes all sockets, waits for its
// goroutines and returns nil. Datagrams still delayed are discarded. Run
// may be called once; later calls return ErrRunning.
func (p *Proxy) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.up.run(ctx) })
	wg.Go(func() { p.down.run(ctx) })
	wg.Go(func() { p.readClients(ctx, &wg) })
	<-ctx.Done()
	p.conn.Close() // ends readClients, which closes the upstream sockets
	wg.Wait()
	return nil
}

// readClients reads from clients and hands datagrams to the upstream pipe.
// It owns the sessions: one upstream socket, and one goroutine reading it,
// per client address.
func (p *Proxy) readClients(ctx context.Context, wg *sync.WaitGroup) {
	sessions := make(map[netip.AddrPort]*net.UDPConn)
	defer func() {
		for _, c := range sessions {
			c.Close()
		}
	}()
	buf := make([]byte, p.maxDatagram+1) // one spare byte detects longer datagrams
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // e.g. an ICMP error reported on the socket
		}
		at := time.Now()
		up, ok := sessions[from]
		if !ok {
			if up, err = net.DialUDP("udp", nil, p.target); err != nil {
				p.up.stats.received.Add(1)
				p.up.stats.errors.Add(1)
				continue
			}
			sessions[from] = up
			wg.Go(func() { p.readTarget(ctx, up, from) })
		}
		p.up.offer(ctx, datagram{data: buf[:n], at: at, conn: up})
	}
}

// readTarget reads the target's replies on up and hands them to the
// downstream pipe, addressed to client.
func (p *Proxy) readTarget(ctx context.Context, up *net.UDPConn, client netip.AddrPort) {
	buf := make([]byte, p.maxDatagram+1)
	for {
		n, err := up.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // ECONNREFUSED while the target is not listening
		}
		p.down.offer(ctx, datagram{data: buf[:n], at: time.Now(), conn: p.conn, to: client})
	}
}

package netloop

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sync"
)

// ErrNoReusePort: the platform cannot share one UDP port between the hosts
// of a group (Linux's SO_REUSEPORT load balancing is missing). NewGroupPorts
// gives each host a port of its own instead.
var ErrNoReusePort = errors.New("netloop: no SO_REUSEPORT load balancing on this platform")

// MaxGroupHosts is the largest number of hosts in a Group.
const MaxGroupHosts = 256

// Group is a set of hosts of one process, each with its own loop, serving
// one address: with NewGroup, N hosts share one UDP port; with
// NewGroupPorts, each has a port of its own. It carries N times the peers
// of one host (up to N x MaxPeers) on up to N cores.
//
// # One port
//
// On one port, the kernel (Linux SO_REUSEPORT) picks the host socket for
// each datagram by a hash of its source and destination addresses, so all
// datagrams of one client address go to one host, which alone knows the
// connection. The hash is taken modulo the number of sockets on the port:
// the set of hosts must not change while clients are connected, since a
// socket more or less moves most clients to a host that has never heard of
// them (their datagrams are dropped as from an unknown peer and the
// connections time out). That is why a group's hosts are created together
// and run together, and why the group keeps every socket on the port until
// all its hosts have shut down: a host that has finished draining does not
// move the clients of one still draining. The group's hosts use the first
// one's port; no other socket may hold it when NewGroup is called. A
// second process of the same user could still join the port with
// SO_REUSEPORT and take a share of new clients: do not run two on one port.
//
// Each host's wake-up datagrams (see Host) are steered to its own socket by
// a small classic BPF program attached to the port (SO_ATTACH_REUSEPORT_CBPF);
// every other datagram goes by the kernel's hash.
//
// # Consuming events
//
// Each host has its own Events channel, with the guarantees of Host.Events;
// a peer belongs to one host for the whole connection (Peer.Host), so
// per-peer order is that host's order. Run one consumer per host: the
// hosts' loops and consumers then share nothing on the message path, and N
// of them use N cores. A merged channel would keep per-peer order too, but
// it would funnel every event through one more goroutine hop and one
// consumer, the very bottleneck a group removes. session.NewForHosts runs
// sessions over a group this way.
type Group struct {
	hosts []*Host
	holds []int // one port: a duplicate of each host's socket, closed when every host has stopped

	mu     sync.Mutex // guards state and cancel
	state  lifecycle
	cancel context.CancelFunc
	done   chan struct{} // closed when the group has stopped
}

// NewGroup creates n hosts (1..MaxGroupHosts) that share addr's UDP port,
// each with the options opts. addr is as for New, but not "" (a group
// serves a known address); with port 0 ("127.0.0.1:0", "*:*") the kernel
// picks a free port, which Addr returns. It returns ErrNoReusePort where
// the platform cannot share a port. NewGroup starts nothing: call Run to
// run every host, or Close to release them.
func NewGroup(addr string, n int, opts ...Option) (*Group, error) {
	if err := checkGroup(addr, n); err != nil {
		return nil, err
	}
	g := &Group{done: make(chan struct{})}
	first, err := New(addr, append(opts[:len(opts):len(opts)], withShare(shareFirst))...)
	if err != nil {
		return nil, err
	}
	g.hosts = append(g.hosts, first)
	join := first.Addr().String()
	for range n - 1 {
		h, err := New(join, append(opts[:len(opts):len(opts)], withShare(shareJoin))...)
		if err != nil {
			g.release()
			return nil, err
		}
		g.hosts = append(g.hosts, h)
	}
	for _, h := range g.hosts {
		fd, err := h.hold()
		if err != nil {
			g.release()
			return nil, fmt.Errorf("netloop: group on %s: %w", join, err)
		}
		g.holds = append(g.holds, fd)
	}
	if err := steerWakes(g.holds[0], g.hosts); err != nil {
		g.release()
		return nil, fmt.Errorf("netloop: group on %s: %w", join, err)
	}
	return g, nil
}

// NewGroupPorts creates n hosts (1..MaxGroupHosts) on n ports, for
// platforms without SO_REUSEPORT: addr's port and the n-1 after it, or, for
// port 0, n ports the kernel picks. Clients must spread themselves over
// Addrs (by a hash of their identity, say). The hosts are run and stopped
// together, as with NewGroup, but the set may change without moving anyone.
func NewGroupPorts(addr string, n int, opts ...Option) (*Group, error) {
	if err := checkGroup(addr, n); err != nil {
		return nil, err
	}
	bind, err := ParseAddr(context.Background(), addr, true)
	if err != nil {
		return nil, err
	}
	if bind.Port() != 0 && int(bind.Port())+n-1 > 65535 {
		return nil, fmt.Errorf("%w: %d ports from %d", ErrRange, n, bind.Port())
	}
	g := &Group{done: make(chan struct{})}
	for i := range n {
		at := bind
		if bind.Port() != 0 {
			at = netip.AddrPortFrom(bind.Addr(), bind.Port()+uint16(i))
		}
		h, err := New(at.String(), opts...)
		if err != nil {
			g.release()
			return nil, err
		}
		g.hosts = append(g.hosts, h)
	}
	return g, nil
}

func checkGroup(addr string, n int) error {
	if n < 1 || n > MaxGroupHosts {
		return fmt.Errorf("%w: group of %d hosts, want 1..%d", ErrRange, n, MaxGroupHosts)
	}
	if addr == "" {
		return fmt.Errorf("%w: a group needs an address to listen on", ErrAddress)
	}
	return nil
}

// Hosts returns the group's hosts, in a new slice.
func (g *Group) Hosts() []*Host { return slices.Clone(g.hosts) }

// Addr returns the first host's address: with NewGroup, every host's.
func (g *Group) Addr() netip.AddrPort { return g.hosts[0].Addr() }

// Addrs returns each host's address, in the order of Hosts.
func (g *Group) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(g.hosts))
	for i, h := range g.hosts {
		out[i] = h.Addr()
	}
	return out
}

// Run runs every host, each in a goroutine of its own, until ctx is
// cancelled, Close is called, or one host stops (its Run fails, or it is
// closed): then every host shuts down as Host.Run describes, and Run returns
// once all of them have, with their errors joined (nil after a clean stop).
// Each host's Events must be consumed meanwhile. Run may be called once.
func (g *Group) Run(ctx context.Context) error {
	g.mu.Lock()
	if err := g.state.canRun(); err != nil {
		g.mu.Unlock()
		return err
	}
	g.state = stateRunning
	ctx, cancel := context.WithCancel(ctx)
	g.cancel = cancel
	g.mu.Unlock()
	defer cancel()

	errs := make([]error, len(g.hosts))
	var wg sync.WaitGroup
	for i, h := range g.hosts {
		wg.Go(func() {
			errs[i] = h.Run(ctx)
			cancel() // one stops, all stop: see the type's doc
		})
	}
	wg.Wait()
	g.mu.Lock()
	g.release()
	g.mu.Unlock()
	return errors.Join(errs...)
}

// release closes the hosts (a no-op for those that have run) and the held
// sockets, and marks the group stopped.
func (g *Group) release() {
	for _, h := range g.hosts {
		h.Close()
	}
	for _, fd := range g.holds {
		releaseHold(fd)
	}
	g.holds = nil
	g.state = stateClosed
	close(g.done)
}

// Close stops the group: if Run is running, as a cancelled context does,
// waiting until it has returned; otherwise it releases every host. Close is
// idempotent and safe for concurrent use.
func (g *Group) Close() error {
	g.mu.Lock()
	switch g.state {
	case stateNew:
		g.release()
	case stateRunning:
		g.cancel()
	}
	g.mu.Unlock()
	<-g.done
	return nil
}

// Done is closed when the group has stopped.
func (g *Group) Done() <-chan struct{} { return g.done }

// Stats returns each host's Stats, in the order of Hosts, and their sum
// (ServiceTime is the latest of the hosts'; histograms are merged).
func (g *Group) Stats(ctx context.Context) (sum Stats, per []Stats, err error) {
	per = make([]Stats, len(g.hosts))
	for i, h := range g.hosts {
		if per[i], err = h.Stats(ctx); err != nil {
			return Stats{}, nil, err
		}
	}
	return SumStats(per...), per, nil
}

// addField adds src to dst, a numeric field or an array of them: every
// counter of Stats, however many are added later, is summed.
func addField(dst, src reflect.Value) {
	switch dst.Kind() {
	case reflect.Int:
		dst.SetInt(dst.Int() + src.Int())
	case reflect.Uint64:
		dst.SetUint(dst.Uint() + src.Uint())
	case reflect.Array:
		for i := range dst.Len() {
			addField(dst.Index(i), src.Index(i))
		}
	}
}

// merge returns the sum of two histograms of the loop's buckets, in new memory.
func (h Histogram) merge(o Histogram) Histogram {
	if o.Counts == nil {
		return h.clone()
	}
	if h.Counts == nil {
		return o.clone()
	}
	out := h.clone()
	for i := range out.Counts {
		out.Counts[i] += o.Counts[i]
	}
	out.Count += o.Count
	out.Sum += o.Sum
	return out
}

// Host returns the host whose connection p is: in a group, the one whose
// loop serves the peer, to which calls with p must go.
func (p Peer) Host() *Host { return p.h }

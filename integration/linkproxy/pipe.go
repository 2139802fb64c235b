package linkproxy

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// A datagram is one datagram read by the proxy, on its way out.
type datagram struct {
	data []byte
	at   time.Time      // when the proxy read it; delays count from here
	conn *net.UDPConn   // socket to send it on
	to   netip.AddrPort // destination, unless conn is connected
}

// A pipe impairs one direction. Its run goroutine owns the random stream,
// the burst state and the delay queue; readers hand it datagrams on in.
type pipe struct {
	link        atomic.Pointer[Link]
	blackhole   *atomic.Bool
	in          chan datagram // readers -> run; unbuffered, the socket buffers
	maxQueue    int
	maxDatagram int
	stats       counters

	// Owned by run.
	rng   *rand.Rand
	bad   bool // burst model state
	queue queue
	seq   uint64

	decided func() // test hook, set before Run: called by run after each admit
}

func newPipe(d Direction, l Link, cfg Config, blackhole *atomic.Bool) *pipe {
	p := &pipe{
		blackhole:   blackhole,
		in:          make(chan datagram),
		maxQueue:    cfg.MaxQueue,
		maxDatagram: cfg.MaxDatagram,
		rng:         rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(d))),
	}
	p.link.Store(&l)
	return p
}

// offer hands a datagram read into a reusable buffer to run. It is called
// by the reading goroutines.
func (p *pipe) offer(ctx context.Context, d datagram) {
	p.stats.received.Add(1)
	if len(d.data) > p.maxDatagram {
		p.stats.overflow.Add(1)
		return
	}
	d.data = bytes.Clone(d.data)
	select {
	case p.in <- d:
	case <-ctx.Done():
	}
}

// run schedules datagrams until ctx is cancelled: one timer, armed for the
// earliest due datagram.
func (p *pipe) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		for len(p.queue) > 0 && !p.queue[0].due.After(now) {
			p.send(heap.Pop(&p.queue).(item).d)
		}
		var wake <-chan time.Time
		if len(p.queue) > 0 {
			timer.Reset(p.queue[0].due.Sub(now))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case d := <-p.in:
			p.admit(d)
		case <-wake:
		}
	}
}

// admit decides the fate of d and queues zero, one or two copies.
func (p *pipe) admit(d datagram) {
	if p.decided != nil {
		defer p.decided()
	}
	if p.blackhole.Load() {
		p.stats.blackholed.Add(1)
		return
	}
	l := p.link.Load()
	var u [6]float64 // always six draws: datagram n's fate depends on n alone
	for i := range u {
		u[i] = p.rng.Float64()
	}
	if p.bad {
		p.bad = u[0] >= l.BurstExit
	} else {
		p.bad = u[0] < l.BurstEnter
	}
	switch {
	case p.bad:
		p.stats.burstLost.Add(1)
		return
	case u[1] < l.Loss:
		p.stats.lost.Add(1)
		return
	}
	delay := l.Delay
	if u[2] < l.Reorder {
		p.stats.reordered.Add(1)
		delay += cmp.Or(l.ReorderDelay, defaultReorderDelay)
	}
	copies := 1
	if u[3] < l.Duplicate {
		p.stats.duplicated.Add(1)
		copies = 2
	}
	for i := range copies {
		jitter := time.Duration((2*u[4+i] - 1) * float64(l.Jitter))
		if len(p.queue) >= p.maxQueue {
			p.stats.overflow.Add(1)
			continue
		}
		p.seq++
		heap.Push(&p.queue, item{due: d.at.Add(max(delay+jitter, 0)), seq: p.seq, d: d})
	}
}

func (p *pipe) send(d datagram) {
	if p.blackhole.Load() {
		p.stats.blackholed.Add(1)
		return
	}
	p.stats.forwarded.Add(1)
	var err error
	if d.to.IsValid() {
		_, err = d.conn.WriteToUDPAddrPort(d.data, d.to)
	} else {
		_, err = d.conn.Write(d.data)
	}
	if err != nil {
		p.stats.errors.Add(1)
	}
}

// An item is a queued copy of a datagram.
type item struct {
	due time.Time
	seq uint64 // breaks ties: equal due times leave in arrival order
	d   datagram
}

// queue is a min-heap of items by due time.
type queue []item

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if c := q[i].due.Compare(q[j].due); c != 0 {
		return c < 0
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(item)) }
func (q *queue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = item{} // release the data
	*q = old[:len(old)-1]
	return it
}

type counters struct {
	received, forwarded, lost, burstLost, blackholed atomic.Uint64
	overflow, duplicated, reordered, errors          atomic.Uint64
}

func (c *counters) snapshot() DirStats {
	return DirStats{
		Received:   c.received.Load(),
		Forwarded:  c.forwarded.Load(),
		Lost:       c.lost.Load(),
		BurstLost:  c.burstLost.Load(),
		Blackholed: c.blackholed.Load(),
		Overflow:   c.overflow.Load(),
		Duplicated: c.duplicated.Load(),
		Reordered:  c.reordered.Load(),
		Errors:     c.errors.Load(),
	}
}

package load

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/codecat/go-enet"
)

// worker owns one client host and its clients. Only the goroutine running
// worker.run touches them; Run reads the results after that goroutine ended.
type worker struct {
	r         *run
	id        int
	addr      netip.AddrPort
	host      enet.Host
	clients   []client
	byPeer    map[enet.Peer]int // go-enet peers compare equal for the same slot
	connected int
	running   bool // the load has started: record what arrives
	flags     enet.PacketFlags
	buf       []byte // message being sent; go-enet copies it

	// Pacing; interval is 0 when unpaced.
	interval time.Duration
	nextSend time.Duration // since r.epoch
	maxLag   time.Duration // backlog cap: a send per window slot of this host, or minLag
	cursor   int           // round-robin over clients
	expired  time.Duration // last loss check (unreliable)

	// Results.
	samples                []time.Duration
	messages, errors, lost int64
}

// client is one ENet peer of a worker's host.
type client struct {
	peer      enet.Peer
	connected bool
	next      uint64        // sequence number of the next message
	acked     uint64        // every message before acked was echoed or lost
	progress  time.Duration // last echo, or send into an empty window
}

func newWorker(r *run, id int, addr netip.AddrPort) *worker {
	cfg := &r.cfg
	n := cfg.Clients / cfg.Hosts
	if id < cfg.Clients%cfg.Hosts {
		n++
	}
	w := &worker{
		r:       r,
		id:      id,
		addr:    addr,
		clients: make([]client, n),
		byPeer:  make(map[enet.Peer]int, n),
		buf:     make([]byte, cfg.Size),
	}
	if !cfg.Unreliable {
		w.flags = enet.PacketFlagReliable
	}
	prealloc := defaultPrealloc
	if cfg.Rate > 0 {
		rate := cfg.Rate * float64(n) / float64(cfg.Clients) // this host's share
		if cfg.Mode == Broadcast {
			rate = cfg.Rate * float64(n) // every client receives every packet
		} else {
			w.interval = max(time.Duration(float64(time.Second)/rate), 1)
			w.maxLag = max(w.interval*time.Duration(n*cfg.Window), minLag)
		}
		prealloc = int(min(rate*cfg.Duration.Seconds()*1.25+1024, maxPrealloc))
	}
	w.samples = make([]time.Duration, 0, prealloc)
	return w
}

// run creates the host, connects the clients, signals ready, waits for the
// start, runs the load and cleans up.
func (w *worker) run(ctx context.Context) error {
	cfg := &w.r.cfg
	if cfg.Engine == EngineC {
		return w.runC(ctx)
	}
	channels := int(cfg.Channel) + 1
	host, err := enet.NewHost(nil, uint64(len(w.clients)), uint64(channels), 0, 0)
	if err != nil {
		return fmt.Errorf("load: host %d: %w", w.id, err)
	}
	w.host = host
	defer host.Destroy()
	defer w.disconnect()

	addr := enet.NewAddress(w.addr.Addr().String(), w.addr.Port())
	for i := range w.clients {
		p, err := host.Connect(addr, channels, 0)
		if err != nil {
			return fmt.Errorf("load: host %d: %w", w.id, err)
		}
		w.clients[i].peer = p
		w.byPeer[p] = i
	}
	for w.connected < len(w.clients) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if w.r.now() >= cfg.ConnectTimeout {
			return fmt.Errorf("%w: %d of %d clients of host %d connected to %s within %v",
				ErrConnectTimeout, w.connected, len(w.clients), w.id, w.addr, cfg.ConnectTimeout)
		}
		if err := w.handle(host.Service(w.r.wait)); err != nil {
			return err
		}
	}
	w.r.ready <- struct{}{}
	for {
		select {
		case <-w.r.start:
			return w.load(ctx)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if err := w.handle(host.Service(w.r.wait)); err != nil {
			return err
		}
	}
}

// load sends and receives until the end of the measured window.
func (w *worker) load(ctx context.Context) error {
	cfg := &w.r.cfg
	w.running = true
	now := w.r.now()
	w.nextSend, w.expired = now, now
	for i := range w.clients {
		w.clients[i].progress = now
	}
	switch {
	case cfg.Mode == Broadcast:
		if w.id == 0 {
			req := AppendBroadcastRequest(nil, cfg.broadcastRequest())
			w.clients[0].peer.SendBytes(req, BroadcastChannel, enet.PacketFlagReliable)
		}
	case w.interval == 0:
		for i := range w.clients {
			w.fill(&w.clients[i])
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		now := w.r.now()
		if now >= w.r.to {
			return nil
		}
		if cfg.Unreliable && now-w.expired > lossTimeout/4 {
			w.expire(now)
		}
		if w.interval > 0 {
			w.pace(now)
		}
		if err := w.handle(w.host.Service(w.r.wait)); err != nil {
			return err
		}
	}
}

// handle processes one event from Service.
func (w *worker) handle(ev enet.Event) error {
	switch ev.GetType() {
	case enet.EventConnect:
		if i, ok := w.byPeer[ev.GetPeer()]; ok && !w.clients[i].connected {
			w.clients[i].connected = true
			w.connected++
		}
	case enet.EventDisconnect:
		i, ok := w.byPeer[ev.GetPeer()]
		if !ok {
			return nil
		}
		c := &w.clients[i]
		if !c.connected { // a failed connect: ENet gave up retrying
			return fmt.Errorf("%w: client %d of host %d: %s did not answer", ErrConnectTimeout, i, w.id, w.addr)
		}
		c.connected = false
		w.connected--
		return fmt.Errorf("%w: client %d of host %d", ErrServerDisconnected, i, w.id)
	case enet.EventReceive:
		pkt := ev.GetPacket()
		data := pkt.GetData() // a Go copy
		pkt.Destroy()
		if w.running {
			w.receive(ev.GetPeer(), ev.GetChannelID(), data)
		}
	}
	return nil
}

// receive checks and records one echo or broadcast packet.
func (w *worker) receive(peer enet.Peer, ch uint8, data []byte) {
	cfg := &w.r.cfg
	now := w.r.now()
	measured := now >= w.r.from && now < w.r.to
	if cfg.Mode == Broadcast {
		if ch != BroadcastChannel || len(data) != cfg.Size {
			w.errors++
			return
		}
		lat := time.Duration(time.Now().UnixNano() - int64(binary.LittleEndian.Uint64(data)))
		if lat < 0 {
			w.errors++
		} else if measured {
			w.samples = append(w.samples, lat)
			w.messages++
		}
		return
	}

	i, ok := w.byPeer[peer]
	if !ok || ch != cfg.Channel || len(data) != cfg.Size {
		w.errors++
		return
	}
	c := &w.clients[i]
	seq := binary.LittleEndian.Uint64(data[8:])
	if seq < c.acked || seq >= c.next {
		if !cfg.Unreliable || seq >= c.next { // else: late, already counted lost
			w.errors++
		}
		return
	}
	if gap := seq - c.acked; gap > 0 {
		if cfg.Unreliable { // unreliable packets are sequenced: the gap is lost
			w.lost += int64(gap)
		} else {
			w.errors++
		}
	}
	c.acked = seq + 1
	c.progress = now
	if measured {
		w.samples = append(w.samples, now-time.Duration(binary.LittleEndian.Uint64(data)))
		w.messages++
	}
	if w.interval == 0 {
		w.fill(c)
	}
}

// fill sends until c has Window messages in flight.
func (w *worker) fill(c *client) {
	for c.next-c.acked < uint64(w.r.cfg.Window) {
		w.send(c)
	}
}

// pace sends the messages due by now, as far as the windows allow. A
// backlog older than maxLag is dropped, so a stalled loop does not burst.
func (w *worker) pace(now time.Duration) {
	w.nextSend = max(w.nextSend, now-w.maxLag)
	for w.nextSend <= now {
		c := w.pick()
		if c == nil {
			return // every window is full: wait for an echo
		}
		w.send(c)
		w.nextSend += w.interval
	}
}

// pick returns the next client, round-robin, with room in its window.
func (w *worker) pick() *client {
	for range w.clients {
		c := &w.clients[w.cursor]
		w.cursor = (w.cursor + 1) % len(w.clients)
		if c.next-c.acked < uint64(w.r.cfg.Window) {
			return c
		}
	}
	return nil
}

// send queues one message to c; the next Service call transmits it.
func (w *worker) send(c *client) {
	now := w.r.now()
	if c.next == c.acked {
		c.progress = now
	}
	binary.LittleEndian.PutUint64(w.buf[0:], uint64(now))
	binary.LittleEndian.PutUint64(w.buf[8:], c.next)
	c.next++
	// go-enet's Send* always returns nil; a send fails (and leaks the packet)
	// only if the peer is not connected or the channel is beyond the count
	// the server accepted, and c is connected and Channel < channels.
	c.peer.SendBytes(w.buf, w.r.cfg.Channel, w.flags)
}

// expire declares lost the unreliable messages of clients that made no
// progress for lossTimeout, freeing their window.
func (w *worker) expire(now time.Duration) {
	w.expired = now
	for i := range w.clients {
		c := &w.clients[i]
		if c.next > c.acked && now-c.progress > lossTimeout {
			w.lost += int64(c.next - c.acked)
			c.acked, c.progress = c.next, now
			if w.interval == 0 {
				w.fill(c)
			}
		}
	}
}

// disconnect disconnects every client, waiting up to drainTimeout for the
// server's acknowledgements, and destroys every packet that still arrives.
func (w *worker) disconnect() {
	w.running = false
	for i := range w.clients {
		c := &w.clients[i]
		switch {
		case c.connected:
			c.peer.Disconnect(0)
		case c.peer != nil:
			c.peer.DisconnectNow(0) // still connecting (a no-op if already reset)
		}
	}
	deadline := time.Now().Add(drainTimeout)
	for w.connected > 0 && time.Now().Before(deadline) {
		ev := w.host.Service(w.r.wait)
		switch ev.GetType() {
		case enet.EventReceive:
			ev.GetPacket().Destroy()
		case enet.EventDisconnect:
			if i, ok := w.byPeer[ev.GetPeer()]; ok && w.clients[i].connected {
				w.clients[i].connected = false
				w.connected--
			}
		}
	}
	for i := range w.clients {
		if c := &w.clients[i]; c.connected {
			c.peer.DisconnectNow(0)
			c.connected = false
		}
	}
}

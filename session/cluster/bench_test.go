package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/netloop/netlooptest"
	"github.com/enetkit/enetkit/session"
	"github.com/enetkit/enetkit/session/cluster/clustertest"
)

// receipts gathers what the benchmark's clients receive: each payload is
// a sequence number and the time it was sent.
type receipts struct {
	mu   sync.Mutex
	want int             // receipts per message
	got  map[uint64]int  // by sequence number
	lat  []time.Duration // send to receive, every receipt
	done chan uint64     // a message all want clients received
}

func newReceipts(want int) *receipts {
	return &receipts{want: want, got: make(map[uint64]int), done: make(chan uint64, 16)}
}

func payload(seq uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, seq)
	return binary.BigEndian.AppendUint64(b, uint64(time.Now().UnixNano()))
}

// watch consumes a client host's events until it stops.
func (r *receipts) watch(h *netloop.Host) {
	for ev := range h.Events() {
		if ev.Kind != netloop.EventReceive || len(ev.Payload) != 16 {
			continue
		}
		now := time.Now().UnixNano()
		seq := binary.BigEndian.Uint64(ev.Payload)
		sent := int64(binary.BigEndian.Uint64(ev.Payload[8:]))
		r.mu.Lock()
		r.lat = append(r.lat, time.Duration(now-sent))
		r.got[seq]++
		if r.got[seq] == r.want {
			delete(r.got, seq)
			r.done <- seq
		}
		r.mu.Unlock()
	}
}

func (r *receipts) await(b *testing.B, seq uint64) {
	select {
	case got := <-r.done:
		if got != seq {
			b.Fatalf("message %d complete, want %d", got, seq)
		}
	case <-time.After(netlooptest.Timeout):
		b.Fatalf("message %d: not every client received it", seq)
	}
}

// measure sends b.N messages with send, one at a time, each once every
// client received the one before.
func (r *receipts) measure(b *testing.B, send func(ctx context.Context, data []byte) error) {
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := send(ctx, payload(uint64(i))); err != nil {
			b.Fatal(err)
		}
		r.await(b, uint64(i))
	}
	b.StopTimer()
}

// report reports the latency percentiles and resets them.
func (r *receipts) report(b *testing.B) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lat) == 0 {
		return
	}
	slices.Sort(r.lat)
	at := func(q float64) float64 { return float64(r.lat[int(q*float64(len(r.lat)-1))].Microseconds()) }
	b.ReportMetric(at(0.5), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	r.lat = r.lat[:0]
}

// clients connects n clients to tn, on one client host whose receipts r
// gathers, and returns their sessions.
func clients(b *testing.B, tn *testNode, n int, r *receipts) []*session.Session {
	cli := netlooptest.Start(b, "", netloop.WithPeers(n), netloop.WithChannels(2))
	// netlooptest.Start drains the events only after the test; read them now.
	ctx, cancel := context.WithTimeout(context.Background(), netlooptest.Timeout)
	defer cancel()
	for range n {
		if _, err := cli.Connect(ctx, tn.host.Addr().String(), 2, 0); err != nil {
			b.Fatal(err)
		}
	}
	out := make([]*session.Session, 0, n)
	for range n {
		select {
		case s := <-tn.sessions:
			out = append(out, s)
		case <-ctx.Done():
			b.Fatalf("%d of %d sessions", len(out), n)
		}
	}
	go r.watch(cli)
	return out
}

const benchMembers = 1000

// BenchmarkGroupBroadcast compares a broadcast to a group of 1,000 members
// spread over 3 nodes with one to a local group of 1,000 on one node:
// latency from Broadcast to the receipt by each client (p50, p99 over
// every receipt), and NATS messages published per broadcast.
//
//	go test -run '^$' -bench GroupBroadcast -benchtime 200x ./session/cluster
func BenchmarkGroupBroadcast(b *testing.B) {
	_, url := clustertest.StartNATS(b, 0)
	b.Run("cluster-3-nodes", func(b *testing.B) {
		r := newReceipts(benchMembers)
		var nodes []*testNode
		ctx := context.Background()
		for i := range 3 {
			tn := startNode(b, url, fmt.Sprint("n", i), WithLogger(nil))
			nodes = append(nodes, tn)
			g, _ := tn.Group("big")
			count := benchMembers / 3
			if i == 0 {
				count += benchMembers % 3
			}
			for j, s := range clients(b, tn, count, r) {
				if err := tn.Bind(ctx, s, fmt.Sprintf("u%d-%d", i, j)); err != nil {
					b.Fatal(err)
				}
				if err := g.Join(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
		}
		g, _ := nodes[0].Group("big")
		netlooptest.Eventually(b, "1000 members", func() bool { return g.Len() == benchMembers })
		before := nodes[0].Stats().Published
		r.measure(b, func(ctx context.Context, data []byte) error {
			return g.Broadcast(ctx, 0, data, netloop.Reliable)
		})
		b.ReportMetric(float64(nodes[0].Stats().Published-before)/float64(b.N), "nats-msgs/op")
		r.report(b)
	})
	b.Run("local-1-node", func(b *testing.B) {
		r := newReceipts(benchMembers)
		tn := startNode(b, url, "solo", WithLogger(nil))
		g := tn.Server().NewGroup()
		for _, s := range clients(b, tn, benchMembers, r) {
			if err := g.Add(s); err != nil {
				b.Fatal(err)
			}
		}
		r.measure(b, func(ctx context.Context, data []byte) error {
			return g.Broadcast(ctx, 0, data, netloop.Reliable)
		})
		b.ReportMetric(0, "nats-msgs/op")
		r.report(b)
	})
}

// BenchmarkPush pushes to 1,000 users spread over 3 nodes from a fourth
// node: NATS messages per push (one per destination node) and latency
// from Push to each client's receipt.
//
//	go test -run '^$' -bench Push -benchtime 200x ./session/cluster
func BenchmarkPush(b *testing.B) {
	_, url := clustertest.StartNATS(b, 0)
	r := newReceipts(benchMembers)
	ctx := context.Background()
	var users []string
	var nodes []*testNode
	for i := range 3 {
		tn := startNode(b, url, fmt.Sprint("n", i), WithLogger(nil))
		nodes = append(nodes, tn)
		count := benchMembers / 3
		if i == 0 {
			count += benchMembers % 3
		}
		for j, s := range clients(b, tn, count, r) {
			u := fmt.Sprintf("u%d-%d", i, j)
			if err := tn.Bind(ctx, s, u); err != nil {
				b.Fatal(err)
			}
			users = append(users, u)
		}
	}
	pusher := startNode(b, url, "pusher", WithLogger(nil))
	netlooptest.Eventually(b, "1000 users", func() bool { return pusher.Stats().Users == benchMembers })
	before := pusher.Stats().Published
	r.measure(b, func(ctx context.Context, data []byte) error {
		n, err := pusher.Push(ctx, users, 0, data, netloop.Reliable)
		if err == nil && n != benchMembers {
			err = fmt.Errorf("pushed to %d users, want %d", n, benchMembers)
		}
		return err
	})
	b.ReportMetric(float64(pusher.Stats().Published-before)/float64(b.N), "nats-msgs/op")
	r.report(b)
}

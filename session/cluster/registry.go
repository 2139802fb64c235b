package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Registry is a table of the cluster directory whose entries belong to
// nodes: things that live on one node and are found from any, such as game
// rooms. Each node puts and deletes its own entries; every node reads
// every live node's from a replica in memory. A node's entries go with
// it: they are hidden as soon as the node leaves or is dropped as dead
// (see Faults in the package doc), a node that stops deletes its own, and
// the live node with the lowest id deletes a dead node's a TTL after it
// was dropped.
//
// Put and Delete never wait for NATS: they change the node's own table at
// once (Entries sees it) and the node's registry goroutine writes the
// changes to the directory, latest value first, coalescing changes of a
// key that are not written yet. While NATS is unreachable the changes
// wait; when the node rejoins it writes its whole table again and deletes
// what the directory holds of it beyond that. Other nodes see a change
// after one write and one watch delivery (a millisecond or two on a LAN),
// and about TTL/8 later after a rejoin.
//
// The table of registry name is the key-value bucket <prefix>-reg-<name>,
// keys <node>.<key> (escaped as other names are). Its methods are safe
// for concurrent use.
type Registry struct {
	n    *Node
	name string
	wake chan struct{} // own changed; capacity 1

	mu      sync.Mutex
	own     map[string][]byte          // this node's entries, as they should be
	dirty   map[string]bool            // own keys not written since they changed
	replica map[string]map[string]item // node -> key -> entry, as the directory has them
}

type item struct {
	value []byte
	rev   uint64
	seen  time.Time // when this node saw it
}

// Entry is one entry of a Registry: Key on node Node.
type Entry struct {
	Node  string
	Key   string
	Value []byte // shared: do not modify
}

// Registry returns the node's registry called name (letters, digits, '-'
// and '_'), created on first use. Call it before Run: Run runs the
// registry's goroutine.
func (n *Node) Registry(name string) (*Registry, error) {
	if err := checkName("registry", name); err != nil {
		return nil, err
	}
	if token(name) != name {
		return nil, fmt.Errorf("%w: registry %q: use letters, digits, '-' and '_'", ErrBadName, name)
	}
	if n.ran.Load() {
		return nil, fmt.Errorf("%w: registry %q after Run", ErrRunning, name)
	}
	if r := n.regs[name]; r != nil {
		return r, nil
	}
	r := &Registry{n: n, name: name, wake: make(chan struct{}, 1),
		own: make(map[string][]byte), dirty: make(map[string]bool), replica: make(map[string]map[string]item)}
	if n.regs == nil {
		n.regs = make(map[string]*Registry)
	}
	n.regs[name] = r
	return r, nil
}

// Addr returns the ENet address the node publishes for its clients
// (WithAddr, or the host's bound address).
func (n *Node) Addr() string { return n.cfg.addr }

// Put sets this node's entry key to value; the registry keeps value, so
// do not modify it afterwards. It fails only on a bad key (ErrBadName).
func (r *Registry) Put(key string, value []byte) error {
	if err := checkName("registry key", key); err != nil {
		return err
	}
	r.mu.Lock()
	r.own[key] = value
	r.dirty[key] = true
	r.mu.Unlock()
	r.signal()
	return nil
}

// Delete removes this node's entry key, if there is one.
func (r *Registry) Delete(key string) {
	r.mu.Lock()
	if _, ok := r.own[key]; ok {
		delete(r.own, key)
		r.dirty[key] = true
	}
	r.mu.Unlock()
	r.signal()
}

// Entries returns the entries of every live node, this node's own as Put
// left them, the others' as the replica has them; sorted by node, then
// key.
func (r *Registry) Entries() []Entry {
	n := r.n
	n.mu.Lock()
	live := make(map[string]bool, len(n.nodes))
	for id := range n.nodes {
		live[id] = true
	}
	n.mu.Unlock()
	r.mu.Lock()
	out := make([]Entry, 0, len(r.own))
	for k, v := range r.own {
		out = append(out, Entry{Node: n.cfg.id, Key: k, Value: v})
	}
	for node, items := range r.replica {
		if node == n.cfg.id || !live[node] {
			continue
		}
		for k, it := range items {
			out = append(out, Entry{Node: node, Key: k, Value: it.value})
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

func (r *Registry) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Registry) kvKey(node, key string) string { return token(node) + "." + token(key) }

// run is the registry's goroutine, for the node's Run: it joins the
// registry whenever the node has (re)joined the cluster, writes the own
// table's changes, applies the watch to the replica and purges dead
// nodes' entries. When ctx is done it deletes the node's entries, if it
// can reach NATS, and returns.
func (r *Registry) run(ctx context.Context) {
	n := r.n
	tick := time.NewTicker(n.cfg.ttl / 8)
	defer tick.Stop()
	var kv jetstream.KeyValue
	var w jetstream.KeyWatcher
	var joined uint64 // n.joins when kv and w were made
	defer func() { stopWatch(w) }()
	for {
		if w != nil && (!n.live.Load() || n.joins.Load() != joined) {
			stopWatch(w)
			kv, w = nil, nil
		}
		if w == nil && n.live.Load() {
			joined = n.joins.Load()
			var err error
			if kv, w, err = r.join(ctx); err != nil {
				n.log.Warn("registry join", zap.String("registry", r.name), zap.Error(err)) // retried at the next tick
			}
		}
		if kv != nil {
			r.write(ctx, kv)
		}
		select {
		case <-ctx.Done():
			r.leave(kv)
			return
		case <-r.wake:
		case e, ok := <-updates(w):
			if !ok {
				stopWatch(w)
				kv, w = nil, nil
				continue
			}
			r.apply(e)
		case <-tick.C:
			if kv != nil {
				r.purge(ctx, kv)
			}
		}
	}
}

// join opens the bucket, loads the directory's entries into a fresh
// replica and marks every key of this node's to be written: its own
// table's, and what the directory holds beyond it (to be deleted).
func (r *Registry) join(ctx context.Context) (jetstream.KeyValue, jetstream.KeyWatcher, error) {
	n := r.n
	js, err := jetstream.New(n.nc.Load())
	if err != nil {
		return nil, nil, err
	}
	octx, cancel := n.opCtx(ctx)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(octx, jetstream.KeyValueConfig{
		Bucket: n.bucket("reg-" + r.name), Storage: jetstream.MemoryStorage})
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: bucket %s: %w", n.bucket("reg-"+r.name), err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: watch registry %s: %w", r.name, err)
	}
	replica := make(map[string]map[string]item)
	now := time.Now()
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-octx.Done():
			stopWatch(w)
			return nil, nil, fmt.Errorf("cluster: load registry %s: %w", r.name, octx.Err())
		}
		if e == nil {
			break // initial values done
		}
		if node, key, ok := splitEntryKey(e.Key()); ok && e.Operation() == jetstream.KeyValuePut {
			put(replica, node, key, item{value: e.Value(), rev: e.Revision(), seen: now})
		}
	}
	r.mu.Lock()
	r.replica = replica
	for k := range r.own {
		r.dirty[k] = true
	}
	for k := range replica[n.cfg.id] {
		r.dirty[k] = true // not in own: deleted when written
	}
	r.mu.Unlock()
	return kv, w, nil
}

// write writes the changed keys; on a failure the rest wait for the next
// round (the registry's tick, a change, or a rejoin).
func (r *Registry) write(ctx context.Context, kv jetstream.KeyValue) {
	n := r.n
	for {
		r.mu.Lock()
		var key string
		for k := range r.dirty {
			key = k
			break
		}
		if key == "" {
			r.mu.Unlock()
			return
		}
		delete(r.dirty, key)
		v, put := r.own[key]
		r.mu.Unlock()
		octx, cancel := n.opCtx(ctx)
		var err error
		if put {
			_, err = kv.Put(octx, r.kvKey(n.cfg.id, key), v)
		} else {
			err = kv.Delete(octx, r.kvKey(n.cfg.id, key))
		}
		cancel()
		if err != nil {
			r.mu.Lock()
			r.dirty[key] = true
			r.mu.Unlock()
			n.log.Debug("registry write", zap.String("registry", r.name), zap.String("key", key), zap.Error(err))
			return
		}
	}
}

func (r *Registry) apply(e jetstream.KeyValueEntry) {
	if e == nil {
		return
	}
	node, key, ok := splitEntryKey(e.Key())
	if !ok {
		r.n.malformed.Add(1)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		if items := r.replica[node]; items != nil {
			delete(items, key)
			if len(items) == 0 {
				delete(r.replica, node)
			}
		}
		return
	}
	put(r.replica, node, key, item{value: e.Value(), rev: e.Revision(), seen: time.Now()})
}

// purge deletes the entries of nodes that are not live, if this node is
// the live node with the lowest id; an entry is left a TTL after this
// node saw it, so that a node that has just joined is not purged before
// its heartbeat has arrived.
func (r *Registry) purge(ctx context.Context, kv jetstream.KeyValue) {
	n := r.n
	n.mu.Lock()
	first := true
	live := make(map[string]bool, len(n.nodes))
	for id := range n.nodes {
		live[id] = true
		if id < n.cfg.id {
			first = false
		}
	}
	n.mu.Unlock()
	if !first {
		return
	}
	type del struct {
		key string
		rev uint64
	}
	var dels []del
	old := time.Now().Add(-n.cfg.ttl)
	r.mu.Lock()
	for node, items := range r.replica {
		if live[node] || node == n.cfg.id {
			continue
		}
		for k, it := range items {
			if it.seen.Before(old) {
				dels = append(dels, del{r.kvKey(node, k), it.rev})
			}
		}
	}
	r.mu.Unlock()
	if len(dels) == 0 {
		return
	}
	octx, cancel := n.opCtx(ctx)
	defer cancel()
	for _, d := range dels {
		if err := kv.Delete(octx, d.key, jetstream.LastRevision(d.rev)); err != nil {
			n.log.Debug("registry purge", zap.String("registry", r.name), zap.String("key", d.key), zap.Error(err))
		}
	}
}

// leave deletes this node's entries from the directory, if it can reach
// NATS (the node's loop may have left the cluster already).
func (r *Registry) leave(kv jetstream.KeyValue) {
	n := r.n
	if kv == nil || !n.nc.Load().IsConnected() {
		return
	}
	r.mu.Lock()
	keys := make([]string, 0, len(r.own)+len(r.replica[n.cfg.id]))
	for k := range r.own {
		keys = append(keys, k)
	}
	for k := range r.replica[n.cfg.id] {
		if _, ok := r.own[k]; !ok {
			keys = append(keys, k)
		}
	}
	r.mu.Unlock()
	ctx, cancel := n.opCtx(context.Background())
	defer cancel()
	for _, k := range keys {
		if err := kv.Delete(ctx, r.kvKey(n.cfg.id, k)); err != nil {
			n.log.Debug("registry leave", zap.String("registry", r.name), zap.Error(err))
			return
		}
	}
}

func splitEntryKey(k string) (node, key string, ok bool) {
	nt, kt, found := strings.Cut(k, ".")
	if !found {
		return "", "", false
	}
	node, err1 := untoken(nt)
	key, err2 := untoken(kt)
	return node, key, err1 == nil && err2 == nil
}

// stopWatch stops w and waits until its NATS callback is done (see
// watchers.stop).
func stopWatch(w jetstream.KeyWatcher) {
	if w == nil {
		return
	}
	ch := w.Updates()
	_ = w.Stop()
	for range ch {
	}
}

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// watchers are the three directory watches of one joined period.
type watchers struct {
	gen                  uint64
	nodes, users, groups jetstream.KeyWatcher
}

func (w *watchers) stop() {
	if w == nil {
		return
	}
	w.nodes.Stop()
	w.users.Stop()
	w.groups.Stop()
}

func updates(w jetstream.KeyWatcher) <-chan jetstream.KeyValueEntry {
	if w == nil {
		return nil
	}
	return w.Updates()
}

// loop is the node's goroutine: it joins and rejoins, heartbeats, keeps
// the replica of the directory, detects dead nodes and unbinds ended
// sessions. It returns after ctx is cancelled and done is closed (every
// session has ended), having left the directory.
func (n *Node) loop(parent context.Context, done <-chan struct{}) {
	// The loop outlives parent: it serves the sessions' ends after it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	defer cancel()
	beat := time.NewTicker(n.cfg.ttl / 4)
	defer beat.Stop()
	sweep := time.NewTicker(n.cfg.ttl / 8)
	defer sweep.Stop()
	var w *watchers
	defer func() { w.stop() }()
	stopping := parent.Done()
	for {
		nc := n.nc.Load()
		if w != nil && (!nc.IsConnected() || n.gen.Load() != w.gen) {
			n.log.Info("left NATS")
			n.live.Store(false)
			w.stop()
			w = nil
		}
		if w == nil && nc.IsConnected() {
			var err error
			if w, err = n.join(ctx); err != nil {
				n.log.Warn("join", zap.Error(err)) // retried at the next sweep tick
			}
		}
		n.unbindEnded(ctx)
		n.deliverEvents()
		var nodes, users, groups <-chan jetstream.KeyValueEntry
		if w != nil {
			nodes, users, groups = updates(w.nodes), updates(w.users), updates(w.groups)
		}
		select {
		case <-stopping:
			stopping = nil // keep serving while the sessions end
		case <-done:
			n.unbindEnded(ctx)
			n.leave()
			return
		case <-n.wake:
		case e, ok := <-nodes:
			n.applyNode(e, ok)
		case e, ok := <-users:
			n.applyUser(ctx, e, ok)
		case e, ok := <-groups:
			n.applyGroup(e, ok)
		case <-beat.C:
			if w != nil {
				n.heartbeat(ctx)
			}
		case <-sweep.C:
			if w != nil {
				n.sweep(ctx)
			}
		}
	}
}

// join creates the buckets, registers the node, loads the directory and
// reconciles it with the node's own sessions and groups: what the
// directory lost while the node was away is put back, what it holds of
// this node that is gone is removed, and a local session whose user logged
// in elsewhere meanwhile is kicked.
func (n *Node) join(ctx context.Context) (*watchers, error) {
	gen := n.gen.Load()
	nc := n.nc.Load()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	octx, cancel := n.opCtx(ctx)
	defer cancel()
	var b buckets
	for _, k := range []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&b.nodes, jetstream.KeyValueConfig{Bucket: n.bucket("nodes"), TTL: n.cfg.ttl, Storage: jetstream.MemoryStorage}},
		{&b.users, jetstream.KeyValueConfig{Bucket: n.bucket("users"), Storage: jetstream.MemoryStorage}},
		{&b.groups, jetstream.KeyValueConfig{Bucket: n.bucket("groups"), Storage: jetstream.MemoryStorage}},
	} {
		if *k.kv, err = js.CreateOrUpdateKeyValue(octx, k.cfg); err != nil {
			return nil, fmt.Errorf("cluster: bucket %s: %w", k.cfg.Bucket, err)
		}
	}
	n.kv.Store(&b)
	if err := n.heartbeat(ctx); err != nil {
		return nil, err
	}
	w := &watchers{gen: gen}
	if w.nodes, err = b.nodes.WatchAll(ctx); err == nil {
		if w.users, err = b.users.WatchAll(ctx); err == nil {
			w.groups, err = b.groups.WatchAll(ctx)
		}
	}
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("cluster: watch: %w", err)
	}
	// Load the directory as it is now, into a fresh replica.
	nodes := make(map[string]*nodeState)
	users := make(map[string]userEntry)
	members := make(map[string]map[string]string)
	now := time.Now()
	for _, ch := range []<-chan jetstream.KeyValueEntry{w.nodes.Updates(), w.users.Updates(), w.groups.Updates()} {
		for {
			var e jetstream.KeyValueEntry
			select {
			case e = <-ch:
			case <-octx.Done():
				w.stop()
				return nil, fmt.Errorf("cluster: load directory: %w", octx.Err())
			}
			if e == nil {
				break // initial values done
			}
			switch e.Bucket() {
			case b.nodes.Bucket():
				if info, ok := n.decodeNode(e); ok {
					nodes[info.ID] = &nodeState{info: info, seen: now}
				}
			case b.users.Bucket():
				if u, v, ok := n.decodeUser(e); ok {
					users[u] = v
				}
			case b.groups.Bucket():
				if g, u, node, ok := n.decodeMember(e); ok {
					addMember(members, g, u, node)
				}
			}
		}
	}
	n.mu.Lock()
	for id, st := range n.nodes {
		if nodes[id] == nil {
			n.events = append(n.events, NodeEvent{Kind: Left, Node: st.info, Lost: n.membersOfLocked(id)})
		}
	}
	for id, st := range nodes {
		if n.nodes[id] == nil {
			n.events = append(n.events, NodeEvent{Kind: Joined, Node: st.info})
		}
	}
	n.nodes, n.users, n.members = nodes, users, members
	n.mu.Unlock()
	if err := n.reconcile(octx, &b); err != nil {
		w.stop()
		return nil, err
	}
	if n.reconnects.Add(1) > 1 {
		n.log.Info("rejoined")
	} else {
		n.log.Info("joined")
	}
	n.live.Store(true)
	return w, nil
}

// reconcile makes the directory agree with this node's bindings and groups.
func (n *Node) reconcile(ctx context.Context, b *buckets) error {
	type put struct {
		user string
		bd   *binding
	}
	var puts []put
	var stale []string // user keys of this node without a local binding
	var displaced []*binding
	var staleMembers []string
	var missingMembers [][2]string
	n.mu.Lock()
	for u, bd := range n.local {
		e, ok := n.users[u]
		switch {
		case !ok:
			puts = append(puts, put{u, bd})
		case e.Node == n.cfg.id && e.Session == bd.s.ID():
			bd.rev = e.rev
		case n.nodes[e.Node] != nil:
			displaced = append(displaced, bd) // logged in elsewhere while we were away
		default:
			bd.rev = e.rev
			puts = append(puts, put{u, bd})
		}
	}
	for u, e := range n.users {
		if e.Node == n.cfg.id && n.local[u] == nil {
			stale = append(stale, u)
		}
	}
	for g, ms := range n.members {
		for u, node := range ms {
			if node == n.cfg.id && (n.groups[g] == nil || n.groups[g].users[u] == nil) {
				staleMembers = append(staleMembers, memberKey(g, u))
			}
		}
	}
	for name, g := range n.groups {
		for u := range g.users {
			if n.members[name][u] != n.cfg.id {
				missingMembers = append(missingMembers, [2]string{name, u})
			}
		}
	}
	n.mu.Unlock()
	for _, bd := range displaced {
		n.displace(ctx, bd)
	}
	for _, p := range puts {
		if err := n.claim(ctx, b, p.user, p.bd); err != nil {
			return err
		}
	}
	for _, u := range stale {
		if err := b.users.Delete(ctx, token(u)); err != nil {
			return fmt.Errorf("cluster: reconcile: %w", err)
		}
	}
	for _, k := range staleMembers {
		if err := b.groups.Delete(ctx, k); err != nil {
			return fmt.Errorf("cluster: reconcile: %w", err)
		}
	}
	for _, m := range missingMembers {
		if _, err := b.groups.Put(ctx, memberKey(m[0], m[1]), []byte(n.cfg.id)); err != nil {
			return fmt.Errorf("cluster: reconcile: %w", err)
		}
	}
	return nil
}

// claim puts back the binding of a local session that the directory lost;
// if another live node took the user meanwhile, the local session is kicked.
func (n *Node) claim(ctx context.Context, b *buckets, user string, bd *binding) error {
	val, _ := json.Marshal(userEntry{Node: n.cfg.id, Session: bd.s.ID()})
	var rev uint64
	var err error
	if bd.rev == 0 {
		rev, err = b.users.Create(ctx, token(user), val)
	} else {
		rev, err = b.users.Update(ctx, token(user), val, bd.rev)
	}
	switch {
	case err == nil:
		n.mu.Lock()
		bd.rev = rev
		n.mu.Unlock()
		return nil
	case errors.Is(err, jetstream.ErrKeyExists):
		n.displace(ctx, bd) // a newer login won the race
		return nil
	}
	return fmt.Errorf("cluster: reconcile user: %w", err)
}

// heartbeat puts the node's entry, refreshing its TTL.
func (n *Node) heartbeat(ctx context.Context) error {
	b := n.kv.Load()
	info := NodeInfo{ID: n.cfg.id, Addr: n.cfg.addr, Peers: n.srv.Host().PeerCount(), Capacity: n.cfg.capacity, Started: n.started}
	val, _ := json.Marshal(info)
	octx, cancel := n.opCtx(ctx)
	defer cancel()
	if _, err := b.nodes.Put(octx, token(n.cfg.id), val); err != nil {
		n.log.Warn("heartbeat", zap.Error(err))
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	return nil
}

// sweep drops nodes whose heartbeat is late by three periods; the live
// node with the lowest id removes their entries from the directory.
func (n *Node) sweep(ctx context.Context) {
	deadline := time.Now().Add(-n.cfg.ttl * 3 / 4)
	var dead []string
	n.mu.Lock()
	for id, st := range n.nodes {
		if id != n.cfg.id && st.seen.Before(deadline) {
			dead = append(dead, id)
		}
	}
	for _, id := range dead {
		n.dropNodeLocked(id)
	}
	first := true
	for id := range n.nodes {
		if id < n.cfg.id {
			first = false
		}
	}
	type key struct {
		user string
		rev  uint64
	}
	var users []key
	var members []string
	if first {
		for u, e := range n.users {
			if n.nodes[e.Node] == nil {
				users = append(users, key{u, e.rev})
			}
		}
		for g, ms := range n.members {
			for u, node := range ms {
				if n.nodes[node] == nil {
					members = append(members, memberKey(g, u))
				}
			}
		}
	}
	n.mu.Unlock()
	if len(users)+len(members)+len(dead) == 0 {
		return
	}
	b := n.kv.Load()
	octx, cancel := n.opCtx(ctx)
	defer cancel()
	for _, id := range dead {
		if first {
			_ = b.nodes.Delete(octx, token(id)) // may have expired already
		}
	}
	for _, k := range users {
		// The revision guards a login that took the user meanwhile.
		if err := b.users.Delete(octx, token(k.user), jetstream.LastRevision(k.rev)); err != nil {
			n.log.Debug("purge user", zap.String("user", k.user), zap.Error(err))
		}
	}
	for _, k := range members {
		if err := b.groups.Delete(octx, k); err != nil {
			n.log.Debug("purge member", zap.String("key", k), zap.Error(err))
		}
	}
}

// dropNodeLocked removes a node from the replica and queues its Left event.
func (n *Node) dropNodeLocked(id string) {
	st := n.nodes[id]
	if st == nil {
		return
	}
	delete(n.nodes, id)
	lost := n.membersOfLocked(id)
	n.events = append(n.events, NodeEvent{Kind: Left, Node: st.info, Lost: lost})
	n.log.Info("node left", zap.String("id", id), zap.Int("groups", len(lost)))
}

// membersOfLocked returns the group members of node id, by group.
func (n *Node) membersOfLocked(id string) map[string][]string {
	var lost map[string][]string
	for g, ms := range n.members {
		for u, node := range ms {
			if node == id {
				if lost == nil {
					lost = make(map[string][]string)
				}
				lost[g] = append(lost[g], u)
			}
		}
	}
	return lost
}

func (n *Node) deliverEvents() {
	n.mu.Lock()
	evs := n.events
	n.events = nil
	n.mu.Unlock()
	if n.cfg.watch == nil {
		return
	}
	for _, e := range evs {
		n.cfg.watch(e)
	}
}

// applyNode applies a change of the nodes bucket to the replica.
func (n *Node) applyNode(e jetstream.KeyValueEntry, ok bool) {
	if !ok || e == nil {
		n.gen.Add(1) // the watch broke: rejoin
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		id, err := untoken(e.Key())
		if err == nil {
			n.dropNodeLocked(id)
		}
		return
	}
	info, ok := n.decodeNode(e)
	if !ok {
		return
	}
	if n.nodes[info.ID] == nil {
		n.events = append(n.events, NodeEvent{Kind: Joined, Node: info})
		n.log.Info("node joined", zap.String("id", info.ID), zap.String("addr", info.Addr))
	}
	n.nodes[info.ID] = &nodeState{info: info, seen: time.Now()}
}

// applyUser applies a change of the users bucket: a local session whose
// user is now bound elsewhere is kicked; a local binding that was deleted
// by another node (which thought this one dead) is put back.
func (n *Node) applyUser(ctx context.Context, e jetstream.KeyValueEntry, ok bool) {
	if !ok || e == nil {
		n.gen.Add(1)
		return
	}
	user, err := untoken(e.Key())
	if err != nil {
		return
	}
	n.mu.Lock()
	bd := n.local[user]
	if e.Operation() != jetstream.KeyValuePut {
		delete(n.users, user)
		n.mu.Unlock()
		if bd != nil && bd.rev != 0 && bd.rev <= e.Revision() {
			bd.rev = 0 // the directory lost it: claim it again
			octx, cancel := n.opCtx(ctx)
			defer cancel()
			if err := n.claim(octx, n.kv.Load(), user, bd); err != nil {
				n.log.Warn("reclaim", zap.String("user", user), zap.Error(err))
			}
		}
		return
	}
	_, v, ok := n.decodeUser(e)
	if !ok {
		n.mu.Unlock()
		return
	}
	n.users[user] = v
	mine := v.Node == n.cfg.id && bd != nil && v.Session == bd.s.ID()
	if mine {
		bd.rev = v.rev
	}
	n.mu.Unlock()
	if bd != nil && !mine {
		octx, cancel := n.opCtx(ctx)
		defer cancel()
		n.displace(octx, bd)
	}
}

// applyGroup applies a change of the groups bucket.
func (n *Node) applyGroup(e jetstream.KeyValueEntry, ok bool) {
	if !ok || e == nil {
		n.gen.Add(1)
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		g, u, err := splitMemberKey(e.Key())
		if err == nil {
			if ms := n.members[g]; ms != nil {
				delete(ms, u)
				if len(ms) == 0 {
					delete(n.members, g)
				}
			}
		}
		return
	}
	if g, u, node, ok := n.decodeMember(e); ok {
		addMember(n.members, g, u, node)
	}
}

func addMember(members map[string]map[string]string, g, u, node string) {
	ms := members[g]
	if ms == nil {
		ms = make(map[string]string)
		members[g] = ms
	}
	ms[u] = node
}

func (n *Node) decodeNode(e jetstream.KeyValueEntry) (NodeInfo, bool) {
	var info NodeInfo
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &info) != nil || info.ID == "" {
		return info, false
	}
	return info, true
}

func (n *Node) decodeUser(e jetstream.KeyValueEntry) (string, userEntry, bool) {
	var v userEntry
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &v) != nil {
		return "", v, false
	}
	u, err := untoken(e.Key())
	if err != nil {
		return "", v, false
	}
	v.rev = e.Revision()
	return u, v, true
}

func (n *Node) decodeMember(e jetstream.KeyValueEntry) (group, user, node string, ok bool) {
	if e.Operation() != jetstream.KeyValuePut {
		return "", "", "", false
	}
	g, u, err := splitMemberKey(e.Key())
	if err != nil {
		return "", "", "", false
	}
	return g, u, string(e.Value()), true
}

// memberKey is the groups bucket's key of user in group.
func memberKey(group, user string) string { return token(group) + "." + token(user) }

func splitMemberKey(k string) (group, user string, err error) {
	gt, ut, ok := strings.Cut(k, ".")
	if !ok {
		return "", "", fmt.Errorf("%w: member key %q", ErrMalformed, k)
	}
	if group, err = untoken(gt); err == nil {
		user, err = untoken(ut)
	}
	return group, user, err
}

// leave removes the node from the directory, if it can reach it: its
// sessions have ended, so its bindings and memberships are gone or going.
func (n *Node) leave() {
	n.live.Store(false)
	b := n.kv.Load()
	nc := n.nc.Load()
	if b == nil || !nc.IsConnected() {
		return
	}
	ctx, cancel := n.opCtx(context.Background())
	defer cancel()
	if err := b.nodes.Delete(ctx, token(n.cfg.id)); err != nil {
		n.log.Warn("leave", zap.Error(err))
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		n.log.Warn("leave", zap.Error(err))
	}
	n.log.Info("left the cluster")
}

// splitHostPort parses a listen address for the embedded server.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: listen address %q: %w", ErrConfig, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: listen address %q: bad port", ErrConfig, addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

var _ = nats.ErrConnectionClosed

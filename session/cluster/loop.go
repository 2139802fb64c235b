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

// stop stops the watches and waits until their NATS callbacks are done:
// a callback may be blocked sending on its updates channel, and would keep
// its goroutine for ever. The channels close when the callbacks return.
func (w *watchers) stop() {
	if w == nil {
		return
	}
	chs := []<-chan jetstream.KeyValueEntry{updates(w.nodes), updates(w.users), updates(w.groups)}
	for _, kw := range []jetstream.KeyWatcher{w.nodes, w.users, w.groups} {
		if kw != nil {
			_ = kw.Stop() // fails only if the connection is closed, which stops it too
		}
	}
	for _, ch := range chs {
		if ch == nil {
			continue // that watch was never made
		}
		for range ch {
		}
	}
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
	members := make(map[string]map[string]memberEntry)
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
				if g, u, m, ok := n.decodeMember(e); ok {
					put(members, g, u, m)
				}
			}
		}
	}
	n.mu.Lock()
	// A node known before that is missing now may be rejoining too (after
	// a NATS restart the directory starts empty): it keeps its entries for
	// a grace period, and the sweep drops it if it does not come back.
	for id, st := range n.nodes {
		if nodes[id] != nil || id == n.cfg.id {
			continue
		}
		nodes[id] = &nodeState{info: st.info, seen: now}
		for u, e := range n.users {
			if _, ok := users[u]; !ok && e.Node == id {
				users[u] = e
			}
		}
		for g, ms := range n.members {
			for u, m := range ms {
				if _, ok := members[g][u]; !ok && m.node == id {
					put(members, g, u, m)
				}
			}
		}
	}
	for id, st := range nodes {
		if n.nodes[id] == nil {
			n.events = append(n.events, NodeEvent{Kind: NodeJoined, Node: st.info})
		}
	}
	n.nodes, n.users, n.members = nodes, users, members
	n.mu.Unlock()
	if err := n.reconcile(octx, &b); err != nil {
		w.stop()
		return nil, err
	}
	if n.joins.Add(1) > 1 {
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
			bd.rev = 0
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
		for u, m := range ms {
			if m.node == n.cfg.id && (n.groups[g] == nil || n.groups[g].users[u] == nil) {
				staleMembers = append(staleMembers, memberKey(g, u))
			}
		}
	}
	for name, st := range n.groups {
		for u := range st.users {
			if n.members[name][u].node != n.cfg.id {
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
	var purge []purgeKey
	n.mu.Lock()
	for id, st := range n.nodes {
		if id != n.cfg.id && st.seen.Before(deadline) {
			dead = append(dead, id)
		}
	}
	for _, id := range dead {
		purge = append(purge, n.dropNodeLocked(id)...)
	}
	first := true
	for id := range n.nodes {
		if id < n.cfg.id {
			first = false
		}
	}
	n.mu.Unlock()
	if !first || len(dead) == 0 {
		return
	}
	b := n.kv.Load()
	octx, cancel := n.opCtx(ctx)
	defer cancel()
	for _, id := range dead {
		_ = b.nodes.Delete(octx, token(id)) // it may have expired already
	}
	for _, k := range purge {
		var err error
		if k.user != "" {
			// The revision guards a login that took the user meanwhile.
			err = b.users.Delete(octx, token(k.user), jetstream.LastRevision(k.rev))
		} else {
			// A purge, not a delete: other nodes tell it from a member
			// leaving, and drop the dead node before they forget its
			// members (see applyGroup).
			err = b.groups.Purge(octx, k.member, jetstream.LastRevision(k.rev))
		}
		if err != nil {
			n.log.Debug("purge", zap.String("user", k.user), zap.String("member", k.member), zap.Error(err))
		}
	}
}

// purgeKey is a directory entry of a dead node: a user's key and its
// revision, or a group member's key.
type purgeKey struct {
	user   string
	rev    uint64
	member string
}

// dropNodeLocked removes a node and its entries from the replica, queues
// its Left event and returns its entries, for the directory to be purged.
func (n *Node) dropNodeLocked(id string) []purgeKey {
	st := n.nodes[id]
	if st == nil {
		return nil
	}
	delete(n.nodes, id)
	lost := n.membersOfLocked(id)
	var purge []purgeKey
	for u, e := range n.users {
		if e.Node == id {
			delete(n.users, u)
			purge = append(purge, purgeKey{user: u, rev: e.rev})
		}
	}
	for g, us := range lost {
		for _, u := range us {
			purge = append(purge, purgeKey{member: memberKey(g, u), rev: n.members[g][u].rev})
			delete(n.members[g], u)
		}
		if len(n.members[g]) == 0 {
			delete(n.members, g)
		}
	}
	n.events = append(n.events, NodeEvent{Kind: NodeLeft, Node: st.info, Lost: lost})
	n.log.Info("node left", zap.String("id", id), zap.Int("groups", len(lost)))
	return purge
}

// membersOfLocked returns the group members of node id, by group.
func (n *Node) membersOfLocked(id string) map[string][]string {
	var lost map[string][]string
	for g, ms := range n.members {
		for u, m := range ms {
			if m.node == id {
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
		n.events = append(n.events, NodeEvent{Kind: NodeJoined, Node: info})
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
		n.mu.Lock()
		lost := bd != nil && n.local[user] == bd && bd.rev != 0 && bd.rev <= e.Revision()
		if lost {
			bd.rev = 0 // the directory lost it: claim it again
		}
		n.mu.Unlock()
		if lost {
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
			// A purge comes from the node that found the member's node
			// dead. Its sweep ran first; drop that node here too, before
			// its members are forgotten one by one, so that this node's
			// NodeLeft names the groups they were in.
			if m, ok := n.members[g][u]; ok && e.Operation() == jetstream.KeyValuePurge && m.node != n.cfg.id {
				n.dropNodeLocked(m.node)
			}
			if ms := n.members[g]; ms != nil {
				delete(ms, u)
				if len(ms) == 0 {
					delete(n.members, g)
				}
			}
		}
		return
	}
	if g, u, m, ok := n.decodeMember(e); ok {
		put(n.members, g, u, m)
	}
}

// memberEntry is a group membership: the member's node and the key's revision.
type memberEntry struct {
	node string
	rev  uint64
}

// put sets m[k1][k2] = v, making the inner map if need be: the directory's
// replicas are maps of maps (group -> user, node -> key).
func put[V any](m map[string]map[string]V, k1, k2 string, v V) {
	inner := m[k1]
	if inner == nil {
		inner = make(map[string]V)
		m[k1] = inner
	}
	inner[k2] = v
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

func (n *Node) decodeMember(e jetstream.KeyValueEntry) (group, user string, m memberEntry, ok bool) {
	if e.Operation() != jetstream.KeyValuePut {
		return "", "", m, false
	}
	g, u, err := splitMemberKey(e.Key())
	if err != nil {
		return "", "", m, false
	}
	return g, u, memberEntry{node: string(e.Value()), rev: e.Revision()}, true
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
		return "", 0, fmt.Errorf("%w: listen address %q: %w", ErrOption, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: listen address %q: bad port", ErrOption, addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

var _ = nats.ErrConnectionClosed

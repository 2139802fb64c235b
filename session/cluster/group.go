package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// Group is a named set of users whose sessions may be on any node, such
// as a room. Every node that names the same group shares it. A Group is a
// handle: it holds no state of its own, and a node keeps a group's state
// only while it has members there, so any number of group names costs
// nothing once they are empty. Its methods are safe for concurrent use.
type Group struct {
	n    *Node
	name string
}

// groupState is a group's state on a node that has members in it.
type groupState struct {
	local *session.Group              // this node's members' sessions
	users map[string]*session.Session // this node's members, by user
	sub   *nats.Subscription          // the group's subject
}

// Member is a member of a group.
type Member struct {
	User string
	Node string
}

// Group returns a handle of the group called name. It fails only with
// ErrBadName.
func (n *Node) Group(name string) (*Group, error) {
	if err := checkName("group", name); err != nil {
		return nil, err
	}
	return &Group{n: n, name: name}, nil
}

// local returns this node's members' sessions of the group, nil if none.
func (g *Group) local() *session.Group {
	g.n.mu.Lock()
	defer g.n.mu.Unlock()
	if st := g.n.groups[g.name]; st != nil {
		return st.local
	}
	return nil
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Join adds the user bound to s (see Node.Bind) to the group, cluster-wide.
// It fails with ErrNotBound if s is not bound, with an error matching
// session.ErrEnded if s has ended, and at once with ErrUnavailable while
// the node is not joined. s leaves the group when it ends. Joining twice
// is a no-op.
func (g *Group) Join(ctx context.Context, s *session.Session) error {
	n := g.n
	user, ok := n.User(s)
	if !ok {
		return fmt.Errorf("%w: join %s", ErrNotBound, g.name)
	}
	b := n.kv.Load()
	if n.conn() == nil || b == nil {
		return n.unavailable("join " + g.name)
	}
	if err := s.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	bd := n.local[user]
	if bd == nil || bd.s != s {
		n.mu.Unlock()
		return fmt.Errorf("%w: join %s", ErrNotBound, g.name)
	}
	st := n.groups[g.name]
	if st == nil {
		// Subscribe before the membership is announced: a broadcast sent
		// after this Join returns reaches s.
		sub, err := n.nc.Load().Subscribe(n.groupSubject(g.name), g.onBroadcast)
		if err != nil {
			n.mu.Unlock()
			return fmt.Errorf("cluster: subscribe %s: %w", g.name, err)
		}
		st = &groupState{local: n.srv.NewGroup(), users: make(map[string]*session.Session), sub: sub}
		n.groups[g.name] = st
	}
	if err := st.local.Add(s); err != nil {
		g.dropIfEmptyLocked(st)
		n.mu.Unlock()
		return err
	}
	bd.groups[g.name] = true
	st.users[user] = s
	put(n.members, g.name, user, memberEntry{node: n.cfg.id})
	n.mu.Unlock()
	ctx, cancel := n.opCtx(ctx)
	defer cancel()
	rev, err := b.groups.Put(ctx, memberKey(g.name, user), []byte(n.cfg.id))
	if err != nil {
		// The local membership stays; the node puts it in the directory
		// when it rejoins.
		return n.kvError("join "+g.name, err)
	}
	n.mu.Lock()
	if m, ok := n.members[g.name][user]; ok && m.node == n.cfg.id && m.rev < rev {
		n.members[g.name][user] = memberEntry{node: n.cfg.id, rev: rev}
	}
	n.mu.Unlock()
	return nil
}

// Leave takes s's user out of the group. The local part never fails; the
// error matches ErrUnavailable if the directory could not be told (the
// node tells it when it rejoins).
func (g *Group) Leave(ctx context.Context, s *session.Session) error {
	n := g.n
	user, ok := n.User(s)
	if !ok {
		return fmt.Errorf("%w: leave %s", ErrNotBound, g.name)
	}
	n.mu.Lock()
	if st := n.groups[g.name]; st == nil || st.users[user] != s {
		n.mu.Unlock()
		return nil
	}
	if bd := n.local[user]; bd != nil {
		delete(bd.groups, g.name)
	}
	key := g.removeLocked(user)
	n.mu.Unlock()
	return n.deleteMembers(ctx, []purgeKey{key})
}

// removeLocked removes a local member and returns its key in the
// directory, with the revision this node put if it knows it, for the
// caller to delete. The key is empty if the directory holds no membership
// of this node (another node's, once the user moved there, is not ours
// to delete); n.mu is held.
func (g *Group) removeLocked(user string) purgeKey {
	if st := g.n.groups[g.name]; st != nil {
		if s := st.users[user]; s != nil {
			delete(st.users, user)
			st.local.Remove(s)
		}
		g.dropIfEmptyLocked(st)
	}
	var key purgeKey
	if ms := g.n.members[g.name]; ms != nil && ms[user].node == g.n.cfg.id {
		key = purgeKey{member: memberKey(g.name, user), rev: ms[user].rev}
		delete(ms, user)
		if len(ms) == 0 {
			delete(g.n.members, g.name)
		}
	}
	return key
}

// dropIfEmptyLocked forgets the group's state once it has no local
// members; n.mu is held.
func (g *Group) dropIfEmptyLocked(st *groupState) {
	if len(st.users) > 0 || g.n.groups[g.name] != st {
		return
	}
	_ = st.sub.Unsubscribe() // fails only on a closed connection, which ends it too
	delete(g.n.groups, g.name)
}

// leaveGroupsLocked takes user out of the groups of binding bd locally and
// returns their keys in the directory; n.mu is held.
func (n *Node) leaveGroupsLocked(user string, bd *binding) []purgeKey {
	var out []purgeKey
	for name := range bd.groups {
		if st := n.groups[name]; st != nil && st.users[user] == bd.s {
			g := &Group{n: n, name: name}
			out = append(out, g.removeLocked(user))
		}
	}
	clear(bd.groups)
	return out
}

// deleteMembers removes memberships from the directory. A key with a
// revision is removed only if nobody changed it since (the user may have
// logged in and joined again on another node).
func (n *Node) deleteMembers(ctx context.Context, keys []purgeKey) error {
	keys = slices.DeleteFunc(keys, func(k purgeKey) bool { return k.member == "" })
	if len(keys) == 0 {
		return nil
	}
	b := n.kv.Load()
	if n.conn() == nil || b == nil {
		return n.unavailable("leave groups") // reconcile removes them on rejoin
	}
	ctx, cancel := n.opCtx(context.WithoutCancel(ctx))
	defer cancel()
	var first error
	for _, k := range keys {
		var opts []jetstream.KVDeleteOpt
		if k.rev != 0 {
			opts = append(opts, jetstream.LastRevision(k.rev))
		}
		err := b.groups.Delete(ctx, k.member, opts...)
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && first == nil {
			first = n.kvError("leave group", err)
		}
	}
	return first
}

// Broadcast sends data to every member of the group, on every node: one
// ENet packet shared by this node's members (Group.Broadcast of package
// session, one Host.Multicast), and one NATS publish in all, which each
// other node with members sends the same way. data must not be
// modified afterwards.
//
// Members of one node receive the broadcasts of one sender in order.
// While the node is not joined only local members are reached, and the
// error matches ErrUnavailable (counted in Stats.Lost).
func (g *Group) Broadcast(ctx context.Context, ch uint8, data []byte, flag netloop.Flag) error {
	n := g.n
	if len(data) == 0 {
		return fmt.Errorf("cluster: broadcast: %w", netloop.ErrEmpty)
	}
	if err := g.BroadcastLocal(ctx, ch, data, flag); err != nil {
		return err
	}
	// The publish goes out whether or not this node knows of remote
	// members yet: NATS knows who subscribes, and a node subscribes
	// before it announces a member, so a member that just joined on
	// another node gets every broadcast sent after its join returned.
	nc := n.conn()
	if nc == nil {
		n.mu.Lock()
		remote := false
		for _, m := range n.members[g.name] {
			if m.node != n.cfg.id && n.nodes[m.node] != nil {
				remote = true
				break
			}
		}
		n.mu.Unlock()
		if !remote {
			return nil // nobody to lose
		}
		n.lost.Add(1)
		return n.unavailable("broadcast " + g.name)
	}
	m := nats.NewMsg(n.groupSubject(g.name))
	m.Header.Set(hdrNode, n.cfg.id)
	m.Data = appendPacket(make([]byte, 0, len(data)+3), packet{ch: ch, flag: flag, data: data})
	if err := nc.PublishMsg(m); err != nil {
		n.lost.Add(1)
		return n.kvError("broadcast "+g.name, err)
	}
	n.published.Add(1)
	return nil
}

// onBroadcast delivers another node's broadcast to the local members.
func (g *Group) onBroadcast(m *nats.Msg) {
	n := g.n
	if m.Header.Get(hdrNode) == n.cfg.id {
		return
	}
	n.received.Add(1)
	p, err := parsePacket(m.Data)
	if err != nil || len(p.users) != 0 {
		n.malformed.Add(1)
		return
	}
	ctx, cancel := context.WithTimeout(*n.ctx.Load(), n.cfg.timeout)
	defer cancel()
	if err := g.BroadcastLocal(ctx, p.ch, p.data, p.flag); err != nil {
		n.log.Debug("broadcast", zap.String("group", g.name), zap.Error(err))
	}
}

// Members returns the group's members on live nodes, sorted by user id,
// as this node's replica of the directory knows them.
func (g *Group) Members() []Member {
	n := g.n
	n.mu.Lock()
	out := make([]Member, 0, len(n.members[g.name]))
	for u, m := range n.members[g.name] {
		if n.nodes[m.node] != nil || m.node == n.cfg.id {
			out = append(out, Member{User: u, Node: m.node})
		}
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return cmpString(a.User, b.User) })
	return out
}

// Len returns the number of members on live nodes.
func (g *Group) Len() int {
	n := g.n
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, m := range n.members[g.name] {
		if n.nodes[m.node] != nil || m.node == n.cfg.id {
			c++
		}
	}
	return c
}

// Local returns this node's members' sessions.
func (g *Group) Local() []*session.Session {
	if l := g.local(); l != nil {
		return l.Sessions()
	}
	return nil
}

// BroadcastLocal sends data to this node's members only, with one ENet
// packet they share: for news that every node learns by itself, such as
// the members a dead node lost (NodeEvent.Lost). data must not be
// modified afterwards.
func (g *Group) BroadcastLocal(ctx context.Context, ch uint8, data []byte, flag netloop.Flag) error {
	l := g.local()
	if l == nil || l.Len() == 0 {
		return nil
	}
	if err := l.Broadcast(ctx, ch, data, flag); err != nil {
		return fmt.Errorf("cluster: broadcast %s: %w", g.name, err)
	}
	return nil
}

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// Bind binds s, a session of the node's server, to user cluster-wide. If
// the user is logged in already, on this node or another live one, the
// login policy decides: Kick (the default) binds s and kicks the older
// session (a remote one within milliseconds, when its node sees the
// change); Refuse fails with ErrTaken. The binding ends when s ends, and
// with the node's TTL if the node dies. Binding s again to the same user
// is a no-op; to another user, ErrBound.
//
// Bind fails at once with ErrUnavailable while the node is not joined: a
// login cannot be checked for uniqueness then. It blocks for at most the
// node's timeout (WithTimeout) or until ctx is done.
func (n *Node) Bind(ctx context.Context, s *session.Session, user string) error {
	if err := checkName("user id", user); err != nil {
		return err
	}
	if s == nil || s.Server() != n.srv {
		return fmt.Errorf("cluster: bind %q: %w", user, session.ErrForeignSession)
	}
	if u, ok := n.User(s); ok {
		if u == user {
			return nil
		}
		return fmt.Errorf("%w: %s is %q", ErrBound, s, u)
	}
	b := n.kv.Load()
	if n.conn() == nil || b == nil {
		return n.unavailable("bind " + user)
	}
	if err := s.Err(); err != nil {
		return err
	}
	ctx, cancel := n.opCtx(ctx)
	defer cancel()
	val, _ := json.Marshal(userEntry{Node: n.cfg.id, Session: s.ID()})
	key := token(user)
	bd := &binding{s: s, groups: make(map[string]bool)}
	// Claim the key first, in the directory; the local table follows it.
	// Races between logins are settled by the key's revision.
	for try := 0; ; try++ {
		if try == 8 {
			return fmt.Errorf("cluster: bind %q: too much contention", user)
		}
		rev, err := b.users.Create(ctx, key, val)
		if err == nil {
			bd.rev = rev
			break
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return n.kvError("bind "+user, err)
		}
		e, err := b.users.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return n.kvError("bind "+user, err)
		}
		var old userEntry
		_ = json.Unmarshal(e.Value(), &old)
		n.mu.Lock()
		alive := n.nodes[old.Node] != nil
		if old.Node == n.cfg.id {
			lb := n.local[user]
			alive = lb != nil && lb.s.ID() == old.Session && lb.s.Err() == nil
		}
		n.mu.Unlock()
		if alive && n.cfg.policy == LoginRefuse {
			return fmt.Errorf("%w: %q on node %s", ErrTaken, user, old.Node)
		}
		rev, err = b.users.Update(ctx, key, val, e.Revision())
		if err == nil {
			bd.rev = rev
			break
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return n.kvError("bind "+user, err)
		}
	}
	n.mu.Lock()
	old := n.local[user]
	n.local[user] = bd
	n.users[user] = userEntry{Node: n.cfg.id, Session: s.ID(), rev: bd.rev}
	s.Set(bindKey{n}, user)
	n.mu.Unlock()
	if old != nil && old.s != s {
		n.displace(ctx, old)
	}
	// After bd is in the table: an end seen at once must find it there.
	stop := context.AfterFunc(s.Context(), func() { n.sessionEnded(user, s) })
	n.mu.Lock()
	if bd.gone {
		stop()
	} else {
		bd.stop = stop
	}
	n.mu.Unlock()
	n.log.Debug("bound", zap.String("user", user), zap.Stringer("session", s))
	return nil
}

// kvError turns the error of a cluster operation into ErrUnavailable when
// NATS is gone, or went away during the operation.
func (n *Node) kvError(what string, err error) error {
	if !n.live.Load() || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		n.refused.Add(1)
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	return fmt.Errorf("cluster: %s: %w", what, err)
}

// User returns the user id s is bound to.
func (n *Node) User(s *session.Session) (string, bool) {
	v, ok := s.Get(bindKey{n})
	if !ok {
		return "", false
	}
	return v.(string), true
}

// Where returns the id of the live node where user is logged in, as this
// node's replica of the directory knows it.
func (n *Node) Where(user string) (node string, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.local[user] != nil {
		return n.cfg.id, true
	}
	e, ok := n.users[user]
	if !ok || e.Node == n.cfg.id || n.nodes[e.Node] == nil {
		return "", false
	}
	return e.Node, true
}

// displace ends a local binding whose user logged in elsewhere: the
// session leaves its groups and is kicked.
func (n *Node) displace(ctx context.Context, bd *binding) {
	n.mu.Lock()
	if bd.gone {
		n.mu.Unlock()
		return
	}
	bd.gone = true
	user, _ := n.User(bd.s)
	if n.local[user] == bd {
		delete(n.local, user)
	}
	keys := n.leaveGroupsLocked(user, bd)
	stop := bd.stop
	n.mu.Unlock()
	if stop != nil {
		stop()
	}
	bd.s.Delete(bindKey{n})
	_ = n.deleteMembers(ctx, keys) // unavailable: reconcile removes them on rejoin
	if bd.s.Err() == nil {
		n.kicked.Add(1)
		n.log.Info("kicked: logged in elsewhere", zap.String("user", user), zap.Stringer("session", bd.s))
		_ = bd.s.Kick() // it may have ended meanwhile
	}
}

// sessionEnded queues an ended session for the loop to unbind. It runs in
// the goroutine of context.AfterFunc and returns at once.
func (n *Node) sessionEnded(user string, s *session.Session) {
	n.mu.Lock()
	n.ended = append(n.ended, ended{user, s})
	n.mu.Unlock()
	n.signal()
}

// unbindEnded removes the bindings and memberships of ended sessions.
func (n *Node) unbindEnded(ctx context.Context) {
	n.mu.Lock()
	list := n.ended
	n.ended = nil
	type del struct {
		user   string
		rev    uint64
		groups []purgeKey
	}
	var dels []del
	for _, e := range list {
		bd := n.local[e.user]
		if bd == nil || bd.s != e.s {
			continue // displaced already
		}
		bd.gone = true
		delete(n.local, e.user)
		delete(n.users, e.user)
		dels = append(dels, del{e.user, bd.rev, n.leaveGroupsLocked(e.user, bd)})
	}
	n.mu.Unlock()
	if len(dels) == 0 {
		return
	}
	b := n.kv.Load()
	if b == nil || n.conn() == nil {
		return // reconcile removes them when the node rejoins
	}
	octx, cancel := n.opCtx(context.WithoutCancel(ctx))
	defer cancel()
	for _, d := range dels {
		_ = n.deleteMembers(octx, d.groups) // unavailable: reconcile removes them on rejoin
		if d.rev == 0 {
			continue
		}
		// The revision guards a newer login elsewhere.
		if err := b.users.Delete(octx, token(d.user), jetstream.LastRevision(d.rev)); err != nil {
			n.log.Debug("unbind", zap.String("user", d.user), zap.Error(err))
		}
	}
}

// Push sends data to each of users wherever they are logged in: one ENet
// packet shared by the recipients on this node (Host.Multicast), and one
// NATS message per other node that has any, which that node sends the
// same way. It returns how many of users it found in the directory; the
// others are skipped. data must not be modified afterwards.
//
// While the node is not joined only local users are reached, and the
// error matches ErrUnavailable (the remote part counts in Stats.Lost).
func (n *Node) Push(ctx context.Context, users []string, ch uint8, data []byte, flag netloop.Flag) (int, error) {
	if len(data) == 0 {
		return 0, fmt.Errorf("cluster: push: %w", netloop.ErrEmpty)
	}
	var peers []netloop.Peer
	remote := make(map[string][]string)
	n.mu.Lock()
	for _, u := range users {
		if bd := n.local[u]; bd != nil {
			peers = append(peers, bd.s.Peer())
			continue
		}
		if e, ok := n.users[u]; ok && e.Node != n.cfg.id && n.nodes[e.Node] != nil {
			remote[e.Node] = append(remote[e.Node], u)
		}
	}
	n.mu.Unlock()
	found := len(peers)
	if len(peers) > 0 {
		if err := n.srv.Host().Multicast(ctx, peers, ch, data, flag); err != nil {
			return 0, fmt.Errorf("cluster: push: %w", err)
		}
	}
	if len(remote) == 0 {
		return found, nil
	}
	nc := n.conn()
	if nc == nil {
		n.lost.Add(uint64(len(remote)))
		return found, n.unavailable("push")
	}
	for node, us := range remote {
		body := appendPacket(nil, packet{ch: ch, flag: flag, users: us, data: data})
		if err := nc.Publish(n.nodeSubject(node, "push"), body); err != nil {
			n.lost.Add(1)
			return found, n.kvError("push", err)
		}
		n.published.Add(1)
		found += len(us)
	}
	return found, nil
}

// onPush delivers a push from another node to the local users it names.
func (n *Node) onPush(m *nats.Msg) {
	n.received.Add(1)
	p, err := parsePacket(m.Data)
	if err != nil {
		n.malformed.Add(1)
		n.log.Debug("push", zap.Error(err))
		return
	}
	peers := make([]netloop.Peer, 0, len(p.users))
	n.mu.Lock()
	for _, u := range p.users {
		if bd := n.local[u]; bd != nil {
			peers = append(peers, bd.s.Peer())
		}
	}
	n.mu.Unlock()
	if len(peers) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(*n.ctx.Load(), n.cfg.timeout)
	defer cancel()
	if err := n.srv.Host().Multicast(ctx, peers, p.ch, p.data, p.flag); err != nil {
		n.log.Debug("push", zap.Error(err))
	}
}

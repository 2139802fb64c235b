package session

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/enetkit/enetkit/netloop"
)

// Group is a set of sessions of one server, such as a room, that can be sent
// a message with one call. Sessions leave their groups when they end. A
// Group is safe for concurrent use.
type Group struct {
	srv *Server

	mu      sync.Mutex
	members map[*Session]struct{}
	peers   atomic.Pointer[[]netloop.Peer]   // immutable snapshot for Broadcast
	byHost  atomic.Pointer[[][]netloop.Peer] // the same, per host, with several hosts (NewForGroup)
}

// NewGroup returns an empty group of the server's sessions. A handler that
// makes groups as it goes needs no reference to the server kept from
// set-up: Session.Server gives it.
func (srv *Server) NewGroup() *Group {
	g := &Group{srv: srv, members: make(map[*Session]struct{})}
	g.publish()
	return g
}

// Add puts s in the group. It returns an error wrapping ErrEnded if s has
// ended, and ErrForeignSession if s belongs to another server.
func (g *Group) Add(s *Session) error {
	if s.srv != g.srv {
		return ErrForeignSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return s.end // written before ended was set, under s.mu
	}
	if s.groups == nil {
		s.groups = make(map[*Group]struct{})
	}
	s.groups[g] = struct{}{}
	g.mu.Lock()
	g.members[s] = struct{}{}
	g.publish()
	g.mu.Unlock()
	return nil
}

// Remove takes s out of the group, if it is in it, and returns how many
// sessions the group still has.
func (g *Group) Remove(s *Session) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, g)
	return g.remove(s)
}

func (g *Group) remove(s *Session) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.members[s]; ok {
		delete(g.members, s)
		g.publish()
	}
	return len(g.members)
}

// publish replaces the broadcast snapshot; g.mu is held.
func (g *Group) publish() {
	peers := make([]netloop.Peer, 0, len(g.members))
	for s := range g.members {
		peers = append(peers, s.peer)
	}
	g.peers.Store(&peers)
	if len(g.srv.hosts) > 1 {
		g.byHost.Store(g.srv.split(peers))
	}
}

// Len returns the number of sessions in the group.
func (g *Group) Len() int { return len(*g.peers.Load()) }

// Contains reports whether s is in the group.
func (g *Group) Contains(s *Session) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.members[s]
	return ok
}

// Sessions returns the group's members, in no particular order.
func (g *Group) Sessions() []*Session {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Session, 0, len(g.members))
	for s := range g.members {
		out = append(out, s)
	}
	return out
}

// Broadcast sends data to every member with one command to the host's loop
// and one ENet packet that all of them share, so data is copied once
// however large the group. It retains nothing: data may be reused once it
// returns.
func (g *Group) Broadcast(ctx context.Context, ch uint8, data []byte, flag netloop.Flag) error {
	if len(g.srv.hosts) > 1 {
		return g.srv.multicast(ctx, *g.byHost.Load(), ch, data, flag)
	}
	return g.srv.host.Multicast(ctx, *g.peers.Load(), ch, data, flag)
}

package room

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/session"
	"github.com/enetkit/enetkit/session/cluster"
)

// ErrTicket: a join's ticket is unknown here or its reservation expired.
var ErrTicket = errors.New("room: reservation unknown or expired")

// reserveService is the cluster service that reserves a seat on the
// room's node for a join that arrived at another.
const reserveService = "room.reserve"

// registryName is the cluster registry of rooms.
const registryName = "rooms"

// maxRedirectTries bounds the other nodes' rooms a join by kind tries
// before it creates a room here.
const maxRedirectTries = 3

// WithCluster makes the server a node of a cluster (package
// session/cluster; opts are its options: WithURL or WithServer is
// required). Its rooms are listed in the cluster's directory, a join that
// arrives here is answered with a Redirect to the node of its room, and
// Run runs the node (which runs the sessions). Server.Node returns the
// node, to use for the rest of the cluster (Bind, groups, services)
// before Run.
func WithCluster(opts ...cluster.Option) Option {
	return func(s *Server) error {
		s.clustered = true
		s.clusterOpts = append(s.clusterOpts, opts...)
		return nil
	}
}

// WithReservation sets how long a seat reserved for a join from another
// node is held for the player to arrive (default 5s, 100ms..1m).
func WithReservation(d time.Duration) Option {
	return durationOption("reservation", d, 100*time.Millisecond, time.Minute, func(s *Server) { s.reservation = d })
}

// Node returns the server's cluster node, nil without WithCluster.
func (srv *Server) Node() *cluster.Node { return srv.node }

// joinCluster makes the server's node, its registry of rooms and its
// reservation service.
func (srv *Server) joinCluster() error {
	opts := append([]cluster.Option{cluster.WithLogger(srv.log)}, srv.clusterOpts...)
	node, err := cluster.New(srv.sess, opts...)
	if err != nil {
		return err
	}
	reg, err := node.Registry(registryName)
	if err != nil {
		return err
	}
	cluster.Serve(node, reserveService, dispatch.JSON, srv.serveReserve)
	srv.node, srv.reg = node, reg
	return nil
}

// Directory returns the rooms of kind (every kind if kind is "") on every
// live node of the cluster, this one's included, fullest first; without a
// cluster it is List. Other nodes' rooms are as the directory last said,
// a millisecond or so behind. It is safe for concurrent use.
func (srv *Server) Directory(kind string) []Info {
	if srv.reg == nil {
		return srv.List(kind)
	}
	var out []Info
	for _, e := range srv.reg.Entries() {
		var info Info
		if err := json.Unmarshal(e.Value, &info); err != nil {
			srv.log.Debug("directory entry", zap.String("node", e.Node), zap.Error(err))
			continue
		}
		if kind == "" || info.Kind == kind {
			info.Node = e.Node
			out = append(out, info)
		}
	}
	slices.SortStableFunc(out, func(a, b Info) int { return cmp.Compare(b.Members, a.Members) })
	return out
}

// publish puts e's listing in the cluster's directory; srv.mu is held.
// It does not wait: the registry writes it.
func (srv *Server) publish(e *entry) {
	if srv.reg == nil {
		return
	}
	b, err := json.Marshal(e.info)
	if err == nil {
		err = srv.reg.Put(e.info.ID, b)
	}
	if err != nil {
		srv.log.Warn("directory", zap.String("room", e.info.ID), zap.Error(err))
	}
}

// held returns the seats of r that are taken or reserved.
func (srv *Server) held(r *Room) int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if e := srv.rooms[r.id]; e != nil && e.r == r {
		return e.info.Members
	}
	return 0
}

// ticket is a seat held for a join from another node.
type ticket struct {
	e     *entry
	timer *time.Timer
}

type reserveReq struct {
	Room string `json:"room"`
}

type reserveResp struct {
	Room      string `json:"room"`
	Ticket    string `json:"ticket"`
	Addr      string `json:"addr"`
	TTLMillis int64  `json:"ttl_ms"`
}

// serveReserve holds a seat in one of this node's rooms for a player that
// another node redirects here, for the reservation time.
func (srv *Server) serveReserve(_ context.Context, req reserveReq) (reserveResp, error) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed {
		return reserveResp{}, ErrClosed
	}
	e := srv.rooms[req.Room]
	if err := srv.take(e, req.Room); err != nil {
		return reserveResp{}, err
	}
	id := newToken()
	srv.tickets[id] = &ticket{e: e, timer: time.AfterFunc(srv.reservation, func() { srv.expire(id) })}
	return reserveResp{Room: e.info.ID, Ticket: id, Addr: srv.node.Addr(),
		TTLMillis: srv.reservation.Milliseconds()}, nil
}

// expire gives back the seat of a ticket nobody claimed.
func (srv *Server) expire(id string) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	t := srv.tickets[id]
	if t == nil {
		return
	}
	delete(srv.tickets, id)
	if srv.rooms[t.e.info.ID] == t.e {
		t.e.info.Members--
		srv.publish(t.e)
	}
}

// claim takes the seat a ticket holds: the join goes to its room.
func (srv *Server) claim(id string) (*Room, error) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	t := srv.tickets[id]
	if t == nil {
		return nil, ErrTicket
	}
	delete(srv.tickets, id)
	t.timer.Stop()
	if srv.rooms[t.e.info.ID] != t.e {
		return nil, fmt.Errorf("%w: %s", ErrNoRoom, t.e.info.ID)
	}
	return t.e.r, nil
}

// dropTickets stops the reservations' timers once the rooms have ended.
func (srv *Server) dropTickets() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for id, t := range srv.tickets {
		t.timer.Stop()
		delete(srv.tickets, id)
	}
}

// redirect looks in the directory for another node's room for req (the
// room req names, or an open room of its kind, fullest first), has that
// node reserve a seat, and sends the player a Redirect there. done is
// false if there is no such room or no node could reserve one: the join
// is then this node's to serve (a new room of the kind, or ErrNoRoom).
// A join by ID whose room is on a node that fails to reserve is done,
// with that node's error.
func (srv *Server) redirect(ctx context.Context, s *session.Session, req JoinMsg) (done bool, err error) {
	self := srv.node.ID()
	var cands []Info
	for _, info := range srv.Directory(req.Kind) {
		switch {
		case info.Node == self:
		case req.Room != "":
			if info.ID == req.Room {
				cands = append(cands, info)
			}
		case !info.Locked && info.Members < info.MaxMembers:
			cands = append(cands, info)
		}
	}
	for i, info := range cands {
		if i == maxRedirectTries {
			break
		}
		resp, err := cluster.Call[reserveReq, reserveResp](ctx, srv.node, reserveService, info.Node,
			dispatch.JSON, reserveReq{Room: info.ID})
		if err != nil {
			srv.log.Debug("remote reserve", zap.String("room", info.ID), zap.String("node", info.Node), zap.Error(err))
			if req.Room != "" {
				return true, err
			}
			continue
		}
		msg := RedirectMsg{Req: req.Req, Room: resp.Room, Node: info.Node, Addr: resp.Addr,
			Ticket: resp.Ticket, TTLMillis: resp.TTLMillis}
		return true, Redirect.Send(ctx, s, msg) // if it fails, the reservation expires
	}
	return false, nil
}

package session

import (
	"context"
	"errors"

	"github.com/enetkit/enetkit/netloop"
)

// NewForGroup returns a server for the sessions of every host of g (see
// netloop.Group); it starts nothing. Run runs the group and one consumer
// goroutine per host, so that the hosts share nothing on a message's path:
// each host's loop hands its events to its own consumer, which feeds its
// own sessions' inboxes, and a session sends through its peer's host
// (netloop.Peer.Host). The sessions of all hosts are one server's: Stats,
// the Observer and Groups span them. A Group's Broadcast sends one
// Multicast to each host that serves a member.
func NewForGroup(g *netloop.Group, h Handler, opts ...Option) (*Server, error) {
	hosts := g.Hosts()
	srv, err := New(hosts[0], h, opts...)
	if err != nil {
		return nil, err
	}
	srv.hosts = hosts
	srv.group = g
	return srv, nil
}

// Hosts returns the server's hosts: Host alone, or a group's, in a new slice.
func (srv *Server) Hosts() []*netloop.Host { return append([]*netloop.Host(nil), srv.hosts...) }

// split sorts peers by host, in the order of srv.hosts.
func (srv *Server) split(peers []netloop.Peer) *[][]netloop.Peer {
	out := make([][]netloop.Peer, len(srv.hosts))
	for _, p := range peers {
		for i, h := range srv.hosts {
			if p.Host() == h {
				out[i] = append(out[i], p)
				break
			}
		}
	}
	return &out
}

// multicast sends data to the peers of each host, with one Multicast per
// host that has any; it returns the hosts' errors joined.
func (srv *Server) multicast(ctx context.Context, byHost [][]netloop.Peer, ch uint8, data []byte, flag netloop.Flag) error {
	var err error
	for i, peers := range byHost {
		if len(peers) > 0 {
			err = errors.Join(err, srv.hosts[i].Multicast(ctx, peers, ch, data, flag))
		}
	}
	return err
}

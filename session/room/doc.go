// Package room runs authoritative game rooms on a session server: each room
// is one goroutine that owns its state and advances it on a fixed tick,
// players have an identity that outlives their connection, and a player
// whose connection drops comes back to its seat within a reconnection
// window. Package client (session/room/client) is the Go counterpart.
//
// # Usage
//
//	var Move = dispatch.NewRoute[MoveMsg](16, dispatch.JSON, 1, netloop.Unreliable)
//	var State = dispatch.NewRoute[StateMsg](17, dispatch.JSON, 1, netloop.Unreliable)
//
//	type game struct {
//		room.Base // no-op hooks
//		pos map[*room.Member]Vec
//	}
//
//	func (g *game) Init(r *room.Room, params map[string]string) (room.Config, error) {
//		g.pos = map[*room.Member]Vec{}
//		return room.Config{TickRate: 30, MaxMembers: 8}, nil
//	}
//
//	func (g *game) Tick(r *room.Room, t *room.Tick) {
//		for _, in := range t.Inputs {
//			g.pos[in.Member] = g.pos[in.Member].Add(in.Value.(MoveMsg).Dir)
//		}
//		State.Broadcast(r.Context(), r, g.state()) // one packet for all, after the tick
//	}
//
//	srv, err := room.New(host)
//	srv.Register("game", func() room.Handler { return &game{} })
//	room.HandleInput(srv, Move)
//	return srv.Run(ctx)
//
// # One goroutine per room
//
// A room's Handler is called only from the room's goroutine: Init (before
// the room starts), JoinAttempt, Join, Leave, Dropped, Back, Tick, Signal,
// Terminate, and the functions given to Room.After. Its fields are the
// room's state and need no lock or atomic. Player inputs are decoded in the
// players' session goroutines (there is no goroutine per member besides the
// session's) and handed to the room as one batch per tick, in arrival
// order. Requests from elsewhere (Server.Signal, a matchmaker) go through
// the room's goroutine too.
//
// # Ticks
//
// A room ticks at Config.TickRate (1..128 Hz) on absolute deadlines: tick
// n is due at start + n/TickRate, however long the ticks before it took, so
// the rate does not drift with the work done. A tick that begins a whole
// step or more late counts as an overrun; a room that fell behind runs the
// missed ticks back to back, at most MaxCatchUp of them, and skips the rest
// (Stats.Skipped), keeping its phase. Tick.Dt is the fixed step (simulate
// with it); Tick.Elapsed is the real time since the previous tick.
// Config.SnapshotEvery sets Tick.Snapshot on every n-th tick, so snapshots
// can go out at a lower rate than the simulation runs. Room.After runs
// timers on the room's clock (Room.Now), in the room's goroutine. On
// Linux a Server wakes its rooms from one timerfd that the runtime's
// network poller waits on, so a tick begins within tens of microseconds of
// its deadline, where a Go timer may fire up to a millisecond late (the
// runtime sleeps in whole milliseconds when it has nothing to run);
// elsewhere each room has a Go timer. On a loaded machine add whatever
// wait for a CPU the operating system imposes on any thread that wakes; a
// real-time policy for the server (chrt -f) removes most of that wait, at
// a cost in CPU (the README's arena figures give both).
//
// # Sending
//
// Rooms send with the same dispatch routes as session handlers: a Room is a
// dispatch.Broadcaster (every connected member, one ENet packet they
// share), Room.Except(m) reaches all but one, and a *Member is a
// dispatch.Sender (per-member data such as interest-managed snapshots, with
// no goroutine hop per member). What a hook sends is queued and leaves
// after the hook returns, in order, all of a tick's messages together.
// Choose channels and flags per route: reliable events on one channel,
// unreliable snapshots on another, so a lost snapshot never holds up an
// event.
//
// # Lifecycle
//
// Players join with the protocol's Join message (package client): by room
// ID, or by kind, which seats them in the oldest open room of that kind with
// a free seat and creates one if there is none (JoinOrCreate). A room has
// Config.MaxMembers seats; Room.SetLocked keeps new players out; an empty
// room closes after the empty grace (WithEmptyGrace); Server.List lists
// rooms with their labels. Cancelling Run shuts down gracefully: every
// room's Terminate runs with the shutdown grace, members are told (Left,
// "shutdown") and the messages are delivered before the host drains.
//
// # Identity, liveness and reconnection
//
// A player says Hello first and gets an ID and a token. A player whose
// connection is lost (timeout, network change; not a deliberate
// disconnect) is dropped: its seat and Member.Data are kept, the room's
// Dropped hook runs and the other members see "dropped". If it says Hello
// again with its token within the reconnection window (WithReconnectWindow,
// default 10s), it is back in its seat (Back hook, "back"); otherwise it
// leaves with LeaveExpired. Liveness is the room's business, not ENet's
// 5–30s default: an identified player's connection is pinged often and
// times out after WithLiveness (default 1.5s), so a killed player is
// dropped within about 2s.
//
// # Across a cluster
//
// WithCluster makes the server a node of a cluster (package
// session/cluster, over NATS); Run then runs the node, which runs the
// sessions. Room IDs get the node's id ("arena-3@node-b"), and every room
// is listed in the cluster's directory (a cluster.Registry, bucket
// <prefix>-reg-rooms, one entry per room: Info with kind, label, node,
// the node's ENet address, seats taken or reserved, max members,
// locked), written when it opens, when a seat is taken, reserved or
// given back, when its label or lock changes, and deleted when it closes.
// A node's rooms leave the directory with it: a node that stops deletes
// them; a dead node's are hidden once the others drop it (within the
// cluster's TTL) and deleted a TTL later. Server.Directory lists every
// live node's rooms.
//
// A join by kind that arrives at a node is served there if one of its
// rooms has a free seat; otherwise it goes to another node's open room of
// the kind (fullest first, as the directory has them, up to three
// tried); otherwise a room is created here. A join by ID of another
// node's room goes to that node. Going to another node: this node asks
// the room's node (a cluster request, "room.reserve") to reserve a seat;
// that node takes it like any join would (it counts against MaxMembers,
// so reservations cannot overfill a room, and it is refused if the room
// is full or locked) and issues a ticket that expires after the
// reservation time (WithReservation, default 5s), when the seat is given
// back. The player is answered with a Redirect (the room, the node, its
// ENet address, the ticket); package client follows it by itself: it
// disconnects, connects to that node, says Hello there (the player's
// identity is per node: it gets a new one) and joins with the ticket.
// From then on that node is the client's server, for reconnections too.
// JoinAttempt runs when the player arrives. Two nodes that each see no
// open room may both create one: rooms fill per node first, and the
// directory does not lock across nodes.
//
// Without NATS (unreachable, or the node rejoining), a node goes on
// serving joins with its own rooms: a join by kind that the directory
// would send elsewhere is served here (the reservation request fails at
// once with cluster.ErrUnavailable and a room is created here), and a
// join by ID of another node's room is refused with that error. The
// directory's writes wait and are made again, in full, when the node
// rejoins.
package room

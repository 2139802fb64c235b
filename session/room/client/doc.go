// Package client is the Go counterpart of package room's server: it
// connects to a room server over ENet, identifies the player, joins
// rooms, sends and receives the same declared dispatch routes as the
// server, and reconnects by itself after a lost connection, coming back
// to its seat with the token the server issued.
//
// One Host (one ENet host, one goroutine) carries many clients, so a bot
// or load test runs hundreds of players without a thread each:
//
//	h, err := client.NewHost(netloop.WithChannels(2))
//	c := h.Client("127.0.0.1:7000", client.WithName("bot-1"))
//	client.Handle(c, game.Snapshot, func(s game.State) { ... })
//	g.Go(func() error { return h.Run(ctx) })
//	g.Go(func() error { return c.Run(ctx) })
//	joined, err := c.Join(ctx, room.JoinMsg{Kind: "arena"})
//	err = game.Move.Send(ctx, c, game.Input{...})
//
// A Client's handlers run in its Run goroutine, one at a time, in the
// order the messages arrived.
//
// # Reconnection
//
// A client watches its connection as the server does (WithLiveness:
// ENet's timeout and ping interval on the connection), so a vanished
// server is noticed within about two seconds rather than ENet's 5–30s.
// A lost connection is made again with backoff (50ms doubling to 1s), and
// the client says Hello with the token the server gave it, which puts the
// player back in its seat (OnJoined with Resumed set). Run gives up, with an
// error, after WithReconnectWindow without a connection. Messages are not
// queued across connections: Send without one returns ErrNotConnected.
//
// # Clusters
//
// A room server that is a node of a cluster may answer a Join with a
// redirect to the node where the room lives (room.RedirectMsg). Join
// follows it by itself: it disconnects, connects to that node,
// identifies as a new player there and joins with the seat reservation's
// ticket, and returns the seat (Stats.Redirects counts them). The node is
// the client's server from then on.
//
// # Slow clients
//
// The Host never waits for a client: each has a bounded inbox
// (WithInbox); unreliable messages that do not fit are dropped and
// counted (Stats.EventsDropped), and a reliable one that does not fit resets
// the connection, so that a handler never sees a gap in a reliable stream
// (the client then reconnects).
package client

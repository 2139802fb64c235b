// Package session runs one goroutine per connected peer of a netloop.Host,
// each serving a Session with a user Handler, in the manner of net/http.
//
// # Usage
//
//	host, err := netloop.New("*:6789", netloop.WithPeers(1024))
//	if err != nil { ... }
//	srv, err := session.New(host, session.HandlerFunc(func(ctx context.Context, s *session.Session) error {
//		for {
//			m, err := s.Receive(ctx)
//			if err != nil {
//				return nil // the session ended (errors.Is(err, session.ErrEnded))
//			}
//			if err := s.Send(ctx, m.Channel, m.Data, m.Flag); err != nil {
//				return err
//			}
//		}
//	}))
//	if err != nil { ... }
//	return srv.Run(ctx) // runs the host and the sessions; drains on cancel
//
// The words for end reasons, slow-consumer policies and gone peers are
// netloop's (see its Vocabulary): Reason<Why>, Slow<Policy>, and
// errors.Is(err, netloop.ErrGone) for a send to a session that has ended.
//
// # Guarantees
//
// A session sees, strictly in order for its peer, every message received
// after its connect (with channel and flag), then its end: Receive returns
// the messages, then an *EndError with the Reason (ReasonRemote with the
// peer's data, ReasonTimeout, ReasonClosed, ReasonKicked, ReasonShutdown,
// ReasonSlow, ReasonHandlerError or ReasonHandlerPanic), which is also
// context.Cause of the session's Context. The Context is cancelled at the
// end, while Receive still returns the messages that came before it: work
// a handler must finish for them takes context.WithoutCancel(ctx). Session IDs
// are never reused while the process lives, however ENet reuses its peer
// slots.
//
// # Routing
//
// Run routes each host's events from the host's loop goroutine (as the
// host's inline handler, see netloop.WithInline) straight into the
// sessions' inboxes: a message goes loop -> session goroutine -> loop,
// with no server goroutine between, which is what Serve, the channel path
// kept for hosts run another way, costs. Routing never waits (a full inbox
// is the SlowPolicy's), so the loop is never held up by a session; after
// delivering, it yields once so that the session goroutines it woke answer
// in the same batch. Observer methods and the server's log calls run on
// the loop goroutine too. Measured side by side (2 cores, 64 clients x 8
// echoes in flight, C load generator), session + dispatch went from 0.96x
// to 1.15x the messages per second of a hand-written go-enet loop (1.09x
// in another run); its CPU per message at a fixed 20,000 messages/s stayed
// about the hand-written loop's (1.02x to 1.08x): waking the session
// goroutines' threads is the cost (see netloop's Inline handlers).
//
// # Slow handlers
//
// Each session has a bounded inbox (WithInbox). A message that does not fit
// is never waited for: the SlowPolicy drops it or disconnects the session,
// counts it in Stats, tells the Observer and logs it. One slow session
// therefore never stalls the host's loop or another session.
//
// # Failures and shutdown
//
// A handler that returns an error or panics ends its own session only. When
// Run's context is cancelled the host drains (see netloop): it stops
// accepting peers, delivers what was queued, disconnects every peer, and
// every session ends with ReasonShutdown; Run returns nil after every handler has
// returned.
//
// # Groups
//
// A Group is a set of sessions, such as a room. Group.Broadcast reaches all
// of them with one command to the host's loop and one ENet packet they
// share. Sessions leave their groups when they end.
//
// # Host groups
//
// NewForGroup serves the hosts of a netloop.Group (several hosts on one
// port, one loop each) as one server: one consumer goroutine per host, so
// the hosts share nothing on a message's path, and one set of sessions,
// Stats and Groups across them.
package session

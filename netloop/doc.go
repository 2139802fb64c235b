// Package netloop drives an ENet 1.3 host (reliable UDP, libenet through
// github.com/codecat/go-enet) from one goroutine and exposes it as Go
// channels and methods that are safe for concurrent use.
//
// # Usage
//
//	h, err := netloop.New("127.0.0.1:6789", netloop.WithPeers(256), netloop.WithChannels(2))
//	if err != nil { ... }
//	g, ctx := errgroup.WithContext(ctx)
//	g.Go(func() error { return h.Run(ctx) })
//	g.Go(func() error {
//		for ev := range h.Events() {
//			switch ev.Kind {
//			case netloop.EventConnect:    // ev.Peer, ev.Addr, ev.Data
//			case netloop.EventReceive:    // ev.Peer, ev.Channel, ev.Flag, ev.Payload
//				h.Send(ctx, ev.Peer, ev.Channel, ev.Payload, ev.Flag)
//			case netloop.EventDisconnect: // ev.Peer, ev.Reason, ev.Data
//			}
//		}
//		return nil
//	})
//	return g.Wait()
//
// Every lua-enet call has an equivalent here; the README lists them.
//
// # Vocabulary
//
// netloop, session and dispatch use one set of words, each for one thing:
//
//   - Events: an Event's Kind is EventConnect, EventReceive or
//     EventDisconnect. The verbs alone (Connect, Disconnect) are calls.
//   - End reasons: why a connection (netloop.Reason) or a session
//     (session.Reason) ended, always Reason<Why>: ReasonRemote,
//     ReasonTimeout, ReasonShutdown, ReasonSlow... A session's reason says
//     more than its connection's (ReasonKicked, ReasonHandlerError).
//   - Slow consumers: what to do with a received message for a consumer
//     that has fallen behind, SlowPolicy in netloop (the Events consumer)
//     and in session (a handler's inbox): SlowDropUnreliable (the default:
//     drop unreliable messages, disconnect rather than leave a gap in a
//     reliable stream), SlowDropAll, SlowDisconnect. The end it causes is
//     ReasonSlow.
//   - The outbound limit: what to do with a message for a peer that does not
//     take what it is sent, OutboundPolicy: OutboundDropUnreliable,
//     OutboundDisconnect, OutboundWait; the end is ReasonOutboundLimit.
//   - Bad messages (dispatch): RejectPolicy (RejectDrop, RejectDisconnect)
//     says what a Mux does with one, RejectReason says why it is one.
//   - Timeouts: Timeout is ENet's settings for declaring a peer lost
//     (SetTimeout, or WithTimeout for every connection); the end is
//     ReasonTimeout. A zero field of Timeout or Throttle means ENet's default.
//   - Options: a constructor's options are checked when it runs; one out of
//     range makes it return an error (ErrRange here, ErrOption in the other
//     packages), never a silent clamp. Options that set a size and options
//     that set a policy are separate (WithMaxPending, WithSlowPolicy).
//   - Gone peers: errors.Is(err, ErrGone) holds for every error that means
//     the connection is over (ErrClosed, ErrStalePeer, ErrNotConnected, and
//     a session's EndError): the one check a sender needs.
//   - Sends: the context, then where, then what: Host.Send(ctx, peer, ch,
//     data, flag), Session.Send(ctx, ch, data, flag), and for a declared
//     dispatch.Route, Route.Send(ctx, session, v).
//
// # Ownership
//
// ENet has no locks. The goroutine in Run is the only one that calls into
// ENet or touches its memory: the host, its peers and its packets. Other
// goroutines send it commands on a buffered channel (a send is a plain value:
// no allocation on the way) and receive Events on another. A Peer is a
// handle, never a C pointer: ENet reuses peer slots, and a handle to a
// connection that has ended returns ErrStalePeer instead of addressing the
// slot's next occupant. Callers check handles, channels and sizes
// themselves, lock-free, against a per-slot record the loop publishes, so
// most bad input fails at once with a clear error.
//
// # The loop
//
// Each iteration runs up to 256 queued commands, moves waiting events into
// the Events channel, then calls enet_host_service once, without waiting,
// and drains every event ENet has already dispatched with
// enet_host_check_events. The service call also sends everything queued.
// Received payloads are copied once, into Go memory the consumer owns;
// packets are freed in C at the next service call, so a receive costs one
// allocation and no extra cgo call. A send costs one copy, into the ENet
// packet. After an iteration that delivered events, the loop yields once:
// the consumers it woke run at once on its processor, and what they answer
// goes out in the next service call, without a wake-up datagram.
//
// # Acknowledgements ride with answers
//
// ENet acknowledges reliable messages in the service call that reads them,
// in datagrams of their own, before the application has seen them. The
// host's intercept ends the service call after the last waiting datagram
// that carries a message, instead, so that the acknowledgements leave with
// the answers, in one datagram per peer, at the next service call; if
// nothing is answered, they leave before the loop waits. A request-reply
// exchange costs each side one datagram instead of two.
// WithImmediateAcks keeps ENet's own behaviour.
//
// # Batched reads and sends
//
// ENet reads its socket with one recvmsg per datagram, then one more that
// finds it empty, and sends with one sendmsg per datagram. netloop defines
// enet_socket_receive and enet_socket_send itself: the dynamic linker
// prefers them to libenet's for libenet's own calls. While a netloop host
// is serviced, the first reads up to 16 datagrams with one recvmmsg and
// hands them to ENet one by one, knows without another read which one was
// the last waiting, and asks the kernel no more once a batch left the
// socket empty; the second sends the first datagram of each call at once,
// as ENet does (a lone answer waits for nothing), and gathers the next
// ones, a broadcast's or a busy service call's, for sendmmsg, up to 32 at
// a time, before ENet starts reading and when the call ends. Other ENet
// hosts in the process (go-enet's own) use libenet's functions,
// unchanged. Stats.Reads and Stats.Writes count the system calls; each
// host keeps about 115 KB of buffers for them. (With a libenet that does
// not let its symbols be replaced, netloop reads and sends as ENet does,
// and both stay 0.)
//
// # Waiting without spinning
//
// With nothing to do, the loop waits on the socket for up to the park
// interval (10ms by default), so datagrams from peers are handled the
// moment they arrive and an idle host costs almost nothing. A caller that
// queues a command while the loop is parked sends the host a 16-byte
// datagram holding the host's random cookie, from a socket of its own; the
// host's intercept callback consumes it. An atomic flag limits this to one
// datagram per parked period, so a busy loop pays nothing. The park
// interval only bounds how late ENet's own timers (retransmissions, pings,
// timeouts) may run.
//
// Waking a parked thread takes tens of microseconds on many machines. When
// the datagrams of the recent past came within the spin budget (50µs by
// default, WithSpin) of the loop going idle, as in a request-reply exchange,
// the loop polls the socket and the command queue for that long before it
// parks. When they come further apart, it parks at once: a host under
// steady load from many peers, or idle, does not poll.
//
// # Events and slow consumers
//
// Events arrive on one channel, in the order the loop saw them, which keeps
// each peer's order: its Connect, then its messages (reliable ones in order
// per channel), then exactly one Disconnect, including for DisconnectNow and
// Reset, for which ENet itself reports nothing. The loop never blocks on the
// consumer: events that do not fit the channel wait in a queue of up to
// WithMaxPending events. Beyond that, received messages are dropped by the
// slow-consumer policy (WithSlowPolicy; by default a peer whose reliable
// message is dropped is disconnected, so that no connection sees a gap) and
// counted in Stats.
// Connect and Disconnect events are never dropped.
//
// # Inline handlers
//
// WithInline (or Host.SetInline, before Run) replaces the Events channel
// with a function the loop calls for each event, in order, on its own
// goroutine. The function gets an Inline, whose Send, Broadcast, Multicast
// and Disconnect methods act at once, in the loop: an answer is handed to
// ENet during the call and leaves in the loop's next service call, with
// the acknowledgement of the message it answers, before the loop waits
// again. No command, no channel, no wake-up and no second goroutine is on
// a message's path. The Inline is valid only during the call; Host calls
// that would wait for the loop (Stats, PeerInfo, Flush, Connect, a Send on
// a full command channel) return ErrLoopGoroutine from it rather than
// wait forever. A Disconnect event caused by a call comes after the call.
//
// The trade-off: the handler owns the loop while it runs. It must not
// block, and whatever it costs delays every peer of the host, so it suits
// work that takes microseconds (decode, update state, answer, hand a
// message to another goroutine's bounded queue) and not I/O. What it buys
// is the cost of one goroutine: with a consumer goroutine, each burst of
// events readies the consumer, and at GOMAXPROCS > 1 the runtime wakes
// another thread to run it (a futex wake-up, a context switch, the
// consumer's answers crossing cores back to the loop); the loop's yield
// after a burst hands the loop itself to another thread for the same
// reason. The inline loop never yields unless its handler asks
// (Inline.Yield, for handlers that wake other goroutines, as package
// session does). Measured on a 2-core machine, side by side in one run
// (64 clients x 8 reliable 64-byte echoes in flight, C load generator),
// against a hand-written go-enet loop, in two runs of three rounds: the
// inline echo carried 1.34x and 1.23x its messages per second and used
// 0.73x and 0.86x its CPU per message, where the Events-channel echo
// carried 1.04x and 1.20x at 0.99x and 0.93x; at a fixed 20,000
// messages/s the inline echo used 0.78x and 0.92x the CPU per message
// (the channel echo 0.90x and 1.02x), at the same or a lower median
// latency. At that rate most of every server's CPU (80% of the profile)
// is the kernel: waking the process for each datagram, switching tasks,
// waking the peer it sends to. No hand-off changes that.
//
// # Sending
//
// Send, Broadcast and Multicast copy the message into an ENet packet in the
// caller's goroutine (creating a packet touches no host state) and retain
// nothing: the caller may reuse its buffer, and Multicast's peer list, as
// soon as they return, as with io.Writer. That copy is the only one; no Go
// memory is allocated per send. Above the MTU (about 1,370 bytes) ENet
// fragments a message: a reliable one into reliable fragments; an
// unreliable or unsequenced one into unreliable fragments (ENet alone would
// send those reliably), which arrive as Unreliable, since fragments are
// sequenced.
//
// ENet's queues have no bound: a peer that stops acknowledging, or reads
// more slowly than the host sends, would grow the host's memory until ENet
// gives up on it. WithOutboundLimit bounds what ENet holds for one peer (8
// MiB by default); beyond it unreliable messages are dropped and reliable
// ones disconnect the peer (ReasonOutboundLimit), or, with OutboundWait,
// Send waits for the queue to drain. Every loss is counted in Stats:
// Dropped, Throttled (unreliable messages ENet's packet throttle dropped,
// which ENet does not count), PeersOverLimit, SendsRejected.
//
// # Calls that end early
//
// A call whose context ends while the loop works on it returns ctx's
// error; the loop's answer goes into a channel the caller no longer reads,
// never into the caller's variables. A Connect whose context ends never
// starts the connection, or resets it; its Disconnect event still comes.
//
// # Hostile input
//
// A game server's port is public. ENet gives a peer slot to every CONNECT
// datagram, before its source has proved its address, and keeps it
// half-open for up to 30 seconds while it retransmits to that address: a
// flood of forged CONNECTs would lock every player out. The intercept
// admits CONNECTs itself: a CONNECT that finds no free slot takes the
// oldest half-open one (a half-open slot is never reset while others are
// free: under load, a real client's answer may wait a while in the socket's
// queue); one IPv4 address holds at most
// WithPerAddressLimit connections (32). A CONNECT refused for lack of a
// slot, or by the per-address limit, is answered at once with a
// disconnection whose data says why (RefusedFull, RefusedAddress), so a
// netloop client learns it in one round trip (ReasonRefused) rather than
// after half a minute. Stats counts half-open, evicted and refused.
// The limit of the defence is ENet's protocol: a slot is given before the
// client answers, so a real client connects during a flood as long as it
// answers within (slots / flood rate) seconds.
//
// ENet drops malformed datagrams itself; the intercept counts them
// (Stats.Malformed). libenet 1.3.17 makes enet_host_service fail for any
// datagram over 4096 bytes, which anyone can send; the datagram is consumed
// by then, so the loop counts the failure (Stats.ServiceErrors), logs it and
// goes on. Events waiting for a slow consumer are bounded in count
// (WithMaxPending) and bytes (WithMaxPendingBytes).
//
// # Shutdown
//
// When Run's context is cancelled, or Close is called, the host stops
// taking commands, runs those it accepted, disconnects every peer with
// disconnect_later (so queued reliable data is delivered first), services
// until they acknowledge or the drain timeout passes, resets the rest,
// destroys the ENet host, delivers the remaining events (waiting at most
// the drain timeout again for a consumer that stopped reading) and closes
// Events. No goroutine outlives Run. Stats still answers after Run has
// returned, with the final counters.
//
// # Debugging
//
// Built with the enetkit_debug tag (go test -tags enetkit_debug), every
// call into ENet checks that it runs on the goroutine that owns the host
// and panics otherwise, as x/net/http2's serveG.check() does. The check
// walks the stack, so normal builds leave it out.
package netloop

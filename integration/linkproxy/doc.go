// Package linkproxy is a UDP relay that impairs traffic in a deterministic
// way, used to put ENet clients and servers behind a simulated lossy
// Wi-Fi or mobile link in integration tests, or by hand (see
// examples/linkproxy).
//
// A Proxy listens on one UDP address and relays to one target. Each client
// source address gets its own upstream socket, so the target sees one
// distinct peer per client (ENet tells peers apart by address), and replies
// on that socket go back to that client.
//
// # Impairment model
//
// Each direction ([Upstream]: client to target, [Downstream]: target to
// client) has its own [Link] and its own pseudo-random stream. A datagram
// read by the proxy goes through these steps, in order:
//
//  1. Blackhole: while [Proxy.Blackhole] is on, the datagram is dropped.
//     Datagrams already delayed are dropped when they fall due, as on a
//     link that has gone away.
//  2. Burst loss (Gilbert model): the link is a two-state Markov chain.
//     Before each datagram it moves from good to bad with probability
//     BurstEnter and from bad to good with probability BurstExit. In the
//     bad state every datagram is dropped. Bursts last 1/BurstExit
//     datagrams on average; the link is bad
//     BurstEnter/(BurstEnter+BurstExit) of the time.
//  3. Independent loss: dropped with probability Loss.
//  4. Reordering: with probability Reorder the datagram is held back for an
//     extra ReorderDelay, so datagrams read within that time overtake it.
//  5. Duplication: with probability Duplicate a second copy is sent.
//  6. Delay: each copy is sent Delay plus a uniform jitter in
//     [-Jitter, +Jitter] (never less than zero) after it was read. Jitter
//     also reorders datagrams read less than 2*Jitter apart.
//
// Delayed datagrams wait in a per-direction queue of at most
// [Config.MaxQueue] datagrams, a min-heap serviced by one timer; more are
// dropped and counted, as are datagrams longer than [Config.MaxDatagram].
//
// # Determinism
//
// Each datagram that is not blackholed draws exactly six values from its
// direction's PCG stream, seeded by [Config.Seed]. So the fate of the n-th
// datagram of a direction (dropped, duplicated, reordered, its jitter)
// depends only on the seed, n and the Link in force; a test that sends the
// same sequence with the same seed sees the same drops. When several
// clients share a direction, n follows the order in which the proxy reads
// their datagrams.
//
// # Usage
//
//	p, err := linkproxy.New("127.0.0.1:0", serverAddr, linkproxy.Config{
//		Up:   linkproxy.Link{Loss: 0.05, Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond},
//		Down: linkproxy.Link{Loss: 0.05, Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond},
//		Seed: 1,
//	})
//	if err != nil {
//		return err
//	}
//	g.Go(func() error { return p.Run(ctx) }) // relays until ctx is cancelled
//	connect(p.Addr())                        // clients dial the proxy, not the server
//	p.SetLink(linkproxy.Downstream, linkproxy.Link{Loss: 0.5})
//	p.Blackhole(true)                        // the server vanishes
//	fmt.Printf("%+v\n", p.Stats())
package linkproxy

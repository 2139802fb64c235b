// Package cluster makes the session servers of several processes, on one
// machine or many, act as one: a user id is bound to one session
// cluster-wide, pushes reach users wherever they are connected, groups
// (rooms) span the servers, and nodes serve each other requests. It is
// built on NATS (github.com/nats-io/nats.go): core publish/subscribe for
// traffic, and JetStream key-value buckets for the directory.
//
// # Usage
//
//	srv := session.New(host, handler)
//	node, err := cluster.New(srv, cluster.WithURL("nats://10.0.0.1:4222"))
//	if err != nil { ... }
//	return node.Run(ctx) // runs srv too; leaves the cluster on cancel
//
// In the handler:
//
//	if err := node.Bind(ctx, s, userID); err != nil { ... } // kicks an older login
//	room, _ := node.Group("lobby")
//	room.Join(ctx, s)
//	room.Broadcast(ctx, ch, data, netloop.Reliable)       // every member, every node
//	node.Push(ctx, []string{"bob", "carol"}, ch, data, netloop.Reliable)
//
// WithServer("") runs a single node on an embedded, in-process NATS server;
// WithServer("0.0.0.0:4222") also lets other nodes join it with
// WithURL("nats://<that machine>:4222"): a single-binary deployment.
// Between nodes: Handle or Serve a named service, and Request or Call it
// on one node or on any (NATS queue groups spread the load).
//
// # What is stored where
//
// Three key-value buckets, in memory on the NATS server (names are
// prefixed with WithPrefix, "enetkit" by default; names in keys and
// subjects are escaped: bytes other than letters, digits, '-' and '_'
// become =XX):
//
//	enetkit-nodes   <node>        NodeInfo as JSON (id, ENet address, peers, capacity).
//	                              The bucket's max age is the TTL; each node puts its
//	                              entry every TTL/4 (the heartbeat).
//	enetkit-users   <user>        {"node","session"}: where the user's session is.
//	enetkit-groups  <group>.<user> the member's node.
//
// Every node watches the three buckets and keeps a replica of them in
// memory: Nodes, Where, Group.Len and Group.Members read it, and Push
// routes by it, without a round trip. Traffic goes on these subjects:
//
//	enetkit.node.<node>.push      a push: channel, flag, the user ids on that node, data.
//	enetkit.group.<group>         a group broadcast: channel, flag, data; header
//	                              Enetkit-Node names the sender, which skips its own.
//	enetkit.svc.<service>         requests to any node (queue group "svc").
//	enetkit.svc.<service>.<node>  requests to one node.
//
// # Costs
//
// A push to many users costs one NATS message per destination node, not
// per user, and each node sends one ENet packet shared by its recipients
// (netloop.Host.Multicast). A group broadcast costs one NATS publish in
// all, and one shared ENet packet per node with members (session.Group).
// A node subscribes to a group's subject while it has members there, so
// NATS delivers a broadcast only to those nodes; it keeps a group's state
// only while it has members in it, so group names cost nothing once empty. Stats counts the NATS
// messages a node publishes and receives.
//
// # Logins
//
// Bind creates the user's key; if it exists, the key's revision settles
// races. With the Kick policy the newer login overwrites the key, and the
// node that held the user kicks its session when its watch sees the change
// (a round trip, milliseconds); with Refuse the newer login fails with
// ErrTaken unless the older session's node is dead. A binding ends when
// its session ends (the key is deleted, guarded by its revision so that a
// newer login elsewhere is never removed) and with its node.
//
// # Faults
//
// A node dies (SIGKILL, power, partition): its heartbeats stop. Every
// node drops it from its replica when its heartbeat is three periods late
// (3/4 of the TTL, checked every TTL/8, so within the TTL), tells the
// WithWatch callback with a Left NodeEvent that lists the group members it
// had (Lost), and the live node with the lowest id deletes its user and
// member keys. The key-value server expires its node entry on its own.
//
// A node stops (Run's context is cancelled): it stops its sessions first,
// which deletes their bindings and memberships, then deletes its node
// entry: the others see it leave at once, with nothing Lost.
//
// NATS becomes unreachable: the node keeps serving its own sessions. Bind,
// Group.Join and Request fail at once with ErrUnavailable (those in flight
// when the connection drops fail then, not at their timeout); Push and
// Broadcast reach local recipients and return ErrUnavailable for the rest.
// Stats counts them: Refused (calls refused) and Lost (NATS messages of
// pushes and broadcasts not sent). Nothing is queued for later: a game
// message sent late is worse than one not sent. The node does not drop
// other nodes while it cannot hear them. NATS reconnects by itself
// (retrying every 250ms for ever); then the node rejoins: it recreates the
// buckets if the server lost them, puts its entry, loads the directory
// again and reconciles it with its own sessions: bindings and memberships
// missing from the directory are put back, stale ones removed, and a
// local session whose user logged in elsewhere meanwhile is kicked. Nodes
// that were in the replica before the outage are given a grace period to
// rejoin before they are dropped, so an outage alone makes nobody leave.
// Until then Live reports false.
//
// A node started while NATS is unreachable runs its sessions alone and
// joins when NATS comes.
//
// # Lifecycle
//
// New starts nothing. Run starts the embedded NATS server (if any), the
// connection, the session server and the node's goroutine, and waits for
// all of them: no goroutine outlives it; the embedded server's store
// directory is removed. Everything a node does in the background — the
// heartbeat, the watches, dead node detection, unbinding ended sessions —
// happens in that one goroutine; pushes, broadcasts and requests from
// other nodes are handled in the NATS connection's goroutines.
package cluster

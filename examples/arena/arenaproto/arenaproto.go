// Package arenaproto is the protocol of the arena example, a game of tag:
// the routes its server (examples/arena/server) and bots
// (examples/arena/bot) share, on top of package room's protocol.
package arenaproto

import (
	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
)

// Kind is the room kind of arena games.
const Kind = "arena"

// Channels: reliable events on Events (shared with the room protocol),
// unreliable inputs and snapshots on Updates, so a lost snapshot never
// holds up an event and an event never waits behind a snapshot.
const (
	Events   uint8 = 0
	Updates  uint8 = 1
	Channels       = 2
)

// The arena's routes.
var (
	// Move (client → server, 30 Hz) sets the player's direction.
	Move = dispatch.NewRoute[MoveMsg](16, Binary, Updates, netloop.Unreliable)
	// Snapshot (server → all members, shared packet) is the room's state.
	Snapshot = dispatch.NewRoute[SnapshotMsg](17, Binary, Updates, netloop.Unreliable)
	// Tagged (server → all members, reliable) tells who tagged whom.
	Tagged = dispatch.NewRoute[TaggedMsg](18, dispatch.JSON, Events, netloop.Reliable)
)

// Arena dimensions and rules.
const (
	Size     = 100.0 // the arena is Size x Size
	Speed    = 30.0  // units per second
	TagRange = 3.0   // "it" tags whoever comes this close
)

// MoveMsg is one input: a direction (each component -1..1, normalised by
// the server) and a sequence number the snapshots acknowledge.
type MoveMsg struct {
	Seq uint32  `json:"s"`
	DX  float64 `json:"x"`
	DY  float64 `json:"y"`
}

// Player is one player in a snapshot.
type Player struct {
	ID        uint64  `json:"id"`
	Name      string  `json:"n,omitempty"`
	Seat      int     `json:"seat"`
	X         float64 `json:"x"`
	Y         float64 `json:"y"`
	Acked     uint32  `json:"a"` // the last Move.Seq applied
	Score     float64 `json:"sc"`
	Connected bool    `json:"c"`
}

// SnapshotMsg is a room's state after a tick.
type SnapshotMsg struct {
	Tick    uint64   `json:"t"`
	It      uint64   `json:"it"` // the player who is "it", 0 if none
	Players []Player `json:"p"`
}

// TaggedMsg tells that From tagged To, who is now "it".
type TaggedMsg struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

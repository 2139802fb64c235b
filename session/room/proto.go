package room

import (
	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/netloop"
)

// ProtocolBase is the first message type of the room protocol: types from
// ProtocolBase to dispatch.MaxType are the package's own (identify, join,
// leave, member events) and must not be used by an application's routes.
const ProtocolBase uint32 = dispatch.MaxType - 255

// Channel is the ENet channel of the room protocol's messages, which are
// all reliable. Applications may share it with their reliable events.
const Channel uint8 = 0

// The room protocol, spoken by Server and by package client: declared
// routes that both sides share. Applications need them only to write a
// client of their own. Every message is JSON on Channel, reliable.
var (
	// Hello (client → server) identifies the player: first thing after
	// connecting, and again after every reconnection.
	Hello = protoRoute[HelloMsg](0)
	// Welcome (server → client) answers Hello.
	Welcome = protoRoute[WelcomeMsg](1)
	// JoinRequest (client → server) asks to join a room.
	JoinRequest = protoRoute[JoinMsg](2)
	// Joined (server → client): the player has a seat in a room, newly or
	// again after a reconnection (Resumed).
	Joined = protoRoute[JoinedMsg](3)
	// JoinRefused (server → client): a JoinRequest failed; Reason says why.
	JoinRefused = protoRoute[RefusedMsg](4)
	// LeaveRequest (client → server) leaves the player's room.
	LeaveRequest = protoRoute[LeaveMsg](5)
	// Left (server → client): the player is no longer in the room.
	Left = protoRoute[LeftMsg](6)
	// MemberChanged (server → client): another member joined, left,
	// dropped or came back.
	MemberChanged = protoRoute[MemberMsg](7)
	// Redirect (server → client) answers a JoinRequest whose room is on
	// another node of the cluster: the client connects there and joins
	// with the reservation's ticket (package client does it by itself).
	Redirect = protoRoute[RedirectMsg](8)
)

func protoRoute[T any](n uint32) dispatch.Route[T] {
	return dispatch.NewRoute[T](ProtocolBase+n, dispatch.JSON, Channel, netloop.Reliable)
}

// HelloMsg identifies a player. An empty Token asks for a new identity; a
// token the server issued resumes that identity, and the player's seat if
// it is still held for them.
type HelloMsg struct {
	Name  string `json:"name,omitempty"`
	Token string `json:"token,omitempty"`
}

// WelcomeMsg gives the player its identity. Resumed is true if the Hello's
// token was accepted; a Joined message with Resumed set follows if the
// player's seat was still held.
type WelcomeMsg struct {
	Player  uint64 `json:"player"`
	Name    string `json:"name"`
	Token   string `json:"token"`
	Resumed bool   `json:"resumed,omitempty"`
}

// JoinMsg asks for a seat: in room Room if it is set, otherwise in any open
// room of kind Kind, created if none has a free seat (JoinOrCreate).
// Params go to a new room's Init; Meta to the room's JoinAttempt.
type JoinMsg struct {
	Req    uint32            `json:"req"`
	Kind   string            `json:"kind,omitempty"`
	Room   string            `json:"room,omitempty"`
	Params map[string]string `json:"params,omitempty"`
	Meta   map[string]string `json:"meta,omitempty"`
	// Ticket claims the seat a Redirect reserved (Room is then the
	// redirect's room).
	Ticket string `json:"ticket,omitempty"`
}

// RedirectMsg says that the seat a JoinRequest asked for is on another
// node: Room, on node Node, whose players connect to Addr (host:port).
// A seat is reserved there for Ticket until it expires, TTLMillis after
// the reservation; a join (new connection, Hello, JoinRequest with Room
// and Ticket) claims it. The player's identity is the node's: it says
// Hello there without a token.
type RedirectMsg struct {
	Req       uint32 `json:"req"`
	Room      string `json:"room"`
	Node      string `json:"node"`
	Addr      string `json:"addr"`
	Ticket    string `json:"ticket"`
	TTLMillis int64  `json:"ttl_ms"`
}

// MemberInfo describes a member of a room.
type MemberInfo struct {
	Player  uint64 `json:"player"`
	Name    string `json:"name"`
	Seat    int    `json:"seat"`
	Dropped bool   `json:"dropped,omitempty"`
}

// JoinedMsg tells a player its seat and the room's members (itself
// included).
type JoinedMsg struct {
	Req     uint32       `json:"req,omitempty"`
	Room    string       `json:"room"`
	Kind    string       `json:"kind"`
	Label   string       `json:"label,omitempty"`
	Seat    int          `json:"seat"`
	TickHz  int          `json:"tick_hz"`
	Resumed bool         `json:"resumed,omitempty"`
	Members []MemberInfo `json:"members"`
}

// RefusedMsg says why a JoinRequest failed.
type RefusedMsg struct {
	Req    uint32 `json:"req"`
	Reason string `json:"reason"`
}

// LeaveMsg asks to leave the player's room.
type LeaveMsg struct{}

// LeftMsg tells a player it is no longer in Room, and why: "left",
// "kicked", "closed" (the room ended), "shutdown" (the server is shutting
// down) or "expired".
type LeftMsg struct {
	Room   string `json:"room"`
	Reason string `json:"reason"`
}

// MemberMsg tells the members of a room what happened to another member:
// Event is "joined", "left", "dropped" or "back"; Reason, for "left", is a
// LeaveReason's name.
type MemberMsg struct {
	Room   string     `json:"room"`
	Event  string     `json:"event"`
	Reason string     `json:"reason,omitempty"`
	Member MemberInfo `json:"member"`
}

// Member events, as MemberMsg.Event.
const (
	EventJoined  = "joined"
	EventLeft    = "left"
	EventDropped = "dropped"
	EventBack    = "back"
)

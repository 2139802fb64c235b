package netloop

import (
	"fmt"
	"net/netip"
)

// Kind is the kind of an Event.
type Kind uint8

const (
	// EventConnect: a connection is established (Event.Data is the connect data).
	EventConnect Kind = iota + 1
	// EventReceive: a message arrived (Channel, Flag, Payload).
	EventReceive
	// EventDisconnect: a connection ended or failed (Data, Reason).
	EventDisconnect
)

// String returns lua-enet's name of the event type.
func (k Kind) String() string {
	switch k {
	case EventConnect:
		return "connect"
	case EventReceive:
		return "receive"
	case EventDisconnect:
		return "disconnect"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Reason says why a connection ended.
type Reason uint8

const (
	// ReasonRemote: the peer disconnected; Event.Data is the data it sent.
	ReasonRemote Reason = iota + 1
	// ReasonTimeout: the peer stopped answering.
	ReasonTimeout
	// ReasonLocal: this side called Disconnect, DisconnectLater, DisconnectNow or Reset.
	ReasonLocal
	// ReasonShutdown: the host shut down.
	ReasonShutdown
	// ReasonConnectFailed: an outgoing connection never completed; no
	// Connect event came before this Disconnect.
	ReasonConnectFailed
	// ReasonSlow: the consumer fell behind and the overflow policy
	// disconnected the peer (see SlowPolicy).
	ReasonSlow
	// ReasonOutboundLimit: what ENet held for the peer reached the outbound
	// limit and the outbound policy disconnected it (see WithOutboundLimit).
	ReasonOutboundLimit
	// ReasonRefused: an outgoing connection was refused by a netloop host:
	// Event.Data is RefusedFull or RefusedAddress. No Connect event came.
	ReasonRefused
)

var reasonNames = [...]string{"", "remote", "timeout", "local", "shutdown", "connect_failed", "overflow", "outbound_limit", "refused"}

// String names the reason.
func (r Reason) String() string {
	if r > 0 && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Event is something that happened on a host. Which fields are set depends
// on Kind. An Event is a plain value; Payload is Go memory that the receiver
// owns.
type Event struct {
	Kind     Kind
	Peer     Peer
	Channel  uint8          // Receive
	Flag     Flag           // Receive
	Reason   Reason         // Disconnect
	Data     uint32         // Connect, Disconnect: the user data of the (dis)connect
	Channels int            // Connect: the channel count agreed with the peer
	Addr     netip.AddrPort // the peer's address
	Payload  []byte         // Receive
}

// Data of the Disconnect event a client gets when a netloop host refuses
// its connection (Reason ReasonRefused).
const (
	// RefusedFull: every peer slot of the host holds a connection.
	RefusedFull uint32 = 0x7E7E0001
	// RefusedAddress: the client's IP address holds as many connections as
	// the host allows one address (WithPerAddressLimit).
	RefusedAddress uint32 = 0x7E7E0002
)

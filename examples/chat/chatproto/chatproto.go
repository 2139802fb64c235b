// Package chatproto is the protocol of the chat example, shared by its
// server (examples/chat/server) and its bot (examples/chat/bot).
//
// # Wire format
//
// Every message travels reliably on ENet channel Channel, in dispatch's wire
// format: its type as a varint (the Type constants), then the message
// struct as JSON (dispatch.JSON):
//
//	0x01 {"nick":"alice"}
//
// # Conversation
//
// A client first sends Hello with its nickname. A successful Hello has no
// reply; a refused one (a taken or malformed nickname) is answered with an
// Error, as is every other refused request. Then it sends Join for each
// room it wants to be in; the server tells the room, the joiner included,
// with Joined, then sends the joiner the room's recent messages (Said).
// Say sends text to a room the client is in; the server broadcasts it as
// Said to the whole room, the sender included. Leave leaves a room: the
// server tells the room and the leaver with Left. When a client
// disconnects, the server tells each of its rooms with Left. Tell sends a
// private message, which its receiver gets as Told.
//
// Requests of one client are handled in the order it sent them, and the
// messages of a room reach every member in the same order.
package chatproto

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/enetkit/enetkit/dispatch"
)

// Channel is the ENet channel of every message; Channels is the channel
// count a client asks for when it connects.
const (
	Channel  uint8 = 0
	Channels       = 1
)

// Codec encodes every message payload.
var Codec = dispatch.JSON

// The message types: the varint that starts each message.
const (
	// TypeHello: client to server, Hello.
	TypeHello uint32 = iota + 1
	// TypeJoin: client to server, Join.
	TypeJoin
	// TypeLeave: client to server, Leave.
	TypeLeave
	// TypeSay: client to server, Say.
	TypeSay
	// TypeSaid: server to client, Said.
	TypeSaid
	// TypeJoined: server to client, Joined.
	TypeJoined
	// TypeLeft: server to client, Left.
	TypeLeft
	// TypeError: server to client, Error.
	TypeError
	// TypeTell: client to server, Tell.
	TypeTell
	// TypeTold: server to client, Told.
	TypeTold
)

// Limits of names and text, in bytes.
const (
	// MaxNick is the longest nickname.
	MaxNick = 32
	// MaxRoom is the longest room name.
	MaxRoom = 32
	// MaxText is the longest text of a Say.
	MaxText = 1000
	// MaxRooms is the most rooms one client may be in at once.
	MaxRooms = 16
	// MaxMessage bounds the size of any message: a Said with the longest
	// text, room and nickname, every byte JSON-escaped, fits.
	MaxMessage = 8 << 10
)

// Message is implemented by every message struct of the protocol.
type Message interface {
	// Type returns the message's type constant.
	Type() uint32
}

// Hello sets the client's nickname. It must come before any other request.
type Hello struct {
	Nick string `json:"nick"`
}

// Join asks to enter a room; the room is created if it does not exist.
type Join struct {
	Room string `json:"room"`
}

// Leave asks to leave a room.
type Leave struct {
	Room string `json:"room"`
}

// Say sends Text to Room, which the client must have joined.
type Say struct {
	Room string `json:"room"`
	Text string `json:"text"`
}

// Tell sends Text to the client named To alone, wherever it is connected.
type Tell struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

// Told is a private message from the client named From.
type Told struct {
	From string `json:"from"`
	Text string `json:"text"`
}

// Said is a message said in Room by the client named Nick.
type Said struct {
	Room string `json:"room"`
	Nick string `json:"nick"`
	Text string `json:"text"`
}

// Joined tells a room's members, the newcomer included, that Nick joined.
type Joined struct {
	Room string `json:"room"`
	Nick string `json:"nick"`
}

// Left tells a room's members, and a client that left with Leave, that
// Nick left the room.
type Left struct {
	Room string `json:"room"`
	Nick string `json:"nick"`
}

// Code says which request the server refused, and why.
type Code string

// The codes of Error. Clients should check Code, not Text.
const (
	// CodeBadNick: the nickname of a Hello is malformed (see CheckNick).
	CodeBadNick Code = "bad_nick"
	// CodeNickTaken: another client has the nickname of a Hello.
	CodeNickTaken Code = "nick_taken"
	// CodeNickSet: a second Hello; the nickname cannot change.
	CodeNickSet Code = "nick_set"
	// CodeNoNick: a request before Hello.
	CodeNoNick Code = "no_nick"
	// CodeBadRoom: the room name is malformed (see CheckRoom).
	CodeBadRoom Code = "bad_room"
	// CodeJoined: a Join of a room the client is in already.
	CodeJoined Code = "already_joined"
	// CodeNotJoined: a Say or Leave for a room the client is not in.
	CodeNotJoined Code = "not_joined"
	// CodeTooManyRooms: a Join beyond MaxRooms.
	CodeTooManyRooms Code = "too_many_rooms"
	// CodeBadText: the text of a Say is empty, too long or has control characters.
	CodeBadText Code = "bad_text"
	// CodeNoSuchNick: a Tell to a nickname nobody has.
	CodeNoSuchNick Code = "no_such_nick"
	// CodeUnavailable: a clustered server cannot reach its cluster just
	// now, so it cannot check a nickname or join a room; try again later.
	CodeUnavailable Code = "unavailable"
)

// Error is the server's answer to a request it refused. Text is for people.
type Error struct {
	Code Code   `json:"code"`
	Text string `json:"text"`
}

// Type returns TypeHello.
func (Hello) Type() uint32 { return TypeHello }

// Type returns TypeJoin.
func (Join) Type() uint32 { return TypeJoin }

// Type returns TypeLeave.
func (Leave) Type() uint32 { return TypeLeave }

// Type returns TypeSay.
func (Say) Type() uint32 { return TypeSay }

// Type returns TypeSaid.
func (Said) Type() uint32 { return TypeSaid }

// Type returns TypeJoined.
func (Joined) Type() uint32 { return TypeJoined }

// Type returns TypeLeft.
func (Left) Type() uint32 { return TypeLeft }

// Type returns TypeError.
func (Error) Type() uint32 { return TypeError }

// Type returns TypeTell.
func (Tell) Type() uint32 { return TypeTell }

// Type returns TypeTold.
func (Told) Type() uint32 { return TypeTold }

// Errors of Decode and of the Check functions. Check them with errors.Is.
var (
	// ErrUnknownType: a message whose type this package does not know,
	// perhaps from a newer peer.
	ErrUnknownType = errors.New("chatproto: unknown message type")
	// ErrInvalid: a nickname, room name or text that breaks the rules.
	ErrInvalid = errors.New("chatproto: invalid")
)

// Encode returns the wire form of m.
func Encode(m Message) ([]byte, error) { return dispatch.Encode(Codec, m.Type(), m) }

// Decode parses a message in wire form. It returns the message struct as a
// value (Said, not *Said), an error wrapping ErrUnknownType for a type
// outside this protocol, or another error for a malformed message.
func Decode(b []byte) (Message, error) {
	typ, payload, err := dispatch.ParseMessage(b)
	if err != nil {
		return nil, err
	}
	switch typ {
	case TypeHello:
		return decode[Hello](payload)
	case TypeJoin:
		return decode[Join](payload)
	case TypeLeave:
		return decode[Leave](payload)
	case TypeSay:
		return decode[Say](payload)
	case TypeSaid:
		return decode[Said](payload)
	case TypeJoined:
		return decode[Joined](payload)
	case TypeLeft:
		return decode[Left](payload)
	case TypeError:
		return decode[Error](payload)
	case TypeTell:
		return decode[Tell](payload)
	case TypeTold:
		return decode[Told](payload)
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownType, typ)
}

func decode[T Message](payload []byte) (Message, error) {
	var v T
	if err := Codec.Unmarshal(payload, &v); err != nil {
		return nil, fmt.Errorf("chatproto: decode type %d: %w", v.Type(), err)
	}
	return v, nil
}

// CheckNick reports whether s is a valid nickname: 1 to MaxNick ASCII
// letters, digits, '-', '_' and '.'. Errors wrap ErrInvalid.
func CheckNick(s string) error { return checkName("nickname", s, MaxNick) }

// CheckRoom reports whether s is a valid room name; the rules are those of
// nicknames, with MaxRoom. Errors wrap ErrInvalid.
func CheckRoom(s string) error { return checkName("room name", s, MaxRoom) }

func checkName(what, s string, limit int) error {
	if s == "" || len(s) > limit {
		return fmt.Errorf("%w %s %q: want 1 to %d characters", ErrInvalid, what, s, limit)
	}
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("%w %s %q: use only letters, digits, '-', '_' and '.'", ErrInvalid, what, s)
		}
	}
	return nil
}

// CheckText reports whether s is valid text for Say: 1 to MaxText bytes of
// UTF-8 without control characters (so that it prints on one line). Errors
// wrap ErrInvalid.
func CheckText(s string) error {
	switch {
	case s == "" || len(s) > MaxText:
		return fmt.Errorf("%w text: want 1 to %d bytes, have %d", ErrInvalid, MaxText, len(s))
	case !utf8.ValidString(s):
		return fmt.Errorf("%w text: not UTF-8", ErrInvalid)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w text: control character %U", ErrInvalid, r)
		}
	}
	return nil
}

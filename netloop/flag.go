package netloop

import "fmt"

// Flag is how a message is delivered. The zero value is Reliable, as in lua-enet.
type Flag uint8

const (
	// Reliable messages arrive, once, in the order they were sent on their channel.
	Reliable Flag = iota
	// Unsequenced messages may be lost, and arrive in any order, at most once.
	Unsequenced
	// Unreliable messages may be lost; those that arrive are in order on their
	// channel (older ones are dropped).
	Unreliable
)

var flagNames = [...]string{"reliable", "unsequenced", "unreliable"}

// String returns lua-enet's name of the flag.
func (f Flag) String() string {
	if int(f) < len(flagNames) {
		return flagNames[f]
	}
	return fmt.Sprintf("Flag(%d)", uint8(f))
}

// ParseFlag parses lua-enet's flag names.
func ParseFlag(s string) (Flag, error) {
	for i, n := range flagNames {
		if s == n {
			return Flag(i), nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrFlag, s)
}

// ENet packet flag bits.
const (
	packetReliable    = 1 << 0
	packetUnsequenced = 1 << 1
)

func (f Flag) enet() uint32 {
	switch f {
	case Reliable:
		return packetReliable
	case Unsequenced:
		return packetUnsequenced
	}
	return 0
}

func flagOf(bits uint32) Flag {
	switch {
	case bits&packetReliable != 0:
		return Reliable
	case bits&packetUnsequenced != 0:
		return Unsequenced
	}
	return Unreliable
}

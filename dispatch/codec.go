package dispatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"google.golang.org/protobuf/proto"
)

// A Codec encodes and decodes message payloads.
type Codec interface {
	// Name names the codec, e.g. "json".
	Name() string
	// Append appends the encoding of v to dst.
	Append(dst []byte, v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to.
	Unmarshal(data []byte, v any) error
}

// The codecs this package provides. Their zero-size values are safe for
// concurrent use.
var (
	// Raw passes bytes through: it encodes []byte and string, and decodes
	// into *[]byte (aliasing the message, which the handler owns) or *string.
	Raw Codec = rawCodec{}
	// JSON uses encoding/json.
	JSON Codec = jsonCodec{}
	// Proto uses protocol buffers (google.golang.org/protobuf): it encodes a
	// proto.Message and decodes into one, or into a pointer to a nil one,
	// which it allocates.
	Proto Codec = protoCodec{}
)

type rawCodec struct{}

func (rawCodec) Name() string { return "raw" }

func (rawCodec) Append(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case []byte:
		return append(dst, v...), nil
	case string:
		return append(dst, v...), nil
	}
	return dst, fmt.Errorf("dispatch: raw codec cannot encode %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	switch v := v.(type) {
	case *[]byte:
		if v == nil {
			return errors.New("dispatch: raw codec cannot decode into a nil *[]byte")
		}
		*v = data
	case *string:
		if v == nil {
			return errors.New("dispatch: raw codec cannot decode into a nil *string")
		}
		*v = string(data)
	default:
		return fmt.Errorf("dispatch: raw codec cannot decode into %T", v)
	}
	return nil
}

type jsonCodec struct{}

func (jsonCodec) Name() string { return "json" }

func (jsonCodec) Append(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

type protoCodec struct{}

func (protoCodec) Name() string { return "proto" }

func (protoCodec) Append(dst []byte, v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return dst, fmt.Errorf("dispatch: proto codec cannot encode %T", v)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

var protoMessage = reflect.TypeFor[proto.Message]()

func (protoCodec) Unmarshal(data []byte, v any) error {
	if m, ok := v.(proto.Message); ok {
		if !m.ProtoReflect().IsValid() {
			return fmt.Errorf("dispatch: proto codec cannot decode into a nil %T", v)
		}
		return proto.Unmarshal(data, m)
	}
	// A pointer to a message pointer, as Handle[*pb.T] passes: allocate.
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() && rv.Elem().Kind() == reflect.Pointer && rv.Elem().Type().Implements(protoMessage) {
		if rv.Elem().IsNil() {
			rv.Elem().Set(reflect.New(rv.Elem().Type().Elem()))
		}
		return proto.Unmarshal(data, rv.Elem().Interface().(proto.Message))
	}
	return fmt.Errorf("dispatch: proto codec cannot decode into %T", v)
}

// Encode returns the wire form of a message of type typ whose payload is v
// encoded with c.
func Encode(c Codec, typ uint32, v any) ([]byte, error) {
	b, err := c.Append(AppendMessage(make([]byte, 0, 64), typ, nil), v)
	if err != nil {
		return nil, fmt.Errorf("dispatch: encode type %d with %s: %w", typ, c.Name(), err)
	}
	return b, nil
}

// Decode parses a message's type and decodes its payload with c into the
// value v points to: the receiving half of Encode, for clients that read
// netloop events rather than serve sessions.
func Decode(c Codec, b []byte, v any) (typ uint32, err error) {
	typ, payload, err := ParseMessage(b)
	if err != nil {
		return 0, err
	}
	if err := c.Unmarshal(payload, v); err != nil {
		return typ, fmt.Errorf("%w: type %d, %s: %v", ErrDecode, typ, c.Name(), err)
	}
	return typ, nil
}

package dispatch_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/enetkit/enetkit/dispatch"
)

// point is the JSON test message.
type point struct {
	Name string   `json:"name"`
	X, Y int      `json:",omitempty"`
	Tags []string `json:"tags"`
	Sub  *struct {
		F float64
	} `json:"sub,omitempty"`
}

func TestCodecNames(t *testing.T) {
	for c, want := range map[dispatch.Codec]string{dispatch.Raw: "raw", dispatch.JSON: "json", dispatch.Proto: "proto"} {
		if c.Name() != want {
			t.Errorf("Name() = %q, want %q", c.Name(), want)
		}
	}
}

func TestRawCodec(t *testing.T) {
	for _, v := range []any{[]byte("bytes"), "string", []byte(nil), ""} {
		b, err := dispatch.Raw.Append([]byte("dst:"), v)
		if err != nil || string(b) != "dst:"+fmt.Sprint(toString(v)) {
			t.Errorf("Append(%#v) = %q, %v", v, b, err)
		}
	}
	for _, v := range []any{42, nil, &[]byte{1}, []rune("x"), struct{}{}} {
		dst := []byte("dst")
		if b, err := dispatch.Raw.Append(dst, v); err == nil || string(b) != "dst" {
			t.Errorf("Append(%#v) = %q, %v; want dst unchanged and an error", v, b, err)
		}
	}

	data := []byte("payload")
	var bs []byte
	if err := dispatch.Raw.Unmarshal(data, &bs); err != nil || &bs[0] != &data[0] {
		t.Errorf("Unmarshal into *[]byte: %q, %v; want the message itself", bs, err)
	}
	var s string
	if err := dispatch.Raw.Unmarshal(data, &s); err != nil || s != "payload" {
		t.Errorf("Unmarshal into *string: %q, %v", s, err)
	}
	for _, v := range []any{new(int), bs, s, nil, new(any), new(point)} {
		if err := dispatch.Raw.Unmarshal(data, v); err == nil {
			t.Errorf("Unmarshal into %T: no error", v)
		}
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case string:
		return v
	}
	return ""
}

func TestJSONCodec(t *testing.T) {
	in := point{Name: "p", X: 1, Y: -2, Tags: []string{"a", "b"}, Sub: &struct{ F float64 }{1.5}}
	b, err := dispatch.JSON.Append([]byte("dst:"), in)
	if err != nil || !bytes.HasPrefix(b, []byte("dst:")) {
		t.Fatalf("Append = %q, %v", b, err)
	}
	var out point
	if err := dispatch.JSON.Unmarshal(b[len("dst:"):], &out); err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("Unmarshal = %+v, %v; want %+v", out, err, in)
	}
	if _, err := dispatch.JSON.Append(nil, make(chan int)); err == nil {
		t.Error("Append of a channel: no error")
	}
	for _, tt := range []struct {
		data string
		v    any
	}{
		{`{"name":`, new(point)},
		{`not json`, new(point)},
		{`{"name":1}`, new(point)},
		{`[1,2]`, new(point)},
		{`"x"`, new(int)},
		{`{}`, point{}},             // not a pointer
		{`{}`, (*point)(nil)},       // nil pointer
		{`{}`, nil},                 // nothing
		{``, new(point)},            // empty
		{`{} {}`, new(point)},       // trailing data
		{`{"x":1e400}`, new(point)}, // out of range
	} {
		if err := dispatch.JSON.Unmarshal([]byte(tt.data), tt.v); err == nil {
			t.Errorf("Unmarshal(%q, %T): no error", tt.data, tt.v)
		}
	}
}

func TestProtoCodec(t *testing.T) {
	in := wrapperspb.String("hello")
	b, err := dispatch.Proto.Append([]byte("dst:"), in)
	if err != nil || !bytes.HasPrefix(b, []byte("dst:")) {
		t.Fatalf("Append = %q, %v", b, err)
	}
	data := b[len("dst:"):]

	// Into a message.
	var msg wrapperspb.StringValue
	if err := dispatch.Proto.Unmarshal(data, &msg); err != nil || msg.GetValue() != "hello" {
		t.Fatalf("Unmarshal into *StringValue: %q, %v", msg.GetValue(), err)
	}
	// Into a pointer to a nil message pointer, as Handle[*pb.T] does: allocated.
	var ptr *wrapperspb.StringValue
	if err := dispatch.Proto.Unmarshal(data, &ptr); err != nil || ptr.GetValue() != "hello" {
		t.Fatalf("Unmarshal into **StringValue: %v, %v", ptr, err)
	}
	// Into a pointer to a message pointer already set: decoded into it.
	existing := wrapperspb.String("old")
	keep := existing
	if err := dispatch.Proto.Unmarshal(data, &existing); err != nil || existing != keep || keep.GetValue() != "hello" {
		t.Fatalf("Unmarshal into a set **StringValue: %v, %v", existing, err)
	}
	// Another message type.
	st, _ := structpb.NewStruct(map[string]any{"k": "v", "n": 1.0})
	sb, err := dispatch.Proto.Append(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	var st2 *structpb.Struct
	if err := dispatch.Proto.Unmarshal(sb, &st2); err != nil || !proto.Equal(st, st2) {
		t.Fatalf("Struct round trip: %v, %v", st2, err)
	}

	// Errors.
	for _, v := range []any{"string", []byte("x"), 42, nil, msg.GetValue()} {
		if _, err := dispatch.Proto.Append(nil, v); err == nil {
			t.Errorf("Append(%T): no error", v)
		}
	}
	for _, v := range []any{new(int), new(*int), new(string), nil, new(**wrapperspb.StringValue), (**wrapperspb.StringValue)(nil), wrapperspb.StringValue{}} {
		if err := dispatch.Proto.Unmarshal(data, v); err == nil {
			t.Errorf("Unmarshal into %T: no error", v)
		}
	}
	for _, garbage := range [][]byte{{0xff}, {0x0a, 0x05, 'a'}, {0x0a, 0x02, 0xff, 0xfe}} { // bad tag, truncated, bad UTF-8
		var v *wrapperspb.StringValue
		if err := dispatch.Proto.Unmarshal(garbage, &v); err == nil {
			t.Errorf("Unmarshal(%x): no error", garbage)
		}
	}
}

// A codec returns an error for a nil pointer target, as encoding/json does,
// rather than panicking.
func TestCodecNilTarget(t *testing.T) {
	tests := []struct {
		name  string
		codec dispatch.Codec
		v     any
	}{
		{"json", dispatch.JSON, (*point)(nil)},
		{"raw bytes", dispatch.Raw, (*[]byte)(nil)},
		{"raw string", dispatch.Raw, (*string)(nil)},
		{"proto message", dispatch.Proto, (*wrapperspb.StringValue)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			panicked := func() (p any) {
				defer func() { p = recover() }()
				err = tt.codec.Unmarshal([]byte("\x0a\x01a"), tt.v)
				return nil
			}()
			if panicked != nil {
				t.Fatalf("%s Unmarshal into a nil %T panics (%v) instead of returning an error (dispatch/codec.go)", tt.codec.Name(), tt.v, panicked)
			}
			if err == nil {
				t.Fatalf("Unmarshal into a nil %T: no error", tt.v)
			}
		})
	}
}

// A failed Proto decode leaves its target alone.
func TestProtoUnmarshalNoSideEffect(t *testing.T) {
	var p *int
	if err := dispatch.Proto.Unmarshal([]byte("\x0a\x01a"), &p); err == nil {
		t.Fatal("Unmarshal into **int: no error")
	}
	if p != nil {
		t.Fatal("Proto.Unmarshal into a **T whose T is not a message allocates a T before failing (dispatch/codec.go protoCodec.Unmarshal)")
	}
}

func TestEncode(t *testing.T) {
	b, err := dispatch.Encode(dispatch.JSON, 300, point{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	typ, payload, err := dispatch.ParseMessage(b)
	var p point
	if err != nil || typ != 300 || json.Unmarshal(payload, &p) != nil || p.Name != "n" {
		t.Fatalf("Encode gave %q: type %d, %+v, %v", b, typ, p, err)
	}
	if b, err := dispatch.Encode(dispatch.Raw, 1, 42); err == nil || b != nil {
		t.Fatalf("Encode of an int with raw: %q, %v", b, err)
	}
	if _, err := dispatch.Encode(dispatch.Proto, 1, point{}); err == nil {
		t.Fatal("Encode of a struct with proto: no error")
	}
}

func TestDecode(t *testing.T) {
	b, err := dispatch.Encode(dispatch.Proto, 1<<20, wrapperspb.String("v"))
	if err != nil {
		t.Fatal(err)
	}
	var v *wrapperspb.StringValue
	if typ, err := dispatch.Decode(dispatch.Proto, b, &v); err != nil || typ != 1<<20 || v.GetValue() != "v" {
		t.Fatalf("Decode = %d, %v, %v", typ, v, err)
	}
	if _, err := dispatch.Decode(dispatch.JSON, []byte{0x80}, new(point)); !errors.Is(err, dispatch.ErrMalformed) {
		t.Fatalf("Decode of a malformed message: %v, want %v", err, dispatch.ErrMalformed)
	}
	if typ, err := dispatch.Decode(dispatch.JSON, dispatch.AppendMessage(nil, 7, []byte("{")), new(point)); typ != 7 || !errors.Is(err, dispatch.ErrDecode) {
		t.Fatalf("Decode of bad JSON: %d, %v; want 7 and %v", typ, err, dispatch.ErrDecode)
	}
}

// FuzzCodecDecode feeds any payload to each codec and target a typed
// handler can have: decoding never panics, and what decodes re-encodes to
// something that decodes to the same.
func FuzzCodecDecode(f *testing.F) {
	for _, s := range []string{
		"", "{}", `{"name":"x","X":1,"tags":["a"],"sub":{"F":1.5}}`, `{"name":"\ud800"}`, "null", "[", "\x00",
		"\x0a\x05hello", "\x0a\x02\xff\xfe", "\xff", "\x0a\x80\x80\x80\x80\x10", `{"sub":null,"tags":[]}`,
	} {
		f.Add([]byte(s))
	}
	st, _ := structpb.NewStruct(map[string]any{"k": []any{1.0, "s", nil, true}})
	b, _ := proto.Marshal(st)
	f.Add(b)

	f.Fuzz(func(t *testing.T, data []byte) {
		// Raw always decodes.
		var bs []byte
		var s string
		if dispatch.Raw.Unmarshal(data, &bs) != nil || dispatch.Raw.Unmarshal(data, &s) != nil || !bytes.Equal(bs, data) || s != string(data) {
			t.Fatalf("raw decode of %x failed", data)
		}

		// JSON into a struct and into any.
		var p point
		if dispatch.JSON.Unmarshal(data, &p) == nil {
			re, err := dispatch.JSON.Append(nil, p)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", p, err)
			}
			var p2 point
			if err := dispatch.JSON.Unmarshal(re, &p2); err != nil || !reflect.DeepEqual(p, p2) {
				t.Fatalf("JSON %q: decoded %+v, re-decoded %+v (%v)", data, p, p2, err)
			}
		}
		var a any
		_ = dispatch.JSON.Unmarshal(data, &a)

		// Proto, into the pointer Handle[*pb.T] passes.
		var sv *wrapperspb.StringValue
		if dispatch.Proto.Unmarshal(data, &sv) == nil {
			protoRoundTrip(t, sv, new(wrapperspb.StringValue))
		}
		var sp *structpb.Struct
		if dispatch.Proto.Unmarshal(data, &sp) == nil {
			protoRoundTrip(t, sp, new(structpb.Struct))
		}
	})
}

func protoRoundTrip(t *testing.T, m, into proto.Message) {
	t.Helper()
	re, err := dispatch.Proto.Append(nil, m)
	if err != nil {
		t.Fatalf("re-encode %v: %v", m, err)
	}
	if err := dispatch.Proto.Unmarshal(re, into); err != nil || !proto.Equal(m, into) {
		t.Fatalf("proto: decoded %v, re-decoded %v (%v)", m, into, err)
	}
}

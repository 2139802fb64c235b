package cluster

import (
	"errors"
	"slices"
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

func TestToken(t *testing.T) {
	for _, s := range []string{"alice", "a.b", "room 1", "=", "é", "x>y*z", "-_"} {
		tok := token(s)
		for _, c := range []byte(tok) {
			if c == '.' || c == '*' || c == '>' || c == ' ' {
				t.Fatalf("token(%q) = %q has %q", s, tok, c)
			}
		}
		back, err := untoken(tok)
		if err != nil || back != s {
			t.Fatalf("untoken(token(%q)) = %q, %v", s, back, err)
		}
	}
	for _, bad := range []string{"=", "=4", "=zz", "a=G0"} {
		if _, err := untoken(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("untoken(%q): %v, want ErrMalformed", bad, err)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, bad := range []string{"", string(make([]byte, MaxName+1)), "a\nb", "\xff"} {
		if err := checkName("x", bad); !errors.Is(err, ErrBadName) {
			t.Errorf("checkName(%q): %v", bad, err)
		}
	}
	if err := checkName("x", "room 1.é"); err != nil {
		t.Error(err)
	}
}

func TestPacket(t *testing.T) {
	for _, p := range []packet{
		{ch: 3, flag: netloop.Unreliable, data: []byte("x")},
		{ch: 0, flag: netloop.Reliable, users: []string{"alice", "bob"}, data: []byte("hello")},
	} {
		got, err := parsePacket(appendPacket(nil, p))
		if err != nil {
			t.Fatal(err)
		}
		if got.ch != p.ch || got.flag != p.flag || string(got.data) != string(p.data) || !slices.Equal(got.users, p.users) {
			t.Fatalf("round trip of %+v gave %+v", p, got)
		}
	}
	for _, bad := range [][]byte{nil, {0, 0}, {0, 9, 0, 'x'}, {0, 0, 0}, {0, 0, 5, 1, 'a'}, {0, 0, 1, 0, 'x'}, {0, 0, 0xff}} {
		if _, err := parsePacket(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("parsePacket(%v): %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzParsePacket(f *testing.F) {
	f.Add(appendPacket(nil, packet{users: []string{"a"}, data: []byte("d")}))
	f.Add([]byte{0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePacket(b)
		if err != nil {
			return
		}
		again, err := parsePacket(appendPacket(nil, p))
		if err != nil || !slices.Equal(again.users, p.users) || string(again.data) != string(p.data) {
			t.Fatalf("re-encoding %+v: %+v, %v", p, again, err)
		}
	})
}

package arenaproto_test

import (
	"errors"
	"reflect"
	"testing"

	"go.uber.org/goleak"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/examples/arena/arenaproto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBinaryRoundTrip(t *testing.T) {
	s := arenaproto.SnapshotMsg{Tick: 9, It: 2, Players: []arenaproto.Player{
		{ID: 1, Seat: 0, X: 1.5, Y: 99.25, Acked: 7, Score: 3.5, Connected: true},
		{ID: 2, Seat: 7, X: 0, Y: 100, Acked: 1 << 31, Score: 0},
	}}
	b, err := arenaproto.Snapshot.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := arenaproto.Snapshot.Decode(b)
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("snapshot %+v, %v; want %+v", got, err, s)
	}
	m := arenaproto.MoveMsg{Seq: 3, DX: -1, DY: 0.5}
	b, err = arenaproto.Move.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := arenaproto.Move.Decode(b); err != nil || got != m {
		t.Fatalf("move %+v, %v", got, err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], append(b, 0)} {
		if _, err := arenaproto.Move.Decode(bad); !errors.Is(err, dispatch.ErrDecode) {
			t.Errorf("decode of %d bytes: %v", len(bad), err)
		}
	}
	snap := dispatch.AppendMessage(nil, arenaproto.Snapshot.Type(), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200})
	if _, err := arenaproto.Snapshot.Decode(snap); !errors.Is(err, dispatch.ErrDecode) {
		t.Errorf("snapshot claiming 200 players: %v", err)
	}
	if _, err := arenaproto.Binary.Append(nil, "x"); err == nil {
		t.Error("encoding a string: no error")
	}
}

package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/enetkit/enetkit/metrics"
	"github.com/enetkit/enetkit/session/room"
)

func TestRooms(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	r, err := metrics.NewRooms(metrics.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.NewRooms(metrics.WithRegisterer(reg)); err == nil {
		t.Fatal("second registration: no error")
	}
	r.RoomOpened("arena")
	r.RoomOpened("arena")
	r.RoomClosed("arena")
	r.MemberJoined("arena")
	r.MemberJoined("arena")
	r.MemberDropped("arena")
	r.MemberBack("arena")
	r.MemberLeft("arena", room.LeaveExpired)
	r.Ticked("arena", room.TickInfo{Late: time.Millisecond, Duration: 100 * time.Microsecond, Inputs: 8})
	r.Ticked("arena", room.TickInfo{Late: 40 * time.Millisecond, Duration: time.Millisecond, Inputs: 0, Overrun: true})
	want := `
# HELP enetkit_room_members Members seated, connected or dropped.
# TYPE enetkit_room_members gauge
enetkit_room_members{kind="arena"} 1
# HELP enetkit_room_rooms Rooms open.
# TYPE enetkit_room_rooms gauge
enetkit_room_rooms{kind="arena"} 1
# HELP enetkit_room_leaves_total Members that left, by reason.
# TYPE enetkit_room_leaves_total counter
enetkit_room_leaves_total{kind="arena",reason="expired"} 1
# HELP enetkit_room_overruns_total Ticks that began a whole step or more late.
# TYPE enetkit_room_overruns_total counter
enetkit_room_overruns_total{kind="arena"} 1
# HELP enetkit_room_ticks_total Ticks run.
# TYPE enetkit_room_ticks_total counter
enetkit_room_ticks_total{kind="arena"} 2
`
	names := []string{"enetkit_room_members", "enetkit_room_rooms", "enetkit_room_leaves_total", "enetkit_room_overruns_total", "enetkit_room_ticks_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "enetkit_room_tick_seconds", "enetkit_room_tick_lateness_seconds", "enetkit_room_inputs_per_tick"); err != nil || n != 3 {
		t.Fatalf("histograms: %d series, %v", n, err)
	}
	if _, err := metrics.NewRooms(); err != nil {
		t.Fatal(err)
	}
}

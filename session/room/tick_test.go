package room

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
)

// sched records the ticks it sees and works as long as work says.
type sched struct {
	Base
	start time.Time
	work  map[uint64]time.Duration
	seen  []Tick
	fired []time.Time
	stop  func()
}

func (s *sched) Init(*Room, map[string]string) (Config, error) { return Config{}, nil }

func (s *sched) Tick(r *Room, t *Tick) {
	s.seen = append(s.seen, Tick{N: t.N, Time: t.Time, Elapsed: t.Elapsed, Snapshot: t.Snapshot})
	if t.N == 2 {
		r.After(45*time.Millisecond, func() { s.fired = append(s.fired, r.Now()) })
	}
	time.Sleep(s.work[t.N])
	if t.N == 30 {
		s.stop()
	}
}

// Ticks fall on absolute deadlines whatever the work; a long stall runs at
// most MaxCatchUp ticks back to back and skips the rest, keeping the
// phase.
func TestTickSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &Server{log: zap.NewNop(), rooms: map[string]*entry{}, players: map[string]*Player{}, clock: timerClock{}}
		ctx, cancel := context.WithCancel(t.Context())
		h := &sched{start: time.Now(), stop: cancel, work: map[uint64]time.Duration{
			5:  30 * time.Millisecond,  // late for the next by 10ms: not an overrun
			10: 130 * time.Millisecond, // six deadlines pass: overrun, catch-up, skip
		}}
		period := 20 * time.Millisecond
		r := &Room{srv: srv, id: "k-1", kind: &kind{name: "k"}, h: h, log: zap.NewNop(), ctx: ctx,
			cfg: Config{TickRate: 50, SnapshotEvery: 3}, period: period, ops: make(chan func()),
			stopping: make(chan struct{}), members: make([]*Member, 1), inLimit: 1}
		done := make(chan struct{})
		go func() { r.run(ctx); close(done) }()
		<-done
		var prev time.Time
		for i, tk := range h.seen {
			off := tk.Time.Sub(h.start)
			if off%period != 0 || !tk.Time.After(prev) {
				t.Fatalf("tick %d due at +%v (previous %v): off the schedule", tk.N, off, prev.Sub(h.start))
			}
			if tk.N != uint64(i+1) || tk.Snapshot != (tk.N%3 == 0) {
				t.Fatalf("tick %+v at %d", tk, i)
			}
			prev = tk.Time
		}
		// Tick 10 ended at +330ms: ticks due at +220..+320 were missed.
		// MaxCatchUp of them run back to back (+220, +240, +260), each a
		// whole step late or more (overruns); +280..+320 are skipped; the
		// next is due at +340, in phase.
		for i, want := range map[int]time.Duration{10: 220, 12: 260, 13: 340} {
			if got := h.seen[i].Time.Sub(h.start); got != want*time.Millisecond {
				t.Fatalf("tick %d due at +%v, want +%vms", i+1, got, want)
			}
		}
		st := r.Stats()
		if st.Overruns != 3 || st.Skipped != 3 || st.Ticks != 30 {
			t.Fatalf("stats %+v", st)
		}
		if len(h.fired) != 1 || h.fired[0].Sub(h.start) != 85*time.Millisecond {
			t.Fatalf("timer fired at %v", h.fired)
		}
	})
}

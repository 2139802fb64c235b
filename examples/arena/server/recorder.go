package main

import (
	"bufio"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/enetkit/enetkit/metrics"
	"github.com/enetkit/enetkit/session/room"
)

// maxSamples bounds the tick samples the recorder keeps (16 bytes each):
// 100 rooms at 30 Hz fill it in about 11 minutes; later ticks are counted
// but not sampled.
const maxSamples = 2 << 20

// recorder passes room events on to the Prometheus metrics and keeps
// exact tick lateness and duration samples for the server's last line.
type recorder struct {
	*metrics.Rooms

	mu                      sync.Mutex
	ticks, overruns, inputs uint64
	joins, drops, returns   int64
	late, dur               []time.Duration
	samples                 []tickSample // -ticklog only
	logTicks                bool
	roomIdx                 map[string]int32
}

// tickSample is one tick for -ticklog.
type tickSample struct {
	room      int32
	due, late int64 // ns
}

func (rec *recorder) Ticked(kind string, t room.TickInfo) {
	rec.Rooms.Ticked(kind, t)
	rec.mu.Lock()
	rec.ticks++
	rec.inputs += uint64(t.Inputs)
	if t.Overrun {
		rec.overruns++
	}
	if len(rec.late) < maxSamples {
		rec.late = append(rec.late, t.Late)
		rec.dur = append(rec.dur, t.Duration)
		if rec.logTicks {
			i, ok := rec.roomIdx[t.Room]
			if !ok {
				i = int32(len(rec.roomIdx))
				rec.roomIdx[t.Room] = i
			}
			rec.samples = append(rec.samples, tickSample{i, t.Due.UnixNano(), int64(t.Late)})
		}
	}
	rec.mu.Unlock()
}

func (rec *recorder) MemberJoined(kind string) {
	rec.Rooms.MemberJoined(kind)
	rec.count(&rec.joins)
}

func (rec *recorder) MemberDropped(kind string) {
	rec.Rooms.MemberDropped(kind)
	rec.count(&rec.drops)
}

func (rec *recorder) MemberBack(kind string) {
	rec.Rooms.MemberBack(kind)
	rec.count(&rec.returns)
}

// count adds one to a counter of rec's.
func (rec *recorder) count(n *int64) {
	rec.mu.Lock()
	*n++
	rec.mu.Unlock()
}

// writeTicks writes the -ticklog samples as CSV: room index, deadline and
// lateness in nanoseconds.
func (rec *recorder) writeTicks(name string) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "room,due_ns,late_ns")
	for _, s := range rec.samples {
		fmt.Fprintf(w, "%d,%d,%d\n", s.room, s.due, s.late)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

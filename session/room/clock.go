package room

import (
	"container/heap"
	"time"
)

// A clock wakes rooms at their tick deadlines: after set(a, at), a.c
// receives once at or soon after at. Its methods are safe for concurrent
// use; close releases it and must come after the last set.
//
// On Linux the clock is one timerfd per Server, waited on through the
// runtime's network poller (clock_linux.go): a thread waiting in the
// poller wakes within microseconds of the deadline, where a Go timer may
// fire up to a millisecond late, because the runtime sleeps in whole
// milliseconds when no goroutine is ready. Elsewhere, or when the timerfd
// cannot be had, each alarm is a Go timer (timerClock).
type clock interface {
	set(a *alarm, at time.Time)
	stop(a *alarm)
	close()
}

// An alarm is one room's entry in a clock.
type alarm struct {
	c  chan struct{} // capacity 1: a wake-up not yet taken is not repeated
	at time.Time
	i  int         // index in the fd clock's heap, -1 when not in it
	t  *time.Timer // timerClock's
}

func newAlarm() *alarm { return &alarm{c: make(chan struct{}, 1), i: -1} }

func (a *alarm) ring() {
	select {
	case a.c <- struct{}{}:
	default:
	}
}

// timerClock is the portable clock: a Go timer per alarm.
type timerClock struct{}

func (timerClock) set(a *alarm, at time.Time) {
	a.at = at
	if a.t == nil {
		a.t = time.AfterFunc(time.Until(at), a.ring)
		return
	}
	a.t.Reset(time.Until(at))
}

func (timerClock) stop(a *alarm) {
	if a.t != nil {
		a.t.Stop()
	}
}

func (timerClock) close() {}

// alarms is a min-heap of alarms by deadline.
type alarms []*alarm

func (h alarms) Len() int           { return len(h) }
func (h alarms) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h alarms) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].i = i; h[j].i = j }
func (h *alarms) Push(x any)        { a := x.(*alarm); a.i = len(*h); *h = append(*h, a) }
func (h *alarms) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	a.i = -1
	return a
}

// schedule puts a in h at at, or moves it there.
func (h *alarms) schedule(a *alarm, at time.Time) {
	a.at = at
	if a.i >= 0 {
		heap.Fix(h, a.i)
		return
	}
	heap.Push(h, a)
}

// unschedule takes a out of h.
func (h *alarms) unschedule(a *alarm) {
	if a.i >= 0 {
		heap.Remove(h, a.i)
	}
}

// due rings and removes the alarms due at now.
func (h *alarms) due(now time.Time) {
	for len(*h) > 0 && !(*h)[0].at.After(now) {
		heap.Pop(h).(*alarm).ring()
	}
}

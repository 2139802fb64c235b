package room

import (
	"math/rand/v2"
	"testing"
	"time"
)

// Both clocks ring every alarm, none before its deadline, however the
// alarms were set, moved and stopped; closing the timerfd clock ends its
// goroutine (goleak checks).
func TestClock(t *testing.T) {
	for name, newc := range map[string]func() clock{"platform": newClock, "timers": func() clock { return timerClock{} }} {
		t.Run(name, func(t *testing.T) {
			c := newc()
			defer c.close()
			deadline := time.After(10 * time.Second)
			wait := func(a *alarm) {
				t.Helper()
				select {
				case <-a.c:
					if now := time.Now(); now.Before(a.at) {
						t.Fatalf("rang %v before its deadline", a.at.Sub(now))
					}
				case <-deadline:
					t.Fatal("an alarm did not ring")
				}
			}

			// Fifty alarms, set in random order over 50ms.
			as := make([]*alarm, 50)
			now := time.Now()
			for _, i := range rand.Perm(len(as)) {
				as[i] = newAlarm()
				c.set(as[i], now.Add(time.Duration(i)*time.Millisecond))
			}
			for _, a := range as {
				wait(a)
			}

			// An alarm moved from an hour away to 5ms away rings: the
			// clock re-arms for an earlier deadline.
			late := newAlarm()
			c.set(late, time.Now().Add(time.Hour))
			c.set(late, time.Now().Add(5*time.Millisecond))
			wait(late)

			// A stopped alarm does not ring: one set before a later one
			// that rings, then stopped, has not rung when the later has.
			// (A try where stop came after the deadline proves nothing;
			// it is tried again.)
			for try := 0; ; try++ {
				stopped, later := newAlarm(), newAlarm()
				c.set(stopped, time.Now().Add(10*time.Millisecond))
				c.set(later, time.Now().Add(30*time.Millisecond))
				c.stop(stopped)
				if time.Now().After(stopped.at) {
					if try == 10 {
						t.Fatal("could not stop an alarm 10ms ahead in ten tries")
					}
					wait(later)
					continue
				}
				wait(later)
				select {
				case <-stopped.c:
					t.Fatal("a stopped alarm rang")
				default:
				}
				break
			}

			// A deadline already past rings at once.
			past := newAlarm()
			c.set(past, time.Now().Add(-time.Second))
			wait(past)
		})
	}
}

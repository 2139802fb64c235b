package room

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// fdClock is the Linux clock: one timerfd, armed for the earliest alarm,
// read by one goroutine that rings the alarms due.
type fdClock struct {
	f    *os.File // the timerfd, in the runtime's poller
	fd   int
	done chan struct{} // closed when the reading goroutine has ended

	mu     sync.Mutex
	h      alarms
	armed  time.Time // the deadline the timerfd is set for; zero: none
	closed bool
}

// newClock returns the timerfd clock, or the portable one if the kernel
// refuses a timerfd.
func newClock() clock {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return timerClock{}
	}
	c := &fdClock{f: os.NewFile(uintptr(fd), "timerfd"), fd: fd, done: make(chan struct{})}
	go c.run()
	return c
}

func (c *fdClock) set(a *alarm, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.h.schedule(a, at)
	if c.armed.IsZero() || at.Before(c.armed) {
		c.arm(at)
	}
}

func (c *fdClock) stop(a *alarm) {
	c.mu.Lock()
	c.h.unschedule(a)
	c.mu.Unlock()
}

// arm sets the timerfd to fire at at. c.mu must be held.
func (c *fdClock) arm(at time.Time) {
	if c.closed {
		return
	}
	d := max(time.Until(at), time.Microsecond) // zero would disarm it
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if unix.TimerfdSettime(c.fd, 0, &spec, nil) == nil {
		c.armed = at
	}
}

// run reads the timerfd (each read waits, without a thread, until it
// fires) and rings the alarms due, until the clock is closed.
func (c *fdClock) run() {
	defer close(c.done)
	var b [8]byte // the count of expirations
	for {
		if _, err := c.f.Read(b[:]); err != nil {
			return
		}
		now := time.Now()
		c.mu.Lock()
		c.armed = time.Time{}
		c.h.due(now)
		if len(c.h) > 0 {
			c.arm(c.h[0].at)
		}
		c.mu.Unlock()
	}
}

func (c *fdClock) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.f.Close() // ends the pending read
	<-c.done
}

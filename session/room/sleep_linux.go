package room

import (
	"syscall"
	"time"
)

// preciseSleep blocks the calling goroutine's thread for d with
// nanosleep, which wakes within tens of microseconds on Linux, where a Go
// timer may fire up to a millisecond late (the runtime waits on its
// network poller in whole milliseconds). The runtime gives the
// goroutine's P to others meanwhile.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}

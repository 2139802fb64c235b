//go:build !linux

package room

import "time"

// preciseSleep is time.Sleep where no finer sleep is at hand.
func preciseSleep(d time.Duration) { time.Sleep(d) }

package room

import (
	"math"
	"time"
)

// firstTick returns when a room started at now, ticking every period, has
// its first tick: within a period of now, at the room's phase. The k-th
// room's phase is frac(k·φ) of the period after the server's epoch
// (φ the golden ratio), so however the rooms were created (a burst of
// joins creates many within a millisecond) their ticks are spread over
// the period, never more than about 2.6 times closer than an even
// spread; rooms started together would all be due at the same instant and
// the last of them would begin late by the others' work.
func (srv *Server) firstTick(period time.Duration, now time.Time) time.Time {
	srv.mu.Lock()
	if srv.epoch.IsZero() {
		srv.epoch = now
	}
	srv.phases++
	k, epoch := srv.phases, srv.epoch
	srv.mu.Unlock()
	_, frac := math.Modf(float64(k) * (math.Phi - 1))
	off := time.Duration(frac * float64(period))
	// The first m with epoch + m·period + off after now.
	since := now.Sub(epoch) - off
	m := since / period
	if since >= 0 {
		m++
	}
	return epoch.Add(m*period + off)
}

package main

import (
	"runtime/metrics"
	"time"
)

// schedLatency is the Go runtime's histogram of how long goroutines
// waited, runnable, for a thread to run on: the part of a tick's
// lateness that is the machine's and the scheduler's, not the timer's.
const schedLatency = "/sched/latencies:seconds"

// readSched returns the runtime's scheduling latency histogram so far.
func readSched() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: schedLatency}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// schedQuantiles returns quantiles qs of the waits between histograms a
// (at the start of the run; nil: none) and b, each the upper bound of its
// bucket.
func schedQuantiles(a, b *metrics.Float64Histogram, qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	if b == nil {
		return out
	}
	counts := make([]uint64, len(b.Counts))
	var total uint64
	for i, c := range b.Counts {
		if a != nil {
			c -= a.Counts[i]
		}
		counts[i] = c
		total += c
	}
	if total == 0 {
		return out
	}
	for j, q := range qs {
		want := uint64(q * float64(total))
		var sum uint64
		for i, c := range counts {
			sum += c
			if sum > want {
				out[j] = time.Duration(b.Buckets[i+1] * float64(time.Second))
				break
			}
		}
	}
	return out
}

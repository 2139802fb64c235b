// Command wakelat measures how late the operating system wakes a thread
// that sleeps to absolute deadlines, with no Go runtime in the way: a C
// loop in clock_nanosleep, as cyclictest does. Run beside the arena under
// load, it gives the floor under any tick lateness a room can show at the
// same scheduling priority (run it with chrt or nice to compare
// priorities). It prints one JSON line.
//
//	go run ./examples/arena/wakelat [-period 333us] [-duration 10s]
package main

/*
#cgo CFLAGS: -Wall
#include "wakelat.h"
*/
import "C"

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"
	"unsafe"
)

func main() {
	period := flag.Duration("period", time.Second/3000, "time between deadlines (default: 100 rooms at 30 Hz)")
	duration := flag.Duration("duration", 10*time.Second, "how long to measure")
	flag.Parse()
	if *period <= 0 || *duration < *period {
		fmt.Fprintln(os.Stderr, "wakelat: need 0 < period <= duration")
		os.Exit(2)
	}
	n := int(*duration / *period)
	late := make([]int64, n)
	C.wl_run((*C.int64_t)(unsafe.Pointer(&late[0])), C.int(n), C.int64_t(*period))
	slices.Sort(late)
	us := func(q float64) float64 { return float64(late[int(q*float64(n-1))]) / 1e3 }
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"wakeups": n, "period_us": period.Microseconds(),
		"late_p50_us": us(0.5), "late_p99_us": us(0.99), "late_max_us": us(1),
	})
}

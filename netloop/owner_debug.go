//go:build enetkit_debug

package netloop

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
)

// owner records which goroutine may call a chost's methods: none before
// Run (New and Close set the host up and tear it down on one goroutine,
// before any other can reach it), then the goroutine of the loop. ENet is
// not thread-safe, so a call from any other goroutine is a bug in netloop;
// this build panics on it, as x/net/http2 does with serveG.check().
type owner struct{ id atomic.Uint64 }

func (c *chost) own() { c.owner.id.Store(goroutineID()) }

func (c *chost) check() {
	if id := c.owner.id.Load(); id != 0 && id != goroutineID() {
		panic(fmt.Sprintf("netloop: ENet host called from goroutine %d, owned by the loop goroutine %d", goroutineID(), id))
	}
}

// goroutineID returns the current goroutine's ID, from the first line of
// its stack trace ("goroutine 42 [running]:").
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		panic("netloop: cannot parse goroutine ID: " + err.Error())
	}
	return id
}

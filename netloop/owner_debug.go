//go:build enetkit_debug

package netloop

import (
	"fmt"
	"sync/atomic"
)

// owner records which goroutine may call a chost's methods: none before
// Run (New and Close set the host up and tear it down on one goroutine,
// before any other can reach it), then the goroutine of the loop. ENet is
// not thread-safe, so a call from any other goroutine is a bug in netloop;
// this build panics on it, as x/net/http2 does with serveG.check().
type owner struct{ id atomic.Uint64 }

func (c *chost) own() { c.owner.id.Store(goid()) }

func (c *chost) check() {
	if id := c.owner.id.Load(); id != 0 && id != goid() {
		panic(fmt.Sprintf("netloop: ENet host called from goroutine %d, owned by the loop goroutine %d", goid(), id))
	}
}

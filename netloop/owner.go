//go:build !enetkit_debug

package netloop

// owner is empty in normal builds: the check that every chost call runs on
// the loop goroutine costs a stack walk, so it is made only in builds with
// the enetkit_debug tag (see owner_debug.go).
type owner struct{}

// own makes the calling goroutine the one allowed to call c.
func (c *chost) own() {}

// check panics, in enetkit_debug builds, if the calling goroutine is not
// the one that owns c.
func (c *chost) check() {}

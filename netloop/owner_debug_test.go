//go:build enetkit_debug

package netloop

import "testing"

// In enetkit_debug builds, a call into ENet from a goroutine other than
// the one that owns the host panics.
func TestOwnerCheck(t *testing.T) {
	h, err := New("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := h.c
	defer func() {
		c.owner.id.Store(0) // back to set-up: Close may destroy it
		h.Close()
	}()
	c.readable() // no owner yet: set-up may call
	owned := make(chan struct{})
	go func() {
		c.own()
		c.readable() // the owner may call
		close(owned)
	}()
	<-owned
	defer func() {
		if recover() == nil {
			t.Fatal("a call from another goroutine did not panic")
		}
	}()
	c.readable()
}

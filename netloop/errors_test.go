package netloop_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

func TestErrGone(t *testing.T) {
	for _, err := range []error{netloop.ErrClosed, netloop.ErrStalePeer, netloop.ErrNotConnected, fmt.Errorf("send: %w", netloop.ErrStalePeer)} {
		if !errors.Is(err, netloop.ErrGone) {
			t.Errorf("errors.Is(%v, ErrGone) = false, want true", err)
		}
	}
	for _, err := range []error{netloop.ErrForeignPeer, netloop.ErrChannel, netloop.ErrRange, netloop.ErrTooLarge, netloop.ErrAddress} {
		if errors.Is(err, netloop.ErrGone) {
			t.Errorf("errors.Is(%v, ErrGone) = true, want false", err)
		}
	}
	if !errors.Is(netloop.ErrStalePeer, netloop.ErrStalePeer) || errors.Is(netloop.ErrStalePeer, netloop.ErrClosed) {
		t.Error("the gone errors must stay distinct from each other")
	}
}

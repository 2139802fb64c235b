package netloop

import "runtime"

// goid returns the calling goroutine's id, from runtime.Stack's header
// ("goroutine 18 [running]:"). It walks the stack: for paths that are
// about to wait, and for enetkit_debug builds, not for every message.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return 0
	}
	var id uint64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

package load

/*
#cgo pkg-config: libenet
#include "cworker.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// Engine is what drives the client hosts.
type Engine string

const (
	// EngineC drives each client host from C (cworker.c): one cgo call for
	// the whole measured window, no Go allocation and no cgo call per
	// message, all events of a service call handled in one pass. It does
	// PingPong and reliable Throughput; the default for those.
	EngineC Engine = "c"
	// EngineGo drives each client host from Go through go-enet: one
	// Service call per event. It does every mode.
	EngineGo Engine = "go"
)

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// supportsC reports whether the C engine can run c.
func (c Config) supportsC() bool { return c.Mode != Broadcast && !c.Unreliable }

// runC is worker.run for EngineC: the same steps, in C.
func (w *worker) runC(ctx context.Context) error {
	cfg := &w.r.cfg
	channels := int(cfg.Channel) + 1
	reliable := 0
	if !cfg.Unreliable {
		reliable = 1
	}
	cw := C.lg_new(C.int(len(w.clients)), C.int(channels), C.int(cfg.Window), C.int(cfg.Size), C.int(cfg.Channel), C.int(reliable),
		C.int(w.r.wait), C.int64_t(w.interval), C.int64_t(w.maxLag), C.int64_t(cap(w.samples)), C.int(boolInt(!cfg.ImmediateAcks && w.interval == 0)))
	if cw == nil {
		return fmt.Errorf("load: host %d: cannot create the client host", w.id)
	}
	// ctx's end stops the C loops; mu keeps lg_stop off a freed worker.
	var mu sync.Mutex
	live := true
	stopC := context.AfterFunc(ctx, func() {
		mu.Lock()
		if live {
			C.lg_stop(cw)
		}
		mu.Unlock()
	})
	defer func() {
		stopC()
		mu.Lock()
		live = false
		mu.Unlock()
		C.lg_free(cw)
	}()
	// at converts a time since the run's epoch to the C engine's clock.
	at := func(d time.Duration) C.int64_t { return C.lg_now() + C.int64_t(d-w.r.now()) }
	defer func() { C.lg_disconnect(cw, at(w.r.now()+drainTimeout)) }()

	ip := w.addr.Addr().As4()
	host := *(*uint32)(unsafe.Pointer(&ip[0])) // network byte order: the bytes as they stand
	rc := C.lg_connect(cw, C.enet_uint32(host), C.enet_uint16(w.addr.Port()), C.int(channels), at(cfg.ConnectTimeout))
	if err := w.cError(ctx, cw, rc); err != nil {
		return err
	}
	w.r.ready <- struct{}{}
	for {
		select {
		case <-w.r.start:
			rc := C.lg_load(cw, at(w.r.from), at(w.r.to))
			w.messages, w.errors = int64(cw.messages), int64(cw.errors)
			w.samples = append(w.samples[:0], unsafe.Slice((*time.Duration)(unsafe.Pointer(cw.samples)), int(cw.nsamples))...)
			return w.cError(ctx, cw, rc)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if err := w.cError(ctx, cw, C.lg_service(cw)); err != nil {
			return err
		}
	}
}

// cError turns a C engine's return code into Run's errors.
func (w *worker) cError(ctx context.Context, cw *C.lg_worker, rc C.int) error {
	switch rc {
	case C.LG_OK:
		return nil
	case C.LG_TIMEOUT:
		return fmt.Errorf("%w: %d of %d clients of host %d connected to %s within %v",
			ErrConnectTimeout, int(cw.nconnected), len(w.clients), w.id, w.addr, w.r.cfg.ConnectTimeout)
	case C.LG_CONNECT_FAILED:
		return fmt.Errorf("%w: client %d of host %d: %s did not answer", ErrConnectTimeout, int(cw.failed), w.id, w.addr)
	case C.LG_DISCONNECTED:
		return fmt.Errorf("%w: client %d of host %d", ErrServerDisconnected, int(cw.failed), w.id)
	case C.LG_STOPPED:
		if err := ctx.Err(); err != nil {
			return err
		}
		return errors.New("load: stopped")
	case C.LG_NO_PEER:
		return fmt.Errorf("load: host %d: no free peer slot", w.id)
	}
	return fmt.Errorf("load: host %d: C engine error %d", w.id, int(rc))
}

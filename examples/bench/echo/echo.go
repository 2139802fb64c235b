// Package echo holds the benchmark's echo servers written on the framework,
// to be compared with the hand-written go-enet loop in package refserver:
// one on netloop's event channel, one in an inline handler on the loop's
// goroutine, one through session and dispatch. Both
// answer package load's broadcast request on channel 0.
package echo

import (
	"context"
	"encoding/binary"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/dispatch"
	"github.com/enetkit/enetkit/examples/bench/load"
	"github.com/enetkit/enetkit/metrics"
	"github.com/enetkit/enetkit/netloop"
	"github.com/enetkit/enetkit/session"
)

// Channels is the channel count the servers accept, so that load
// generators may use any channel.
const Channels = netloop.MaxChannels

// Netloop echoes every message on h's Events to its sender, on the same
// channel with the same flag, until ctx is done; it runs h.
func Netloop(ctx context.Context, h *netloop.Host) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return h.Run(ctx) })
	g.Go(func() error { echoEvents(ctx, g, h); return nil })
	return g.Wait()
}

// Inline echoes as Netloop does, but from an inline handler (see
// netloop.WithInline): each message is answered on the loop's goroutine,
// with no consumer goroutine and no command on the way; it runs h.
func Inline(ctx context.Context, h *netloop.Host) error {
	g, ctx := errgroup.WithContext(ctx)
	err := h.SetInline(func(in *netloop.Inline, ev netloop.Event) {
		if ev.Kind != netloop.EventReceive {
			return
		}
		if ev.Channel == load.BroadcastChannel && load.IsBroadcastRequest(ev.Payload) {
			if r, err := load.ParseBroadcastRequest(ev.Payload); err == nil {
				g.Go(func() error { return broadcast(ctx, h, r) })
			}
			return
		}
		in.Send(ev.Peer, ev.Channel, ev.Payload, ev.Flag) // an error means the peer went away
	})
	if err != nil {
		return err
	}
	g.Go(func() error { return h.Run(ctx) })
	return g.Wait()
}

// Group echoes as Netloop does on every host of hg, with one consumer
// goroutine per host; it runs hg. When it returns, received[i] (if
// received is long enough) is the number of messages host i received.
func Group(ctx context.Context, hg *netloop.Group, received []int64) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return hg.Run(ctx) })
	for i, h := range hg.Hosts() {
		g.Go(func() error {
			n := echoEvents(ctx, g, h)
			if i < len(received) {
				received[i] = n
			}
			return nil
		})
	}
	return g.Wait()
}

// echoEvents consumes h's events until they close, echoing every message
// and starting broadcasts in g; it returns how many messages it received.
func echoEvents(ctx context.Context, g *errgroup.Group, h *netloop.Host) (received int64) {
	for ev := range h.Events() {
		if ev.Kind != netloop.EventReceive {
			continue
		}
		received++
		if ev.Channel == load.BroadcastChannel && load.IsBroadcastRequest(ev.Payload) {
			if r, err := load.ParseBroadcastRequest(ev.Payload); err == nil {
				g.Go(func() error { return broadcast(ctx, h, r) })
			}
			continue
		}
		if err := h.Send(ctx, ev.Peer, ev.Channel, ev.Payload, ev.Flag); err != nil && ctx.Err() == nil {
			continue // the peer went away: nothing to echo to
		}
	}
	return received
}

// Session echoes through a session server and a dispatch mux that routes
// each channel, whole, to the echo handler; it runs h. A non-nil m observes
// the sessions and messages.
func Session(ctx context.Context, h *netloop.Host, m *metrics.Metrics) error {
	g, ctx := errgroup.WithContext(ctx)
	var sopts []session.Option
	mopts := []dispatch.Option{dispatch.WithMaxSize(netloop.MaxMessageSize)}
	if m != nil {
		sopts = append(sopts, session.WithObserver(m))
		mopts = append(mopts, dispatch.WithObserver(m))
	}
	mux, err := dispatch.NewMux(mopts...)
	if err != nil {
		return err
	}
	echo := dispatch.HandlerFunc(func(ctx context.Context, m *dispatch.Message) error {
		if m.Channel == load.BroadcastChannel && load.IsBroadcastRequest(m.Payload) {
			if r, err := load.ParseBroadcastRequest(m.Payload); err == nil {
				g.Go(func() error { return broadcast(ctx, h, r) })
			}
			return nil
		}
		m.Session.Send(ctx, m.Channel, m.Payload, m.Flag) // an error means the session ended
		return nil
	})
	for ch := 0; ch < Channels; ch++ {
		mux.HandleChannel(uint8(ch), echo)
	}
	srv, err := session.New(h, mux, sopts...)
	if err != nil {
		return err
	}
	g.Go(func() error { return srv.Run(ctx) })
	return g.Wait()
}

// broadcast sends stamped messages to every peer at the requested rate.
func broadcast(ctx context.Context, h *netloop.Host, r load.BroadcastRequest) error {
	tick := time.NewTicker(time.Second / time.Duration(r.Rate))
	defer tick.Stop()
	end := time.After(r.Duration)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-end:
			return nil
		case <-tick.C:
			b := make([]byte, r.Size)
			binary.LittleEndian.PutUint64(b, uint64(time.Now().UnixNano()))
			if err := h.Broadcast(ctx, load.BroadcastChannel, b, netloop.Reliable); err != nil {
				return nil
			}
		}
	}
}

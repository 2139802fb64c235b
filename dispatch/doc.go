// Package dispatch routes the messages of sessions to handlers by message
// type, in the manner of http.ServeMux, with typed handlers, pluggable
// codecs (raw bytes, JSON, protocol buffers) and middleware.
//
// # Usage
//
//	type Chat struct{ Text string }
//	mux := dispatch.NewMux(dispatch.WithMaxSize(4096), dispatch.WithRejectPolicy(dispatch.RejectDrop))
//	mux.Use(dispatch.Recover(log), dispatch.RateLimit(20, 40))
//	dispatch.Handle(mux, 1, dispatch.JSON, func(ctx context.Context, s *session.Session, m Chat) error {
//		return dispatch.Broadcast(ctx, room, 0, netloop.Reliable, dispatch.JSON, 1, m)
//	})
//	srv := session.New(host, mux)
//
// # Wire format
//
// A message is its type as an unsigned varint (one byte below 128), then
// its payload in the codec of that type. Messages on channels registered
// with HandleChannel are routed whole, with no prefix, which suits raw
// streams such as voice or state snapshots.
//
// # Bad messages
//
// An unknown type, a malformed prefix, an undecodable payload, a message
// over WithMaxSize, or one over a RateLimit is a bad message: the Policy
// drops it (the default) or ends the session. Each is counted in Stats and
// reported to the Observer; none panics or disturbs other sessions. An
// error returned by a handler ends its session (session.ReasonHandlerError).
package dispatch

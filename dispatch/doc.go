// Package dispatch routes the messages of sessions to handlers by message
// type, in the manner of http.ServeMux, with typed handlers, pluggable
// codecs (raw bytes, JSON, protocol buffers) and middleware.
//
// # Usage
//
//	type Chat struct{ Text string }
//	var chat = dispatch.NewRoute[Chat](1, dispatch.JSON, 0, netloop.Reliable)
//
//	mux, err := dispatch.NewMux(dispatch.WithMaxSize(4096), dispatch.WithRejectPolicy(dispatch.RejectDrop))
//	mux.Use(dispatch.Recover(log), dispatch.RateLimit(20, 40))
//	chat.Handle(mux, func(ctx context.Context, s *session.Session, m Chat) error {
//		return chat.Broadcast(ctx, room, m) // room is a *session.Group
//	})
//	srv, err := session.New(host, mux)
//
// # Sending
//
// Every send in the module takes its arguments in one order: the context,
// then where it goes, then what (the channel, the data, the flag):
// netloop's Host.Send(ctx, peer, ch, data, flag), session's
// Session.Send(ctx, ch, data, flag) and Group.Broadcast(ctx, ch, data,
// flag). A Route carries the channel, the flag and the codec, so its sends
// are Route.Send(ctx, session, v) and Route.Broadcast(ctx, group, v).
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
// over WithMaxSize, or one over a RateLimit is a bad message (its
// RejectReason says which): the RejectPolicy drops it (RejectDrop, the
// default) or ends the session (RejectDisconnect). Each is counted in
// Stats and reported to the Observer; none panics or disturbs other
// sessions. An
// error returned by a handler ends its session (session.ReasonHandlerError).
package dispatch

package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/enetkit/enetkit/dispatch"
)

// A Service answers requests from other nodes (or this one). It runs in a
// goroutine of the NATS connection, one request at a time per service and
// node; ctx is done when the requester's timeout would have passed or the
// node stops. An error it returns reaches the requester as a *RemoteError.
type Service func(ctx context.Context, req []byte) ([]byte, error)

// RemoteError is a service's failure, as its requester sees it.
type RemoteError struct {
	Service string
	Node    string // the node that failed
	Text    string // the handler's error message
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("cluster: service %s on node %s: %s", e.Service, e.Node, e.Text)
}

// Is makes errors.Is(err, ErrRemote) true.
func (e *RemoteError) Is(target error) bool { return target == ErrRemote }

// Headers: hdrNode names the node that published a broadcast (a node
// skips its own) or answered a request; hdrError carries a service's error.
const (
	hdrError = "Enetkit-Error"
	hdrNode  = "Enetkit-Node"
)

// Handle registers svc as the node's handler of the service called name.
// Register before Run. Like http.ServeMux.Handle, it panics on a bad name,
// a nil handler, a duplicate or a running node: these are programming errors.
func (n *Node) Handle(name string, svc Service) {
	if err := checkName("service", name); err != nil {
		panic(err)
	}
	if svc == nil || n.services[name] != nil || n.ran.Load() {
		panic(fmt.Sprintf("cluster: Handle %q: nil, duplicate or after Run", name))
	}
	n.services[name] = svc
}

// serveRequest adapts a Service to a NATS subscription.
func (n *Node) serveRequest(name string, svc Service) nats.MsgHandler {
	return func(m *nats.Msg) {
		n.received.Add(1)
		ctx, cancel := context.WithTimeout(*n.ctx.Load(), n.cfg.timeout)
		defer cancel()
		resp, err := svc(ctx, m.Data)
		r := nats.NewMsg(m.Reply)
		r.Header.Set(hdrNode, n.cfg.id)
		if err != nil {
			r.Header.Set(hdrError, err.Error())
		} else {
			r.Data = resp
		}
		if m.Reply == "" {
			return
		}
		if err := m.RespondMsg(r); err != nil {
			n.log.Debug("reply", zap.String("service", name), zap.Error(err))
			return
		}
		n.published.Add(1)
	}
}

// Request sends req to the service called name on node (or, with node "",
// to any one node that serves it: NATS queue groups spread them) and
// returns the answer. It waits until ctx is done, or at most the node's
// timeout (WithTimeout) if ctx has no deadline. Errors: ErrUnavailable at
// once while the node is not joined, ErrNoService if no node (or not node)
// serves it, ErrTimeout, or a *RemoteError (ErrRemote) if the handler failed.
func (n *Node) Request(ctx context.Context, name, node string, req []byte) (resp []byte, err error) {
	if err := checkName("service", name); err != nil {
		return nil, err
	}
	if node != "" {
		if err := checkName("node id", node); err != nil {
			return nil, err
		}
	}
	nc := n.conn()
	if nc == nil {
		return nil, n.unavailable("request " + name)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.timeout)
		defer cancel()
	}
	ctx, cancel := n.connected(ctx)
	defer cancel()
	start := time.Now()
	defer func() {
		if n.cfg.obs != nil {
			n.cfg.obs.RequestDone(name, time.Since(start), err)
		}
	}()
	m := nats.NewMsg(n.serviceSubject(name, node))
	m.Data = req
	n.published.Add(1)
	r, err := nc.RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w: %s (node %q)", ErrNoService, name, node)
	case !n.live.Load():
		return nil, n.kvError("request "+name, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return nil, fmt.Errorf("%w: %s: %w", ErrTimeout, name, err)
	case err != nil:
		return nil, n.kvError("request "+name, err)
	}
	n.received.Add(1)
	if text := r.Header.Get(hdrError); text != "" {
		return nil, &RemoteError{Service: name, Node: r.Header.Get(hdrNode), Text: text}
	}
	return r.Data, nil
}

// Serve registers fn as the node's handler of the service called name,
// with requests and answers encoded by c (a dispatch codec). See Handle.
func Serve[Req, Resp any](n *Node, name string, c dispatch.Codec, fn func(ctx context.Context, req Req) (Resp, error)) {
	n.Handle(name, func(ctx context.Context, b []byte) ([]byte, error) {
		var req Req
		if err := c.Unmarshal(b, &req); err != nil {
			return nil, fmt.Errorf("%w: %s request: %w", ErrMalformed, c.Name(), err)
		}
		resp, err := fn(ctx, req)
		if err != nil {
			return nil, err
		}
		return c.Append(nil, resp)
	})
}

// Call is Request with req and the answer encoded by c (a dispatch codec).
func Call[Req, Resp any](ctx context.Context, n *Node, name, node string, c dispatch.Codec, req Req) (Resp, error) {
	var resp Resp
	b, err := c.Append(nil, req)
	if err != nil {
		return resp, fmt.Errorf("cluster: request %s: %w", name, err)
	}
	out, err := n.Request(ctx, name, node, b)
	if err != nil {
		return resp, err
	}
	if err := c.Unmarshal(out, &resp); err != nil {
		return resp, fmt.Errorf("%w: %s answer: %w", ErrMalformed, name, err)
	}
	return resp, nil
}

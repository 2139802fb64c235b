package netloop_test

import (
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

func TestEcho(t *testing.T) {
	srv, cli, sp, cp := pair(t, 1)
	if err := cli.Send(ctx(t), cp, 0, []byte("hello world"), netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	ev := expect(t, srv, netloop.EventReceive)
	if string(ev.Payload) != "hello world" || ev.Peer != sp || ev.Flag != netloop.Reliable {
		t.Fatalf("got %+v", ev)
	}
	if err := srv.Send(ctx(t), sp, 0, ev.Payload, netloop.Reliable); err != nil {
		t.Fatal(err)
	}
	ev = expect(t, cli, netloop.EventReceive)
	if string(ev.Payload) != "hello world" {
		t.Fatalf("got %+v", ev)
	}
}

package linkproxy_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/enetkit/enetkit/integration/linkproxy"
)

// A server behind a link with 20ms of delay each way.
func Example() {
	server, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	link := linkproxy.Link{Delay: 20 * time.Millisecond}
	p, err := linkproxy.New("127.0.0.1:0", server.LocalAddr().String(), linkproxy.Config{Up: link, Down: link, Seed: 1})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()

	client, err := net.DialUDP("udp", nil, p.Addr()) // the proxy, not the server
	if err != nil {
		panic(err)
	}
	defer client.Close()
	client.Write([]byte("hello"))
	buf := make([]byte, 1500)
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := server.ReadFromUDP(buf)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(buf[:n]))

	cancel()
	fmt.Println(<-done, p.Stats().Up.Forwarded)
	// Output:
	// hello
	// <nil> 1
}

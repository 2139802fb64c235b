// Command bot is a headless client of the chat server
// (examples/chat/server): it connects, takes a nickname, joins a room, says
// one thing, prints what the room says for a while, leaves, disconnects
// and exits with status 0.
//
//	go run ./examples/chat/server &
//	go run ./examples/chat/bot -nick alice
//	go run ./examples/chat/bot -nick bob -room lobby -say "hi alice" -wait 10s
//
// It prints "joined <room> as <nick>" once in the room, then every message
// of the room as "[room] nick: text" (the room's recent messages first),
// and "[room] * nick joined" or "left" as others come and go. SIGINT ends
// the -wait early, and the bot still leaves cleanly. If the server refuses
// a request (the nickname is taken, say), or does not answer within
// -timeout at any step, the bot prints why on stderr and exits with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/enetkit/enetkit/examples/chat/chatproto"
	"github.com/enetkit/enetkit/netloop"
)

type config struct {
	addr, nick, room, say string
	wait, timeout         time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:6790", "server `address`")
	flag.StringVar(&c.nick, "nick", fmt.Sprintf("bot-%d", os.Getpid()), "`nickname`")
	flag.StringVar(&c.room, "room", "lobby", "`room` to join")
	flag.StringVar(&c.say, "say", "", "`text` to say (default \"hello from <nick>\")")
	flag.DurationVar(&c.wait, "wait", time.Second, "how long to read the room after saying")
	flag.DurationVar(&c.timeout, "timeout", 5*time.Second, "how long to wait for each answer of the server")
	flag.Parse()
	if c.say == "" {
		c.say = "hello from " + c.nick
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal kills at once

	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bot:", err)
		os.Exit(1)
	}
}

func run(sig context.Context, c config) error {
	for _, err := range []error{chatproto.CheckNick(c.nick), chatproto.CheckRoom(c.room), chatproto.CheckText(c.say)} {
		if err != nil {
			return err
		}
	}
	if c.wait < 0 || c.timeout <= 0 {
		return errors.New("-wait must not be negative, -timeout must be positive")
	}
	host, err := netloop.New("", netloop.WithPeers(1), netloop.WithChannels(chatproto.Channels),
		netloop.WithDrainTimeout(time.Second))
	if err != nil {
		return err
	}
	// The host runs until the bot is done, not until a signal: after SIGINT
	// the bot still leaves and disconnects.
	g, ctx := errgroup.WithContext(context.Background())
	g.Go(func() error { return host.Run(ctx) })
	g.Go(func() error {
		defer host.Close() // the bot is done: stop Run, disconnecting if need be
		b := &bot{host: host, config: c}
		return b.run(sig)
	})
	return g.Wait()
}

// bot is the conversation with the server, in the goroutine of bot.run;
// it alone reads the host's events.
type bot struct {
	config
	host   *netloop.Host
	server netloop.Peer
}

// run talks to the server. sig is cancelled on SIGINT or SIGTERM.
func (b *bot) run(sig context.Context) error {
	// Connect, take the nickname and join. The Joined for ourselves is the
	// server's answer to both Hello and Join; a refusal is an Error instead.
	ctx, cancel := b.step(sig, "connecting to "+b.addr)
	defer cancel()
	server, err := b.host.Connect(ctx, b.addr, chatproto.Channels, 0)
	if err != nil {
		return err
	}
	b.server = server
	if err := b.connected(ctx); err != nil {
		return err
	}
	ctx, cancel = b.step(sig, "joining "+b.room)
	defer cancel()
	if err := b.send(ctx, chatproto.Hello{Nick: b.nick}, chatproto.Join{Room: b.room}); err != nil {
		return err
	}
	if err := b.await(ctx, chatproto.Joined{Room: b.room, Nick: b.nick}); err != nil {
		return err
	}

	// Say, and wait for the server to echo it to the room.
	ctx, cancel = b.step(sig, "saying "+b.say)
	defer cancel()
	said := chatproto.Said{Room: b.room, Nick: b.nick, Text: b.say}
	if err := b.send(ctx, chatproto.Say{Room: b.room, Text: b.say}); err != nil {
		return err
	}
	if err := b.await(ctx, said); err != nil {
		return err
	}

	// Read the room for -wait, or until a signal.
	ctx, cancel = context.WithTimeout(sig, b.wait)
	defer cancel()
	if err := b.await(ctx, nil); ctx.Err() == nil {
		return err
	}

	// Leave and disconnect, whether or not a signal came.
	ctx, cancel = b.step(context.WithoutCancel(sig), "leaving "+b.room)
	defer cancel()
	if err := b.send(ctx, chatproto.Leave{Room: b.room}); err != nil {
		return err
	}
	if err := b.await(ctx, chatproto.Left{Room: b.room, Nick: b.nick}); err != nil {
		return err
	}
	if err := b.host.Disconnect(ctx, b.server, 0); err != nil {
		return err
	}
	return b.disconnected(ctx)
}

// step returns a context for one exchange with the server, bounded by
// -timeout, whose cause says what the bot was doing.
func (b *bot) step(parent context.Context, doing string) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(parent, b.timeout,
		fmt.Errorf("no answer from the server within %v while %s", b.timeout, doing))
}

// failed returns why ctx is done: a timeout's cause, or "interrupted".
func failed(ctx context.Context) error {
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return errors.New("interrupted")
}

// send sends ms to the server, in order.
func (b *bot) send(ctx context.Context, ms ...chatproto.Message) error {
	for _, m := range ms {
		data, err := chatproto.Encode(m)
		if err != nil {
			return err
		}
		if err := b.host.Send(ctx, b.server, chatproto.Channel, data, netloop.Reliable); err != nil {
			return err
		}
	}
	return nil
}

// event returns the host's next event.
func (b *bot) event(ctx context.Context) (netloop.Event, error) {
	select {
	case ev, ok := <-b.host.Events():
		if !ok {
			return ev, netloop.ErrClosed
		}
		return ev, nil
	case <-ctx.Done():
		return netloop.Event{}, failed(ctx)
	}
}

// connected waits for the connection to the server.
func (b *bot) connected(ctx context.Context) error {
	for {
		ev, err := b.event(ctx)
		if err != nil {
			return err
		}
		switch ev.Kind {
		case netloop.EventConnect:
			return nil
		case netloop.EventDisconnect:
			return fmt.Errorf("cannot connect to %s (is the server running?)", b.addr)
		}
	}
}

// await prints what the server sends until it sends want (any message if
// want is nil, so await only returns with an error then). It fails on an
// Error from the server and on a disconnect.
func (b *bot) await(ctx context.Context, want chatproto.Message) error {
	for {
		ev, err := b.event(ctx)
		if err != nil {
			return err
		}
		switch ev.Kind {
		case netloop.EventDisconnect:
			return fmt.Errorf("the server closed the connection (%v)", ev.Reason)
		case netloop.EventReceive:
			m, err := chatproto.Decode(ev.Payload)
			if errors.Is(err, chatproto.ErrUnknownType) {
				continue // from a newer server
			}
			if err != nil {
				return err
			}
			if e, ok := m.(chatproto.Error); ok {
				return fmt.Errorf("the server refused: %s", e.Text)
			}
			b.show(m)
			if want != nil && m == want {
				return nil
			}
		}
	}
}

// show prints a message of the server.
func (b *bot) show(m chatproto.Message) {
	switch m := m.(type) {
	case chatproto.Said:
		fmt.Printf("[%s] %s: %s\n", m.Room, m.Nick, m.Text)
	case chatproto.Joined:
		if m.Nick == b.nick {
			fmt.Printf("joined %s as %s\n", m.Room, m.Nick)
		} else {
			fmt.Printf("[%s] * %s joined\n", m.Room, m.Nick)
		}
	case chatproto.Told:
		fmt.Printf("[private] %s: %s\n", m.From, m.Text)
	case chatproto.Left:
		if m.Nick == b.nick {
			fmt.Printf("left %s\n", m.Room)
		} else {
			fmt.Printf("[%s] * %s left\n", m.Room, m.Nick)
		}
	}
}

// disconnected waits for the server to acknowledge our disconnect.
func (b *bot) disconnected(ctx context.Context) error {
	for {
		ev, err := b.event(ctx)
		if err != nil {
			return err
		}
		if ev.Kind == netloop.EventDisconnect {
			if ev.Reason != netloop.ReasonLocal {
				return fmt.Errorf("disconnect: %v", ev.Reason)
			}
			return nil
		}
	}
}

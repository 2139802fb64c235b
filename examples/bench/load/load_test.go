package load_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/codecat/go-enet"
	"go.uber.org/goleak"

	"github.com/enetkit/enetkit/examples/bench/load"
	"github.com/enetkit/enetkit/examples/bench/refserver"
)

func TestMain(m *testing.M) {
	enet.Initialize()
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		enet.Deinitialize()
		os.Exit(code)
	}))
}

// freeAddr returns a loopback address whose UDP port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// serve runs f, an ENet server loop, on a free port until the test ends.
// listen creates the server; it is retried on bind failure, since the port
// may have been taken since freeAddr released it.
func serve(t *testing.T, listen func(addr string) (run func(context.Context) error, err error)) string {
	t.Helper()
	var addr string
	var run func(context.Context) error
	for attempt := 1; ; attempt++ {
		addr = freeAddr(t)
		var err error
		if run, err = listen(addr); err == nil {
			break
		} else if attempt == 3 {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	})
	return addr
}

// startRefserver runs a refserver until the test ends and returns its address.
func startRefserver(t *testing.T) string {
	return serve(t, func(addr string) (func(context.Context) error, error) {
		s, err := refserver.Listen(addr, 64, false)
		if err != nil {
			return nil, err
		}
		return s.Run, nil
	})
}

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		cfg  load.Config
	}{
		{"pingpong", load.Config{Mode: load.PingPong}},
		{"throughput", load.Config{Mode: load.Throughput, Clients: 4, Hosts: 2, Window: 4, ServerPID: os.Getpid()}},
		{"paced", load.Config{Mode: load.Throughput, Clients: 3, Hosts: 2, Window: 2, Rate: 2000, Channel: 3}},
		{"unreliable", load.Config{Mode: load.Throughput, Clients: 2, Window: 2, Unreliable: true, Size: 200}},
		{"broadcast", load.Config{Mode: load.Broadcast, Clients: 4, Hosts: 2, Rate: 200}},
		{"pingpong/go", load.Config{Mode: load.PingPong, Engine: load.EngineGo}},
		{"throughput/go", load.Config{Mode: load.Throughput, Clients: 4, Hosts: 2, Window: 4, ServerPID: os.Getpid(), Engine: load.EngineGo}},
		{"paced/go", load.Config{Mode: load.Throughput, Clients: 3, Hosts: 2, Window: 2, Rate: 2000, Channel: 3, Engine: load.EngineGo}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Addr = startRefserver(t)
			cfg.Duration, cfg.Warmup, cfg.ConnectTimeout = 500*time.Millisecond, 100*time.Millisecond, 2*time.Second
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := load.Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if res.Mode != cfg.Mode || res.Duration != cfg.Duration {
				t.Errorf("mode %q duration %v, want %q %v", res.Mode, res.Duration, cfg.Mode, cfg.Duration)
			}
			if res.Messages <= 0 || res.MsgsPerSec <= 0 {
				t.Errorf("messages %d (%v/s), want > 0", res.Messages, res.MsgsPerSec)
			}
			if !(0 < res.P50 && res.P50 <= res.P99 && res.P99 <= res.P999 && res.P999 <= res.Max) {
				t.Errorf("latencies not ordered and positive: p50 %v p99 %v p99.9 %v max %v", res.P50, res.P99, res.P999, res.Max)
			}
			if res.Errors != 0 {
				t.Errorf("errors %d, want 0", res.Errors)
			}
			if cfg.ServerPID > 0 && (res.ServerCPU <= 0 || res.CPUPerMillion <= 0) {
				t.Errorf("server cpu %v (%v s per million), want > 0", res.ServerCPU, res.CPUPerMillion)
			}
			if res.LoadCPU < 0 || (res.LoadCPU > 0) != (res.LoadCPUPerMillion > 0) {
				t.Errorf("load generator cpu %v (%v s per million)", res.LoadCPU, res.LoadCPUPerMillion)
			}
			wantEngine := load.EngineC
			if cfg.Engine == load.EngineGo || cfg.Mode == load.Broadcast || cfg.Unreliable {
				wantEngine = load.EngineGo
			}
			if res.Engine != wantEngine {
				t.Errorf("engine %q, want %q", res.Engine, wantEngine)
			}
		})
	}
}

func TestRunBadAddress(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", "127.0.0.1:70000", "0.0.0.0:6789", ":6789", "[::1]:6789"} {
		t.Run(addr, func(t *testing.T) {
			_, err := load.Run(t.Context(), load.Config{Addr: addr, Duration: time.Millisecond})
			if !errors.Is(err, load.ErrBadAddress) {
				t.Errorf("Run(%q) = %v, want ErrBadAddress", addr, err)
			}
		})
	}
}

func TestRunBadConfig(t *testing.T) {
	for _, cfg := range []load.Config{
		{Mode: "nope"},
		{Size: load.MinSize - 1},
		{Mode: load.Broadcast, Size: load.BroadcastStampSize - 1},
		{Rate: -1},
		{Channel: 255},
		{Duration: -time.Second},
		{Engine: "rust"},
		{Engine: load.EngineC, Mode: load.Broadcast},
		{Engine: load.EngineC, Unreliable: true},
	} {
		cfg.Addr = "127.0.0.1:1"
		if _, err := load.Run(t.Context(), cfg); !errors.Is(err, load.ErrBadConfig) {
			t.Errorf("Run(%+v) = %v, want ErrBadConfig", cfg, err)
		}
	}
}

func TestRunConnectTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := load.Run(ctx, load.Config{Addr: freeAddr(t), Clients: 2, Hosts: 2, ConnectTimeout: timeout})
	if !errors.Is(err, load.ErrConnectTimeout) {
		t.Fatalf("Run = %v, want ErrConnectTimeout", err)
	}
	// Connect timeout plus the bounded disconnect drain.
	if d := time.Since(start); d > timeout+2*time.Second {
		t.Errorf("Run took %v", d)
	}
}

// TestRunServerDisconnects runs against a server that disconnects every peer
// as soon as it receives data from it.
func TestRunServerDisconnects(t *testing.T) {
	addr := serve(t, func(addr string) (func(context.Context) error, error) {
		ap, err := load.ResolveAddr(t.Context(), addr)
		if err != nil {
			return nil, err
		}
		host, err := enet.NewHost(enet.NewAddress(ap.Addr().String(), ap.Port()), 8, 1, 0, 0)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
			defer host.Destroy()
			for ctx.Err() == nil {
				ev := host.Service(1)
				if ev.GetType() == enet.EventReceive {
					ev.GetPacket().Destroy()
					ev.GetPeer().Disconnect(0)
				}
			}
			return nil
		}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := load.Run(ctx, load.Config{Addr: addr, Duration: 5 * time.Second, ConnectTimeout: 2 * time.Second})
	if !errors.Is(err, load.ErrServerDisconnected) {
		t.Fatalf("Run = %v, want ErrServerDisconnected", err)
	}
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := load.Run(ctx, load.Config{Addr: freeAddr(t)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

func TestBroadcastRequest(t *testing.T) {
	for _, r := range []load.BroadcastRequest{
		{Rate: 1, Size: load.BroadcastStampSize, Duration: time.Millisecond},
		{Rate: 100, Size: 64, Duration: 1500 * time.Millisecond},
		{Rate: load.MaxBroadcastRate, Size: load.MaxBroadcastSize, Duration: load.MaxBroadcastDuration},
	} {
		b := load.AppendBroadcastRequest(nil, r)
		if !load.IsBroadcastRequest(b) {
			t.Errorf("IsBroadcastRequest(%q) = false", b)
		}
		got, err := load.ParseBroadcastRequest(b)
		if err != nil || got != r {
			t.Errorf("ParseBroadcastRequest(%q) = %+v, %v; want %+v", b, got, err, r)
		}
	}
	if b := load.AppendBroadcastRequest(nil, load.BroadcastRequest{Rate: 250, Size: 32, Duration: 2 * time.Second}); string(b) != "bcast 250 32 2000" {
		t.Errorf("AppendBroadcastRequest = %q", b)
	}
}

func TestParseBroadcastRequestMalformed(t *testing.T) {
	for _, s := range []string{
		"", "bcast", "bcast ", "Bcast 1 8 1", "bcast 1 8", "bcast 1 8 1 1", "bcast 1 8 1 ",
		"bcast  1 8 1", "bcast 1 8 1\n", "bcast -1 8 1", "bcast +1 8 1", "bcast 1e3 8 1", "bcast 1.5 8 1",
		"bcast 0 8 1", "bcast 1 7 1", "bcast 1 8 0", "bcast 1000001 8 1", "bcast 1 1048577 1",
		"bcast 1 8 3600001", "bcast 99999999999999999999 8 1", "bcast 1 8 1\x00",
		"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f",
	} {
		if r, err := load.ParseBroadcastRequest([]byte(s)); !errors.Is(err, load.ErrBadBroadcastRequest) {
			t.Errorf("ParseBroadcastRequest(%q) = %+v, %v; want ErrBadBroadcastRequest", s, r, err)
		}
	}
}

func ExampleAppendBroadcastRequest() {
	b := load.AppendBroadcastRequest(nil, load.BroadcastRequest{Rate: 100, Size: 64, Duration: 3 * time.Second})
	fmt.Println(string(b))
	// Output: bcast 100 64 3000
}

// Command loadgen runs package load against an ENet 1.3 echo server and
// prints a summary, or one JSON line with -json (snake_case keys, durations
// in microseconds).
//
// Usage:
//
//	loadgen -mode throughput -clients 64 -hosts 4 -window 8 -duration 5s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/codecat/go-enet"
	"github.com/enetkit/enetkit/examples/bench/load"
)

func main() {
	var cfg load.Config
	var mode string
	var asJSON bool
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:6789", "server address ip:port")
	flag.StringVar(&mode, "mode", string(load.Throughput), "pingpong, throughput or broadcast")
	flag.IntVar(&cfg.Clients, "clients", 1, "number of clients (ENet peers)")
	flag.IntVar(&cfg.Hosts, "hosts", 1, "number of client hosts, one goroutine each")
	flag.IntVar(&cfg.Window, "window", 1, "messages in flight per client")
	flag.Float64Var(&cfg.Rate, "rate", 0, "total messages/s offered (0: as fast as the window allows); broadcast: server rate in Hz")
	flag.IntVar(&cfg.Size, "size", load.DefaultSize, "message size in bytes")
	flag.DurationVar(&cfg.Duration, "duration", load.DefaultDuration, "measured window")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warmup")
	flag.DurationVar(&cfg.ConnectTimeout, "connect-timeout", load.DefaultConnectTimeout, "time allowed to connect all clients")
	channel := flag.Uint("channel", 0, "ENet channel (0..254)")
	flag.BoolVar(&cfg.Unreliable, "unreliable", false, "send unreliable messages")
	flag.IntVar(&cfg.ServerPID, "server-pid", 0, "measure this process's CPU time")
	flag.BoolVar(&cfg.Poll, "poll", false, "client hosts busy-poll Service(0) (for ping-pong latency)")
	flag.BoolVar(&asJSON, "json", false, "print one JSON line")
	engine := flag.String("engine", "", "client engine: c (pingpong and reliable throughput; the default there) or go")
	flag.BoolVar(&cfg.ImmediateAcks, "immediate-acks", false, "C engine: acknowledge in datagrams of their own, as ENet does")
	flag.Parse()
	if *channel > 254 {
		fmt.Fprintf(os.Stderr, "loadgen: -channel %d out of range 0..254\n", *channel)
		os.Exit(2)
	}
	cfg.Mode, cfg.Channel, cfg.Engine = load.Mode(mode), uint8(*channel), load.Engine(*engine)

	res, err := run(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(1)
	}
	if asJSON {
		b, err := json.Marshal(toJSON(res))
		if err != nil {
			fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
			os.Exit(1)
		}
		fmt.Println(string(b))
		return
	}
	printSummary(res)
}

func run(cfg load.Config) (load.Result, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enet.Initialize()
	defer enet.Deinitialize()
	return load.Run(ctx, cfg)
}

// result is load.Result as JSON, durations in microseconds.
type result struct {
	Mode           string  `json:"mode"`
	Clients        int     `json:"clients"`
	Messages       int64   `json:"messages"`
	Duration       float64 `json:"duration"`
	MsgsPerSec     float64 `json:"msgs_per_sec"`
	P50            float64 `json:"p50"`
	P99            float64 `json:"p99"`
	P999           float64 `json:"p999"`
	Max            float64 `json:"max"`
	ServerCPU      float64 `json:"server_cpu"`
	CPUPerMillion  float64 `json:"cpu_per_million"` // seconds
	LoadCPU        float64 `json:"load_cpu"`
	LoadPerMillion float64 `json:"load_cpu_per_million"` // seconds
	Engine         string  `json:"engine"`
	Errors         int64   `json:"errors"`
	Lost           int64   `json:"lost"`
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func toJSON(r load.Result) result {
	return result{
		Mode: string(r.Mode), Clients: r.Clients, Messages: r.Messages,
		Duration: us(r.Duration), MsgsPerSec: r.MsgsPerSec,
		P50: us(r.P50), P99: us(r.P99), P999: us(r.P999), Max: us(r.Max),
		ServerCPU: us(r.ServerCPU), CPUPerMillion: r.CPUPerMillion,
		LoadCPU: us(r.LoadCPU), LoadPerMillion: r.LoadCPUPerMillion, Engine: string(r.Engine),
		Errors: r.Errors, Lost: r.Lost,
	}
}

func printSummary(r load.Result) {
	lat := "rtt"
	if r.Mode == load.Broadcast {
		lat = "one-way"
	}
	fmt.Printf("%s: %d clients, %d msgs in %v = %.0f msgs/s\n", r.Mode, r.Clients, r.Messages, r.Duration, r.MsgsPerSec)
	fmt.Printf("%s latency: p50 %.1fµs  p99 %.1fµs  p99.9 %.1fµs  max %.1fµs\n", lat, us(r.P50), us(r.P99), us(r.P999), us(r.Max))
	if r.ServerCPU > 0 {
		fmt.Printf("server cpu: %v (%.3f s per million msgs)\n", r.ServerCPU, r.CPUPerMillion)
	}
	fmt.Printf("load generator cpu (%s engine): %v (%.3f s per million msgs)\n", r.Engine, r.LoadCPU, r.LoadCPUPerMillion)
	fmt.Printf("errors %d, lost %d\n", r.Errors, r.Lost)
}

package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain runs the binary as a server when measure starts it as one.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// TestRun runs a small flood against both servers, each in its own process,
// and checks that every figure was measured and the table printed. It
// asserts nothing about how the servers stand the flood: the program
// measures that.
func TestRun(t *testing.T) {
	cfg := config{
		scenarios: []scenario{{slots: 8, rate: 1000}},
		impls:     []string{"ref", "netloop"},
		sources:   50,
		duration:  time.Second,
		try:       500 * time.Millisecond,
		interval:  200 * time.Millisecond,
		settle:    200 * time.Millisecond,
		recover:   time.Second,
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var rs []result
	for _, impl := range cfg.impls {
		r, err := measure(ctx, cfg, self, impl, cfg.scenarios[0])
		if err != nil {
			t.Fatalf("%s: %v", impl, err)
		}
		if r.baseline <= 0 || r.flood.Sent == 0 || r.flood.SendErrors != 0 || r.tries == 0 ||
			r.rssBefore <= 0 || r.rssPeak < r.rssBefore || r.rssAfter <= 0 || r.cpu < 0 {
			t.Fatalf("%s: %+v", impl, r)
		}
		rs = append(rs, r)
	}
	var b strings.Builder
	table(&b, cfg, cfg.scenarios[0], rs)
	for _, want := range []string{"### 8 slots, flood of 1000 CONNECTs/s from 50 sources for 1s", "go-enet reference (ref)", "netloop echo (netloop)", "server RSS before / peak / after"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	t.Logf("\n%s", b.String())
}

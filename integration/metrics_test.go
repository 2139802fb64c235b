package integration

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestExampleEchoMetrics runs the echo server with -metrics, sends it two
// messages and reads its figures through a real scrape.
func TestExampleEchoMetrics(t *testing.T) {
	t.Parallel()
	bin := buildExamples(t, "echo/server", "echo/client")
	ctx := exampleContext(t)
	addr := freeLoopbackAddr(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	maddr := ln.Addr().String()
	ln.Close()
	srv := startExampleServer(t, ctx, filepath.Join(bin, "server"), "-addr", addr, "-metrics", maddr)
	for _, msg := range []string{"one", "two"} {
		out := runExampleClient(t, ctx, filepath.Join(bin, "client"), "-addr", addr, "-msg", msg)
		expectOutput(t, "client", out, "Got message: "+msg)
	}

	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+maddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("invalid exposition: %v", err)
	}
	counts := map[string]float64{}
	for _, m := range mfs["enetkit_host_events_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "kind" {
				counts[l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if counts["connect"] != 2 || counts["receive"] != 2 || counts["disconnect"] != 2 {
		t.Errorf("events by kind %v, want 2 connects, 2 receives, 2 disconnects", counts)
	}
	if h := mfs["enetkit_host_loop_iteration_duration_seconds"]; h == nil || h.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
		t.Errorf("no loop iteration histogram")
	}
	srv.interrupt(t)
}

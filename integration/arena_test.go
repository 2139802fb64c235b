package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// arenaRoom is one room of the arena server's /state.
type arenaRoom struct {
	ID    string `json:"id"`
	State struct {
		Players []struct {
			ID        uint64 `json:"id"`
			Name      string `json:"n"`
			Connected bool   `json:"c"`
		} `json:"p"`
	} `json:"state"`
}

func arenaState(t *testing.T, ctx context.Context, addr string) []arenaRoom {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/state", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /state: %v", err)
	}
	defer res.Body.Close()
	var rooms []arenaRoom
	if err := json.NewDecoder(res.Body).Decode(&rooms); err != nil {
		t.Fatalf("GET /state: %v", err)
	}
	return rooms
}

// awaitArena polls the arena's /state every 20ms until cond holds, failing
// the test after exampleWait; it returns how long it took.
func awaitArena(t *testing.T, ctx context.Context, addr, what string, cond func([]arenaRoom) bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(exampleWait)
	for !cond(arenaState(t, ctx, addr)) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("arena: %s: not within %v", what, exampleWait)
		}
	}
	return time.Since(start)
}

func countPlayers(rooms []arenaRoom, connected bool, prefix string) int {
	n := 0
	for _, r := range rooms {
		for _, p := range r.State.Players {
			if p.Connected == connected && strings.HasPrefix(p.Name, prefix) {
				n++
			}
		}
	}
	return n
}

// The arena example end to end: bots play in rooms and two of them have
// their connections reset and come back to their seats; a killed bot
// process is dropped by the server's liveness check; the spectator page,
// in a real headless browser, shows the players; metrics are served; the
// server shuts down gracefully with its figures.
func TestExampleArena(t *testing.T) {
	t.Parallel()
	bin := buildExamples(t, "arena/server", "arena/bot")
	ctx := exampleContext(t)
	addr, web, prom := freeLoopbackAddr(t), freeTCPAddr(t), freeTCPAddr(t)
	srv := startExampleServer(t, ctx, filepath.Join(bin, "server"), "-addr", addr, "-http", web, "-metrics", prom)

	// A victim process with two bots, killed once they play.
	victim := exec.CommandContext(ctx, filepath.Join(bin, "bot"), "-addr", addr, "-n", "2", "-duration", "1m")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Process.Kill(); _ = victim.Wait() })
	awaitArena(t, ctx, web, "the victim bots play", func(r []arenaRoom) bool { return countPlayers(r, true, "bot-") == 2 })

	type botResult struct {
		out string
		err error
	}
	done := make(chan botResult, 1)
	go func() {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "bot"), "-addr", addr, "-n", "14", "-duration", "12s",
			"-cut", "2", "-cut-at", "1s")
		out, err := cmd.Output()
		done <- botResult{string(out), err}
	}()
	awaitArena(t, ctx, web, "16 bots play", func(r []arenaRoom) bool { return countPlayers(r, true, "bot-") == 16 })
	// The page is checked while all 16 play: the browser takes seconds to
	// start on a loaded machine, and the bots' run is bounded.
	checkSpectatorPage(t, ctx, web)

	if err := victim.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	took := awaitArena(t, ctx, web, "the killed bots are dropped", func(r []arenaRoom) bool {
		return countPlayers(r, false, "bot-") >= 2
	})
	t.Logf("the server dropped the killed process's bots %v after the kill", took.Round(10*time.Millisecond))

	res, err := http.Get("http://" + prom + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	expectOutput(t, "metrics", string(body), `enetkit_room_members{kind="arena"}`, `enetkit_room_tick_seconds_bucket{kind="arena"`, `enetkit_room_drops_total{kind="arena"}`, "enetkit_sessions_started_total")

	var r botResult
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("bot did not finish")
	}
	if r.err != nil {
		t.Fatalf("bot: %v\n%s", r.err, r.out)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	var got struct {
		Bots, Joined       int
		TickHz             int     `json:"tick_hz"`
		SnapsMin           float64 `json:"snapshots_per_s_min"`
		Disconnects        int     `json:"disconnects"`
		Reconnects         int     `json:"reconnects"`
		CutBack            int     `json:"cut_back_same_seat"`
		CutKept            int     `json:"cut_kept_state"`
		SnapshotsPerS, Lat float64
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("bot's last line: %v\n%s", err, r.out)
	}
	t.Logf("bot: %s", lines[len(lines)-1])
	if got.Bots != 14 || got.Joined != 14 || got.TickHz != 30 || got.SnapsMin <= 0 ||
		got.Disconnects != 2 || got.Reconnects != 2 || got.CutBack != 2 || got.CutKept != 2 {
		t.Fatalf("bot result %+v", got)
	}

	out := srv.interrupt(t)
	last := strings.Split(strings.TrimSpace(out), "\n")
	var fig struct {
		Ticks, Joins, Drops int
	}
	if err := json.Unmarshal([]byte(last[len(last)-1]), &fig); err != nil || fig.Ticks == 0 || fig.Joins < 16 || fig.Drops < 2 {
		t.Fatalf("server's last line %q: %+v %v", last[len(last)-1], fig, err)
	}
}

// checkSpectatorPage loads the spectator page in headless chromium, lets
// it run for three seconds of virtual time, and checks that it drew the
// players and updated several times.
func checkSpectatorPage(t *testing.T, ctx context.Context, web string) {
	t.Helper()
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Log("no chromium on PATH (.ci/test installs it): spectator page not checked")
		return
	}
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", "http://"+web+"/")
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	page := string(dom)
	m := regexp.MustCompile(`<div id="status" data-updates="(\d+)">rooms: (\d+), players: (\d+)</div>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("spectator page has no status:\n%s", page)
	}
	updates, _ := strconv.Atoi(m[1])
	players, _ := strconv.Atoi(m[3])
	if updates < 5 || players < 16 || strings.Count(page, `<li class="player`) != players {
		t.Fatalf("spectator page: %d updates, %d players, %d listed:\n%s", updates, players, strings.Count(page, `<li class="player`), page)
	}
	if !strings.Contains(page, "<canvas") || !strings.Contains(page, ": bot-") {
		t.Fatalf("spectator page draws no room or names no bot:\n%s", page)
	}
	t.Logf("spectator page: %s updates, %s rooms, %s players", m[1], m[2], m[3])
}

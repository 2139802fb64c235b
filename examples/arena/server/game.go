package main

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/enetkit/enetkit/examples/arena/arenaproto"
	"github.com/enetkit/enetkit/session/room"
)

// game is one arena room's state. The room's goroutine is the only one
// that touches it: no locks.
type game struct {
	room.Base
	tickHz int
	it     *room.Member
	immune *room.Member // just tagged "it": cannot tag back at once
	rng    *rand.Rand
}

// player is a member's state (Member.Data), kept across reconnections.
type player struct {
	x, y, dx, dy float64
	acked        uint32
	score        float64
}

func (g *game) Init(r *room.Room, params map[string]string) (room.Config, error) {
	g.rng = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	return room.Config{TickRate: g.tickHz, MaxMembers: 8, Label: "players:0"}, nil
}

func (g *game) Join(r *room.Room, m *room.Member) {
	m.Data = &player{x: g.rng.Float64() * arenaproto.Size, y: g.rng.Float64() * arenaproto.Size}
	if g.it == nil {
		g.it = m
	}
	r.SetLabel("players:" + strconv.Itoa(r.Count()))
}

func (g *game) Leave(r *room.Room, m *room.Member, why room.LeaveReason) {
	if g.immune == m {
		g.immune = nil
	}
	if g.it == m {
		g.passIt(r, m)
	}
	r.SetLabel("players:" + strconv.Itoa(r.Count()))
}

// Dropped passes "it" on at once: a dead "it" must not stall the game.
func (g *game) Dropped(r *room.Room, m *room.Member) {
	if g.it == m {
		g.passIt(r, m)
	}
}

// passIt makes a random connected member other than from "it".
func (g *game) passIt(r *room.Room, from *room.Member) {
	g.it = nil
	var cands []*room.Member
	for _, m := range r.Members() {
		if m != nil && m != from && m.Connected() && !m.Left() {
			cands = append(cands, m)
		}
	}
	if len(cands) > 0 {
		g.it = cands[g.rng.IntN(len(cands))]
	}
}

func (g *game) Tick(r *room.Room, t *room.Tick) {
	for _, in := range t.Inputs {
		mv := in.Value.(arenaproto.MoveMsg)
		p := in.Member.Data.(*player)
		if n := math.Hypot(mv.DX, mv.DY); n > 1 {
			mv.DX, mv.DY = mv.DX/n, mv.DY/n
		} else if math.IsNaN(n) {
			continue
		}
		p.dx, p.dy, p.acked = mv.DX, mv.DY, mv.Seq
	}
	dt := t.Dt.Seconds()
	for _, m := range r.Members() {
		if m == nil {
			continue
		}
		p := m.Data.(*player)
		if !m.Connected() {
			continue // a dropped player stands still
		}
		p.x = clamp(p.x+p.dx*arenaproto.Speed*dt, 0, arenaproto.Size)
		p.y = clamp(p.y+p.dy*arenaproto.Speed*dt, 0, arenaproto.Size)
		if m != g.it {
			p.score += dt
		}
	}
	if it := g.it; it != nil {
		ip := it.Data.(*player)
		for _, m := range r.Members() {
			if m == nil || m == it || m == g.immune || !m.Connected() {
				continue
			}
			p := m.Data.(*player)
			if math.Hypot(p.x-ip.x, p.y-ip.y) < arenaproto.TagRange {
				g.it, g.immune = m, it
				_ = arenaproto.Tagged.Broadcast(r.Context(), r, arenaproto.TaggedMsg{From: it.Player.ID, To: m.Player.ID})
				break
			}
		}
	}
	if t.Snapshot {
		_ = arenaproto.Snapshot.Broadcast(r.Context(), r, g.snapshot(r, t.N, false))
	}
}

// snapshot returns the room's state in a new value: it may leave the
// room's goroutine (Signal answers go to the spectator page).
func (g *game) snapshot(r *room.Room, tick uint64, names bool) arenaproto.SnapshotMsg {
	s := arenaproto.SnapshotMsg{Tick: tick, Players: make([]arenaproto.Player, 0, r.Count())}
	if g.it != nil {
		s.It = g.it.Player.ID
	}
	for _, m := range r.Members() {
		if m == nil {
			continue
		}
		p := m.Data.(*player)
		pl := arenaproto.Player{ID: m.Player.ID, Seat: m.Seat, X: round(p.x), Y: round(p.y), Acked: p.acked,
			Score: round(p.score), Connected: m.Connected()}
		if names {
			pl.Name = m.Player.Name
		}
		s.Players = append(s.Players, pl)
	}
	return s
}

// Signal answers the spectator page with the room's state.
func (g *game) Signal(r *room.Room, data any) (any, error) {
	return g.snapshot(r, r.Stats().Ticks, true), nil
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func round(v float64) float64 { return math.Round(v*100) / 100 }

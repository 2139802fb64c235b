#!/usr/bin/env python3
"""Tick lateness against tick phase, from the arena server's -ticklog CSV.

Rooms tick on absolute deadlines, so each room's deadlines keep one phase
within the tick period. This groups every tick by how many other rooms'
deadlines fall within the millisecond before its own (its place in a
burst of ticks due together) and prints the lateness percentiles of each
group, and how the rooms' phases are spread.

    python3 examples/arena/tickphase.py ticks.csv [tick_hz]
"""
import sys, bisect

path = sys.argv[1]
hz = int(sys.argv[2]) if len(sys.argv) > 2 else 30
period = 1_000_000_000 / hz
rows = []
phase = {}
with open(path) as f:
    next(f)
    for line in f:
        r, due, late = line.split(",")
        r, due, late = int(r), int(due), int(late)
        rows.append((r, late))
        phase.setdefault(r, due % period)
rooms = sorted(phase.values())
n = len(rooms)

def before(p, w):
    """rooms whose phase is within w ns before p (circular), p's own excluded"""
    lo = p - w
    c = bisect.bisect_left(rooms, p) - bisect.bisect_left(rooms, max(lo, 0))
    if lo < 0:
        c += len(rooms) - bisect.bisect_left(rooms, lo + period)
    return c

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] / 1e3 if xs else float("nan")

crowd = {r: before(p, 1_000_000) for r, p in phase.items()}
groups = {}
for r, late in rows:
    c = crowd[r]
    key = "0-1" if c <= 1 else "2-3" if c <= 3 else "4-6" if c <= 6 else "7+"
    groups.setdefault(key, []).append(late)
all_late = [l for _, l in rows]
print(f"{n} rooms, {len(rows)} ticks, lateness p50 {pct(all_late,.5):.0f} us, p99 {pct(all_late,.99):.0f} us, max {pct(all_late,1):.0f} us")
gaps = sorted((rooms[(i + 1) % n] - rooms[i]) % period for i in range(n))
print(f"phase gaps between neighbouring rooms: min {gaps[0]/1e3:.0f} us, median {gaps[n//2]/1e3:.0f} us, max {gaps[-1]/1e3:.0f} us (even spread: {period/n/1e3:.0f} us)")
print("rooms due within 1 ms before a tick | rooms | ticks | lateness p50 | p99 (us)")
for key in ["0-1", "2-3", "4-6", "7+"]:
    if key in groups:
        rs = sum(1 for c in crowd.values() if (c <= 1 if key == "0-1" else c <= 3 and c > 1 if key == "2-3" else 3 < c <= 6 if key == "4-6" else c > 6))
        print(f"{key:>5} | {rs:3d} | {len(groups[key]):6d} | {pct(groups[key],.5):6.0f} | {pct(groups[key],.99):6.0f}")

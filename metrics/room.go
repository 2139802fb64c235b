package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enetkit/enetkit/session/room"
)

// Rooms collects the figures of a room server, labelled by room kind: rooms
// and members, joins and leaves by reason, drops and returns, tick
// durations and lateness, overruns, inputs per tick. It is a room.Observer
// (room.WithObserver) and its methods are safe for concurrent use; a tick
// takes no lock once its kind has been seen.
type Rooms struct {
	rooms, members                 *prometheus.GaugeVec
	opened, joined, dropped, back  *prometheus.CounterVec
	left                           *prometheus.CounterVec
	overruns, ticks                *prometheus.CounterVec
	tickDur, tickLate, inputsPerTk *prometheus.HistogramVec

	kinds sync.Map // kind -> *kindObs
}

type kindObs struct {
	dur, late, inputs prometheus.Observer
	ticks, overruns   prometheus.Counter
}

var _ room.Observer = (*Rooms)(nil)

// NewRooms returns room metrics, registered with WithRegisterer's
// registry if any and named with WithNamespace's prefix ("enetkit" by
// default).
func NewRooms(opts ...Option) (*Rooms, error) {
	m, err := apply(opts)
	if err != nil {
		return nil, err
	}
	ns := m.ns
	k := []string{"kind"}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: "room", Name: name, Help: help}, k)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "room", Name: name, Help: help}, append(k, labels...))
	}
	hist := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: "room", Name: name, Help: help, Buckets: buckets}, k)
	}
	secs := []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2e-3, 4e-3, 8e-3, 16e-3, 32e-3, 64e-3, 128e-3}
	r := &Rooms{
		rooms:       gauge("rooms", "Rooms open."),
		members:     gauge("members", "Members seated, connected or dropped."),
		opened:      counter("opened_total", "Rooms opened."),
		joined:      counter("joins_total", "Members that joined."),
		left:        counter("leaves_total", "Members that left, by reason.", "reason"),
		dropped:     counter("drops_total", "Members whose connection was lost."),
		back:        counter("returns_total", "Dropped members that came back to their seat."),
		ticks:       counter("ticks_total", "Ticks run."),
		overruns:    counter("overruns_total", "Ticks that began a whole step or more late."),
		tickDur:     hist("tick_seconds", "How long the Tick hook ran.", secs),
		tickLate:    hist("tick_lateness_seconds", "How long after its deadline a tick began.", secs),
		inputsPerTk: hist("inputs_per_tick", "Inputs in a tick's batch.", []float64{0, 1, 2, 4, 8, 16, 32, 64, 128, 256}),
	}
	for _, c := range []prometheus.Collector{r.rooms, r.members, r.opened, r.joined, r.left, r.dropped, r.back,
		r.ticks, r.overruns, r.tickDur, r.tickLate, r.inputsPerTk} {
		if err := register(m.reg, c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Rooms) kind(k string) *kindObs {
	if o, ok := r.kinds.Load(k); ok {
		return o.(*kindObs)
	}
	o := &kindObs{dur: r.tickDur.WithLabelValues(k), late: r.tickLate.WithLabelValues(k),
		inputs: r.inputsPerTk.WithLabelValues(k), ticks: r.ticks.WithLabelValues(k), overruns: r.overruns.WithLabelValues(k)}
	v, _ := r.kinds.LoadOrStore(k, o)
	return v.(*kindObs)
}

// RoomOpened counts a new room.
func (r *Rooms) RoomOpened(kind string) {
	r.rooms.WithLabelValues(kind).Inc()
	r.opened.WithLabelValues(kind).Inc()
}

// RoomClosed counts a room that ended.
func (r *Rooms) RoomClosed(kind string) { r.rooms.WithLabelValues(kind).Dec() }

// MemberJoined counts a new member.
func (r *Rooms) MemberJoined(kind string) {
	r.members.WithLabelValues(kind).Inc()
	r.joined.WithLabelValues(kind).Inc()
}

// MemberLeft counts a member that left.
func (r *Rooms) MemberLeft(kind string, why room.LeaveReason) {
	r.members.WithLabelValues(kind).Dec()
	r.left.WithLabelValues(kind, why.String()).Inc()
}

// MemberDropped counts a lost connection.
func (r *Rooms) MemberDropped(kind string) { r.dropped.WithLabelValues(kind).Inc() }

// MemberBack counts a member back in its seat.
func (r *Rooms) MemberBack(kind string) { r.back.WithLabelValues(kind).Inc() }

// Ticked records a tick.
func (r *Rooms) Ticked(kind string, t room.TickInfo) {
	o := r.kind(kind)
	o.ticks.Inc()
	if t.Overrun {
		o.overruns.Inc()
	}
	o.dur.Observe(t.Duration.Seconds())
	o.late.Observe(max(t.Late, 0).Seconds())
	o.inputs.Observe(float64(t.Inputs))
}

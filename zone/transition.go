package zone

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// Event types, published on the feed (zoneredis).
const (
	EventEntered = "zone.entered"
	EventExited  = "zone.exited"
	EventDwell   = "zone.dwell"
)

// Reasons an event happened (Event.Reason).
const (
	// ReasonFix: the driver's fix is inside (entered) or outside (exited).
	ReasonFix = "fix"
	// ReasonCrossed: the segment between two fixes crossed the zone with
	// both fixes outside it (zone.entered then zone.exited).
	ReasonCrossed = "crossed"
	// ReasonDwell: the driver stayed DwellAfter inside (zone.dwell).
	ReasonDwell = "dwell"
	// ReasonStale, ReasonOffline: the driver stopped sending fixes, or
	// went offline, while inside (zone.exited).
	ReasonStale   = "stale"
	ReasonOffline = "offline"
	// ReasonDeleted: the zone was deleted or its geometry changed away
	// from the driver (zone.exited).
	ReasonDeleted = "zone_deleted"
)

// Fix is a driver position at a time.
type Fix struct {
	Pos geo.Point `json:"pos"`
	TS  time.Time `json:"ts"`
}

// Presence is a driver being inside one zone.
type Presence struct {
	Zone  string    `json:"z"`
	Kind  string    `json:"k"`
	Since time.Time `json:"s"`
	Dwelt bool      `json:"d,omitempty"`
}

// State is what the transitions remember of one driver: its last fix and
// the zones it is inside (sorted by zone id). The zero State is a driver
// never seen.
type State struct {
	Last   *Fix       `json:"last,omitempty"`
	Inside []Presence `json:"inside,omitempty"`
}

// Event is one zone event of a driver.
type Event struct {
	Type   string    `json:"type"`
	Zone   string    `json:"zone_id"`
	Kind   string    `json:"kind"`
	Driver string    `json:"driver_id"`
	TS     time.Time `json:"ts"`
	Pos    geo.Point `json:"pos"`
	Reason string    `json:"reason"`
	// InsideS is how long the driver had been inside (exited, dwell).
	InsideS float64 `json:"inside_s,omitempty"`
}

// Phases order events at the same point of a segment: the exits of zones
// the driver was in come before any enter (A→B across a shared edge is
// A.exited, B.entered), and a zone crossed by the segment is entered before
// it is exited even when both happen at one point.
const (
	phaseDwell = iota
	phaseExit
	phaseEnter
	phasePassExit
)

type pending struct {
	t     float64
	phase int
	ev    Event
}

// Step applies a new fix to s and returns the new state and the events, in
// order. The segment from s.Last to fix is checked for crossings: a zone
// the segment enters and leaves with both fixes outside yields entered
// then exited; zones left come before zones entered at the same point.
// Event times and positions are interpolated along the segment. A dwell is
// emitted once per stay, at the time the driver had been inside the zone's
// DwellAfter, if it was still inside then. A fix older than s.Last changes
// nothing. Zones in s that x no longer holds are exited (zone_deleted).
// Leaving a zone and coming back between two fixes is not seen.
func Step(x *Index, s State, driverID string, fix Fix) (State, []Event) {
	if s.Last != nil && fix.TS.Before(s.Last.TS) {
		return s, nil
	}
	var evs []pending
	start := fix
	if s.Last != nil {
		start = *s.Last
	}
	span := fix.TS.Sub(start.TS)
	at := func(t float64) (time.Time, geo.Point) {
		ts := start.TS.Add(time.Duration(float64(span) * t))
		return ts, geo.Point{Lat: start.Pos.Lat + (fix.Pos.Lat-start.Pos.Lat)*t, Lng: start.Pos.Lng + (fix.Pos.Lng-start.Pos.Lng)*t}
	}
	tOf := func(ts time.Time) float64 {
		if span <= 0 {
			return 0
		}
		return math.Min(1, math.Max(0, float64(ts.Sub(start.TS))/float64(span)))
	}
	add := func(t float64, phase int, typ, reason string, z Zone, since time.Time) {
		ts, pos := at(t)
		e := Event{Type: typ, Zone: z.ID, Kind: z.Kind, Driver: driverID, TS: ts, Pos: pos, Reason: reason}
		if typ != EventEntered && !since.IsZero() {
			e.InsideS = ts.Sub(since).Seconds()
		}
		evs = append(evs, pending{t: t, phase: phase, ev: e})
	}

	var buf [8]int32
	now := x.appendAt(buf[:0], fix.Pos)
	inNow := func(i int32) bool { _, ok := slices.BinarySearch(now, i); return ok }
	next := make([]Presence, 0, len(now))
	was := make(map[int32]bool, len(s.Inside))
	var ts []float64
	for _, p := range s.Inside {
		i, ok := x.byID[p.Zone]
		if !ok {
			add(0, phaseExit, EventExited, ReasonDeleted, Zone{ID: p.Zone, Kind: p.Kind}, p.Since)
			continue
		}
		was[i] = true
		z := &x.zones[i]
		due := p.Since.Add(z.DwellAfter)
		if inNow(i) {
			if !p.Dwelt && !due.After(fix.TS) {
				add(tOf(due), phaseDwell, EventDwell, ReasonDwell, z.Zone, p.Since)
				p.Dwelt = true
			}
			next = append(next, p)
			continue
		}
		// Left: at the first boundary crossing of the segment.
		ts = crossings(ts[:0], z.Polygons[0], start.Pos, fix.Pos)
		for _, poly := range z.Polygons[1:] {
			ts = crossings(ts, poly, start.Pos, fix.Pos)
		}
		t := 0.0
		if len(ts) > 0 {
			t = slices.Min(ts)
		}
		if exitTS, _ := at(t); !p.Dwelt && !due.After(exitTS) {
			add(tOf(due), phaseDwell, EventDwell, ReasonDwell, z.Zone, p.Since)
		}
		add(t, phaseExit, EventExited, ReasonFix, z.Zone, p.Since)
	}
	for _, i := range now {
		if was[i] {
			continue
		}
		z := &x.zones[i]
		t := 0.0
		if s.Last != nil {
			ts = x.zoneCrossings(ts[:0], i, start.Pos, fix.Pos)
			if len(ts) > 0 {
				t = slices.Max(ts)
			}
		}
		since, _ := at(t)
		add(t, phaseEnter, EventEntered, ReasonFix, z.Zone, time.Time{})
		p := Presence{Zone: z.ID, Kind: z.Kind, Since: since}
		if due := since.Add(z.DwellAfter); !due.After(fix.TS) {
			add(tOf(due), phasePassExit+1, EventDwell, ReasonDwell, z.Zone, since)
			p.Dwelt = true
		}
		next = append(next, p)
	}
	if s.Last != nil && start.Pos != fix.Pos {
		// Zones crossed with both fixes outside.
		seg := boxOf([]geo.Point{start.Pos, fix.Pos})
		var cands []int32
		x.overlapping(seg, func(i int32) bool { cands = append(cands, i); return true })
		slices.Sort(cands)
		for _, i := range slices.Compact(cands) {
			if was[i] || inNow(i) {
				continue
			}
			ts = x.zoneCrossings(ts[:0], i, start.Pos, fix.Pos)
			if len(ts) == 0 {
				continue
			}
			z := x.zones[i].Zone
			t0, t1 := slices.Min(ts), slices.Max(ts)
			add(t0, phaseEnter, EventEntered, ReasonCrossed, z, time.Time{})
			enterTS, _ := at(t0)
			add(t1, phasePassExit, EventExited, ReasonCrossed, z, enterTS)
		}
	}
	slices.SortStableFunc(evs, func(a, b pending) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		if c := cmp.Compare(a.phase, b.phase); c != 0 {
			return c
		}
		return cmp.Compare(a.ev.Zone, b.ev.Zone)
	})
	out := make([]Event, len(evs))
	for i, p := range evs {
		out[i] = p.ev
	}
	slices.SortFunc(next, func(a, b Presence) int { return cmp.Compare(a.Zone, b.Zone) })
	f := fix
	return State{Last: &f, Inside: next}, out
}

func (x *Index) zoneCrossings(ts []float64, i int32, p, q geo.Point) []float64 {
	for _, poly := range x.zones[i].Polygons {
		ts = crossings(ts, poly, p, q)
	}
	return ts
}

// Leave exits every zone s is inside, at ts for reason (ReasonStale,
// ReasonOffline), at the last fix's position, in zone id order. The last
// fix is forgotten: the next fix is a first fix (where the driver went
// while silent is unknown, so no crossing is inferred across the gap).
func Leave(s State, driverID string, ts time.Time, reason string) (State, []Event) {
	out := make([]Event, 0, len(s.Inside))
	var pos geo.Point
	if s.Last != nil {
		pos = s.Last.Pos
	}
	for _, p := range s.Inside {
		out = append(out, Event{Type: EventExited, Zone: p.Zone, Kind: p.Kind, Driver: driverID, TS: ts, Pos: pos,
			Reason: reason, InsideS: ts.Sub(p.Since).Seconds()})
	}
	return State{}, out
}

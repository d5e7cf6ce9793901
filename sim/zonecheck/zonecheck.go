package zonecheck

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Point is a position, degrees.
type Point struct{ Lat, Lng float64 }

// Zone is a polygon without holes, its ring closed or not.
type Zone struct {
	ID   string
	Ring []Point
}

// Event is one zone event as the server published it.
type Event struct {
	ID     string // feed event ID, "<ms>-<seq>"
	Type   string // zone.entered, zone.exited, zone.dwell
	Zone   string
	Driver string
	TS     time.Time
	Reason string
}

// Event types and the reasons an exit needs no fix to show it.
const (
	Entered = "zone.entered"
	Exited  = "zone.exited"
	Dwell   = "zone.dwell"
)

// Tolerance is how much later than the fix that showed a transition the
// server's event may be stamped (time rounding on the way).
const Tolerance = 5 * time.Millisecond

// Oracle keeps the honest fixes of every driver. Safe for concurrent use.
type Oracle struct {
	mu    sync.Mutex
	fixes map[string][]fix
	upto  map[string]int64
}

type fix struct {
	seq int64
	p   Point
	ts  time.Time
}

// NewOracle returns an empty oracle.
func NewOracle() *Oracle { return &Oracle{fixes: map[string][]fix{}, upto: map[string]int64{}} }

// Fix records an honest fix of driver (its ping sequence seq), made in ts
// order per driver.
func (o *Oracle) Fix(driver string, seq int64, ts time.Time, p Point) {
	o.mu.Lock()
	o.fixes[driver] = append(o.fixes[driver], fix{seq: seq, p: p, ts: ts})
	o.mu.Unlock()
}

// Upto says that the server holds driver's fixes up to seq and no later
// one: fixes made after it (still in the driver's buffer when it
// stopped) owe nothing.
func (o *Oracle) Upto(driver string, seq int64) {
	o.mu.Lock()
	o.upto[driver] = seq
	o.mu.Unlock()
}

// Report is what Check found.
type Report struct {
	Zones   int `json:"zones"`
	Drivers int `json:"drivers"`
	// Owed is how many entered/exited events the fixes show; Found how
	// many of them the server published, in order.
	Owed  int `json:"owed"`
	Found int `json:"found"`
	// Missing is owed events not published (in order): must be 0.
	Missing int `json:"missing"`
	// OutOfOrder counts broken alternations of a driver's events in one
	// zone (entered twice, exited while out, dwell while out): must be 0.
	OutOfOrder int `json:"out_of_order"`
	// Events is how many events the server published for the run's
	// drivers; Extra those no fix showed (exits of drivers set offline or
	// gone stale, and their entries again), Dwell the dwell events.
	Events int `json:"events"`
	Extra  int `json:"extra"`
	Dwell  int `json:"dwell"`
	// Examples describe the first problems found.
	Examples []string `json:"examples,omitempty"`
}

// transition is one owed event.
type transition struct {
	typ string
	by  time.Time // the fix that shows it
}

// Check compares the server's events of the oracle's drivers with what
// their fixes owe in zones.
func (o *Oracle) Check(zones []Zone, events []Event) Report {
	o.mu.Lock()
	defer o.mu.Unlock()
	rep := Report{Zones: len(zones), Drivers: len(o.fixes)}
	type key struct{ driver, zone string }
	got := map[key][]Event{}
	for _, e := range events {
		if _, ok := o.fixes[e.Driver]; !ok {
			continue // not this run's driver
		}
		got[key{e.Driver, e.Zone}] = append(got[key{e.Driver, e.Zone}], e)
		rep.Events++
	}
	problem := func(s string) {
		if len(rep.Examples) < 10 {
			rep.Examples = append(rep.Examples, s)
		}
	}
	for d, fs := range o.fixes {
		if u, ok := o.upto[d]; ok {
			n := 0
			for n < len(fs) && fs[n].seq <= u {
				n++
			}
			o.fixes[d] = fs[:n]
		}
	}
	for _, z := range zones {
		ring := open(z.Ring)
		for d, fs := range o.fixes {
			owed := owedTransitions(ring, fs)
			evs := got[key{d, z.ID}]
			slices.SortStableFunc(evs, func(a, b Event) int { return compareIDs(a.ID, b.ID) })
			rep.OutOfOrder += alternation(evs, func(s string) { problem(d + " in " + z.ID + ": " + s) })
			found, extra, dwell := match(owed, evs)
			rep.Owed += len(owed)
			rep.Found += found
			rep.Extra += extra
			rep.Dwell += dwell
			if found < len(owed) {
				rep.Missing += len(owed) - found
				problem(d + " in " + z.ID + ": " + strconv.Itoa(len(owed)-found) + " owed events not published")
			}
		}
	}
	return rep
}

// owedTransitions walks a driver's fixes through one zone.
func owedTransitions(ring []Point, fs []fix) []transition {
	var out []transition
	for i := range fs {
		in := inside(ring, fs[i].p)
		if i == 0 {
			if in {
				out = append(out, transition{Entered, fs[i].ts})
			}
			continue
		}
		was := inside(ring, fs[i-1].p)
		switch {
		case !was && in:
			out = append(out, transition{Entered, fs[i].ts})
		case was && !in:
			out = append(out, transition{Exited, fs[i].ts})
		case !was && !in && cuts(ring, fs[i-1].p, fs[i].p):
			out = append(out, transition{Entered, fs[i].ts}, transition{Exited, fs[i].ts})
		}
	}
	return out
}

// alternation counts the events that break entered → (dwell) → exited
// order, reporting each.
func alternation(evs []Event, report func(string)) int {
	bad, in := 0, false
	for _, e := range evs {
		ok := true
		switch e.Type {
		case Entered:
			ok, in = !in, true
		case Exited:
			ok, in = in, false
		case Dwell:
			ok = in
		}
		if !ok {
			bad++
			report(e.Type + " " + e.ID + " out of order")
		}
	}
	return bad
}

// match finds the owed transitions, in order, among the published events;
// it returns how many it found, the entered/exited events no fix showed,
// and the dwell events.
func match(owed []transition, evs []Event) (found, extra, dwell int) {
	j := 0
	for _, e := range evs {
		if e.Type == Dwell {
			dwell++
			continue
		}
		if j < len(owed) && e.Type == owed[j].typ && !e.TS.After(owed[j].by.Add(Tolerance)) {
			found++
			j++
			continue
		}
		extra++
	}
	return found, extra, dwell
}

func open(r []Point) []Point {
	if len(r) > 1 && r[0] == r[len(r)-1] {
		return r[:len(r)-1]
	}
	return r
}

// inside: ray casting over (lng, lat).
func inside(ring []Point, p Point) bool {
	in := false
	for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
		a, b := ring[j], ring[i]
		if (a.Lat > p.Lat) != (b.Lat > p.Lat) && p.Lng < a.Lng+(p.Lat-a.Lat)*(b.Lng-a.Lng)/(b.Lat-a.Lat) {
			in = !in
		}
	}
	return in
}

// cuts reports whether segment pq properly crosses an edge of ring.
func cuts(ring []Point, p, q Point) bool {
	for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
		a, b := ring[j], ring[i]
		if orient(p, q, a)*orient(p, q, b) < 0 && orient(a, b, p)*orient(a, b, q) < 0 {
			return true
		}
	}
	return false
}

func orient(a, b, c Point) float64 {
	return (b.Lng-a.Lng)*(c.Lat-a.Lat) - (b.Lat-a.Lat)*(c.Lng-a.Lng)
}

// compareIDs orders feed event IDs "<ms>-<seq>".
func compareIDs(a, b string) int {
	am, as := split(a)
	bm, bs := split(b)
	if c := cmp.Compare(am, bm); c != 0 {
		return c
	}
	return cmp.Compare(as, bs)
}

func split(id string) (ms, seq int64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseInt(a, 10, 64)
	seq, _ = strconv.ParseInt(b, 10, 64)
	return ms, seq
}

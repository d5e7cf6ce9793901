package eta

import (
	"github.com/hextrack/hextrack/geo"
)

// coverM is how close to a road a point must be to count as covered by the
// map. road.MaxSnapM (1 km) is how far a point may be snapped at all; past
// the edge of an extract that would route a point 900 m outside it as if
// it were on the last road, with a slow access leg, so coverage is judged
// tighter: taxi GPS fixes on the map lie within a few tens of metres of a
// road.
const coverM = 150

// Covered reports whether p is on the router's map: within 150 m of a road.
func (r *Router) Covered(p geo.Point) bool {
	s, ok := r.g.Snap(p)
	return ok && s.DistM <= coverM
}

// coveredSpan is the part of the straight line from→to that the map
// covers: the first and last of its points sampled every lineStepM that
// are Covered (ends included). ok is false when none is. full reports that
// both ends are covered (a and b are then from and to).
func (r *Router) coveredSpan(from, to geo.Point) (a, b geo.Point, full, ok bool) {
	fromOn, toOn := r.Covered(from), r.Covered(to)
	if fromOn && toOn {
		return from, to, true, true
	}
	n := int(geo.Distance(from, to)/lineStepM) + 1
	at := func(i int) geo.Point {
		f := float64(i) / float64(n)
		return geo.Point{Lat: from.Lat + (to.Lat-from.Lat)*f, Lng: from.Lng + (to.Lng-from.Lng)*f}
	}
	on := func(i int) bool {
		switch i {
		case 0:
			return fromOn
		case n:
			return toOn
		}
		return r.Covered(at(i))
	}
	lo := 0
	for lo <= n && !on(lo) {
		lo++
	}
	if lo > n {
		return geo.Point{}, geo.Point{}, false, false
	}
	hi := n
	for hi > lo && !on(hi) {
		hi--
	}
	return at(lo), at(hi), false, true
}

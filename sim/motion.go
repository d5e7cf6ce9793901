package sim

import (
	"math"
	"math/rand/v2"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
)

// Mover drives a car along routes of a road graph at road-class speeds with
// noise: each edge gets its own factor of the free-flow speed (traffic), and
// the car now and then waits at a junction (lights). Not safe for
// concurrent use: one driver owns it.
type Mover struct {
	g   *road.Graph
	rng *rand.Rand

	pos     geo.Point
	path    []geo.Point
	edges   []road.EdgeID
	seg     int     // current segment path[seg] → path[seg+1]
	segDone float64 // metres driven on it
	factor  float64 // speed factor of the current segment
	wait    float64 // seconds left standing still
	speed   float64 // m/s of the last step
	heading float64
}

// NewMover places a car at p.
func NewMover(g *road.Graph, rng *rand.Rand, p geo.Point) *Mover {
	return &Mover{g: g, rng: rng, pos: p, factor: 1}
}

// Pos is the car's true position.
func (m *Mover) Pos() geo.Point { return m.pos }

// Speed is the car's speed over the last step, m/s.
func (m *Mover) Speed() float64 { return m.speed }

// Heading is the car's heading in degrees from north, [0, 360).
func (m *Mover) Heading() float64 { return m.heading }

// Arrived reports whether the car has no route left to drive.
func (m *Mover) Arrived() bool { return m.seg >= len(m.path)-1 }

// RouteTo plans the fastest route from the car's position to dst and starts
// driving it. On error (dst off the graph) the car stays where it is.
func (m *Mover) RouteTo(dst geo.Point) error {
	r, err := m.g.Route(m.pos, dst)
	if err != nil {
		return err
	}
	m.SetPath(r.Path, r.Edges)
	return nil
}

// SetPath makes the car drive a polyline; edges[i] (optional) is the road
// of segment i and sets its speed, else segments go at 30 km/h.
func (m *Mover) SetPath(path []geo.Point, edges []road.EdgeID) {
	m.path, m.edges, m.seg, m.segDone = path, edges, 0, 0
	if len(path) > 0 {
		m.pos = path[0]
	}
	m.newSegment()
}

func (m *Mover) newSegment() {
	// Traffic: 55-105% of free flow, and a junction wait now and then.
	m.factor = 0.55 + 0.5*m.rng.Float64()
	if m.rng.Float64() < 0.12 {
		m.wait = 3 + 25*m.rng.Float64()
	}
}

func (m *Mover) segSpeed() float64 {
	v := 30 / 3.6
	if m.seg < len(m.edges) && m.edges[m.seg] >= 0 && int(m.edges[m.seg]) < m.g.NumEdges() {
		v = m.g.Edge(m.edges[m.seg]).SpeedMS
	}
	return v * m.factor
}

// Step advances the car by dt seconds of simulated time.
func (m *Mover) Step(dt float64) {
	start := m.pos
	left := dt
	for left > 1e-9 && !m.Arrived() {
		if m.wait > 0 {
			w := math.Min(m.wait, left)
			m.wait -= w
			left -= w
			continue
		}
		a, b := m.path[m.seg], m.path[m.seg+1]
		segLen := geo.Distance(a, b)
		v := m.segSpeed()
		rem := segLen - m.segDone
		if rem <= v*left {
			left -= rem / v
			m.seg++
			m.segDone = 0
			m.pos = b
			if !m.Arrived() {
				m.newSegment()
			}
			continue
		}
		m.segDone += v * left
		left = 0
		if segLen > 0 {
			f := m.segDone / segLen
			m.pos = geo.Point{Lat: a.Lat + (b.Lat-a.Lat)*f, Lng: a.Lng + (b.Lng-a.Lng)*f}
		}
	}
	d := geo.Distance(start, m.pos)
	if dt > 0 {
		m.speed = d / dt
	}
	if d > 0.5 {
		m.heading = geo.Bearing(start, m.pos)
	}
}

// GPS turns true positions into fixes: Gaussian jitter of Sigma metres and,
// with probability OutlierRate per fix, a wild fix 300-2000 m off (as phones
// produce under bridges and between tall buildings).
type GPS struct {
	Sigma       float64
	OutlierRate float64
}

// Fix is a noisy reading of p, with the accuracy a phone would report;
// outlier says it is one of the deliberate wild fixes.
func (g GPS) Fix(rng *rand.Rand, p geo.Point) (fix geo.Point, accuracy float64, outlier bool) {
	if g.OutlierRate > 0 && rng.Float64() < g.OutlierRate {
		return geo.Offset(p, rng.Float64()*360, 300+1700*rng.Float64()), math.Max(g.Sigma, 5), true
	}
	fix, accuracy = g.honest(rng, p)
	return fix, accuracy, false
}

// honest is a reading of p with Gaussian jitter only, never an outlier.
func (g GPS) honest(rng *rand.Rand, p geo.Point) (fix geo.Point, accuracy float64) {
	if g.Sigma <= 0 {
		return p, 3
	}
	dn, de := rng.NormFloat64()*g.Sigma, rng.NormFloat64()*g.Sigma
	q := geo.Offset(geo.Offset(p, 0, dn), 90, de)
	return q, math.Round(g.Sigma*(1.5+rng.Float64())*10) / 10
}

// Link models a phone's network: it goes offline at random (Rate outages
// per simulated hour of connectivity) for about Duration simulated seconds
// (exponentially distributed), during which pings are buffered.
type Link struct {
	RatePerHour float64
	Duration    float64 // mean outage, simulated seconds
	offline     float64 // seconds of outage left
}

// Step advances the link by dt simulated seconds; it reports whether the
// phone is online now and whether an outage just began.
func (l *Link) Step(rng *rand.Rand, dt float64) (online, began bool) {
	if l.offline > 0 {
		l.offline -= dt
		return l.offline <= 0, false
	}
	if l.RatePerHour > 0 && l.Duration > 0 && rng.Float64() < l.RatePerHour*dt/3600 {
		l.offline = rng.ExpFloat64() * l.Duration
		return false, true
	}
	return true, false
}

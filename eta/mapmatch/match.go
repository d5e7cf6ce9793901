package mapmatch

import (
	"math"
	"sync"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
)

// Config tunes the matcher. The zero value is usable: every zero field
// takes the default written beside it.
type Config struct {
	SigmaM        float64       // emission σ, GPS noise; 0 → 8 m
	BetaM         float64       // transition scale of |route − great circle|; 0 → 25 m
	RadiusM       float64       // candidates' distance to the fix; 0 → 50 m
	MaxCandidates int           // roads per fix (each two-way road gives two states); 0 → 5
	MaxSpeedMS    float64       // faster routes between two fixes are implausible; 0 → 45 m/s
	MaxGap        time.Duration // longer gaps between fixes break the chain; 0 → 2 min
	BackM         float64       // a fix this far behind the last on the same edge is noise, not a U-turn; 0 → 15 m
}

func (c Config) withDefaults() Config {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.SigmaM, 8)
	def(&c.BetaM, 25)
	def(&c.RadiusM, 50)
	def(&c.MaxSpeedMS, 45)
	def(&c.BackM, 15)
	if c.MaxCandidates <= 0 {
		c.MaxCandidates = 5
	}
	if c.MaxGap <= 0 {
		c.MaxGap = 2 * time.Minute
	}
	return c
}

// Fix is a GPS position of a trail and its time.
type Fix struct {
	Point geo.Point
	Time  time.Time
}

// Point is a fix matched to a road: the Index-th fix of the trail, on Edge
// at Frac (0 at its From node, 1 at its To node), DistM from the fix.
type Point struct {
	Index int
	Edge  road.EdgeID
	Frac  float64
	DistM float64
	Chain int // the chain it belongs to, from 0
}

// Span is the part of an edge a hop drove: fractions From to To (From <
// To) of its length.
type Span struct {
	Edge     road.EdgeID
	From, To float64
}

// Hop joins two consecutive matched points of one chain (indices into
// Result.Points): the time between their fixes, the route length and the
// edges driven, in order. A fix that stayed put (or fell a few metres
// behind the last on the same edge, GPS noise) gives a hop of no spans.
type Hop struct {
	From, To int
	Seconds  float64
	Meters   float64
	Spans    []Span
}

// Result is a matched trail.
type Result struct {
	Points []Point
	Hops   []Hop
	Chains int
}

// Matcher matches trails to one road graph. Safe for concurrent use.
type Matcher struct {
	g    *road.Graph
	cfg  Config
	lens []float64
	tail []road.NodeID
	head []road.NodeID
	pool sync.Pool // *search
}

// New returns a matcher over g.
func New(g *road.Graph, cfg Config) *Matcher {
	n := g.NumEdges()
	m := &Matcher{g: g, cfg: cfg.withDefaults(), lens: make([]float64, n),
		tail: make([]road.NodeID, n), head: make([]road.NodeID, n)}
	for e := range m.lens {
		ed := g.Edge(road.EdgeID(e))
		m.lens[e], m.tail[e], m.head[e] = ed.LengthM, ed.From, ed.To
	}
	return m
}

// Graph is the matcher's road graph.
func (m *Matcher) Graph() *road.Graph { return m.g }

// state is a candidate position of a fix on a directed edge.
type state struct {
	edge  road.EdgeID
	frac  float64
	distM float64
}

// step is one fix in the Viterbi lattice.
type step struct {
	fix   int
	cands []state
	score []float64
	back  []int32 // best previous state, -1 at a chain's start
}

// candidates are the states of p: every road within the radius, both ways
// of a two-way one.
func (m *Matcher) candidates(p geo.Point) []state {
	snaps := m.g.Near(p, m.cfg.RadiusM, m.cfg.MaxCandidates)
	var out []state
	for _, s := range snaps {
		if s.DistM > m.cfg.RadiusM {
			continue
		}
		out = append(out, state{s.Edge, s.Frac, s.DistM})
		if r, ok := m.g.Reverse(s.Edge); ok {
			out = append(out, state{r, 1 - s.Frac, s.DistM})
		}
	}
	return out
}

// Match matches a trail (fixes in time order).
func (m *Matcher) Match(trail []Fix) Result {
	var res Result
	var chain []step
	s := m.search()
	defer m.pool.Put(s)
	flush := func() {
		if len(chain) > 0 {
			m.backtrack(s, trail, chain, &res)
			res.Chains++
		}
		chain = chain[:0]
	}
	for i, f := range trail {
		cands := m.candidates(f.Point)
		if len(cands) == 0 {
			continue
		}
		cur := step{fix: i, cands: cands, score: make([]float64, len(cands)), back: make([]int32, len(cands))}
		for k, c := range cands {
			cur.score[k] = m.emission(c)
			cur.back[k] = -1
		}
		if len(chain) > 0 && m.extend(s, trail, &chain[len(chain)-1], &cur) {
			chain = append(chain, cur)
			continue
		}
		flush()
		chain = append(chain, cur)
	}
	flush()
	return res
}

func (m *Matcher) emission(c state) float64 {
	z := c.distM / m.cfg.SigmaM
	return -0.5 * z * z
}

// extend scores cur's states from prev's; false when no transition is
// plausible (the chain breaks before cur).
func (m *Matcher) extend(s *search, trail []Fix, prev, cur *step) bool {
	a, b := trail[prev.fix], trail[cur.fix]
	dt := b.Time.Sub(a.Time)
	if dt > m.cfg.MaxGap || dt < 0 {
		return false
	}
	gc := geo.Distance(a.Point, b.Point)
	limit := m.limit(gc, dt)
	ok := false
	best := make([]float64, len(cur.cands))
	for k := range best {
		best[k] = math.Inf(-1)
	}
	for j, p := range prev.cands {
		if math.IsInf(prev.score[j], -1) {
			continue
		}
		s.run(m, p, cur.cands, limit)
		for k, c := range cur.cands {
			d, _ := m.routeDist(s, p, c)
			if d > limit {
				continue
			}
			v := prev.score[j] - math.Abs(d-gc)/m.cfg.BetaM
			if v > best[k] {
				best[k], cur.back[k] = v, int32(j)
				ok = true
			}
		}
	}
	if !ok {
		return false
	}
	for k := range cur.score {
		cur.score[k] += best[k]
	}
	return true
}

// limit is the longest plausible route between two fixes gc metres and dt
// apart.
func (m *Matcher) limit(gc float64, dt time.Duration) float64 {
	return math.Min(2*gc+4*m.cfg.RadiusM+100, m.cfg.MaxSpeedMS*dt.Seconds()+2*m.cfg.RadiusM)
}

// routeDist is the route length from state p to state c, with the last
// search run from p (s.run). back reports a fix a little behind the last
// on the same edge (noise: no distance driven).
func (m *Matcher) routeDist(s *search, p, c state) (d float64, back bool) {
	lp := m.lens[p.edge]
	if p.edge == c.edge {
		if c.frac >= p.frac {
			return (c.frac - p.frac) * lp, false
		}
		if (p.frac-c.frac)*lp <= m.cfg.BackM {
			return (p.frac - c.frac) * lp, true
		}
	}
	dn, ok := s.settled(m.tail[c.edge])
	if !ok {
		return math.Inf(1), false
	}
	return (1-p.frac)*lp + dn + c.frac*m.lens[c.edge], false
}

// backtrack appends the best sequence of a chain to res, with its hops.
func (m *Matcher) backtrack(s *search, trail []Fix, chain []step, res *Result) {
	last := chain[len(chain)-1]
	k := 0
	for i := range last.score {
		if last.score[i] > last.score[k] {
			k = i
		}
	}
	picks := make([]int, len(chain))
	for i := len(chain) - 1; i >= 0; i-- {
		picks[i] = k
		k = int(chain[i].back[k])
	}
	base := len(res.Points)
	for i, st := range chain {
		c := st.cands[picks[i]]
		res.Points = append(res.Points, Point{Index: st.fix, Edge: c.edge, Frac: c.frac, DistM: c.distM, Chain: res.Chains})
		if i == 0 {
			continue
		}
		p := chain[i-1].cands[picks[i-1]]
		a, b := trail[chain[i-1].fix], trail[st.fix]
		h := Hop{From: base + i - 1, To: base + i, Seconds: b.Time.Sub(a.Time).Seconds()}
		h.Meters, h.Spans = m.path(s, p, c, m.limit(geo.Distance(a.Point, b.Point), b.Time.Sub(a.Time)))
		res.Hops = append(res.Hops, h)
	}
}

// path is the route from p to c as spans, and its length.
func (m *Matcher) path(s *search, p, c state, limit float64) (float64, []Span) {
	if p.edge == c.edge && c.frac >= p.frac {
		if c.frac == p.frac {
			return 0, nil
		}
		return (c.frac - p.frac) * m.lens[p.edge], []Span{{p.edge, p.frac, c.frac}}
	}
	s.run(m, p, []state{c}, limit)
	d, back := m.routeDist(s, p, c)
	if back {
		return 0, nil
	}
	spans := []Span{{c.edge, 0, c.frac}}
	for n := m.tail[c.edge]; n != m.head[p.edge]; {
		e, ok := s.parentOf(n)
		if !ok {
			break
		}
		spans = append(spans, Span{e, 0, 1})
		n = m.tail[e]
	}
	spans = append(spans, Span{p.edge, p.frac, 1})
	for i, j := 0, len(spans)-1; i < j; i, j = i+1, j-1 {
		spans[i], spans[j] = spans[j], spans[i]
	}
	// Drop empty ends (a fix exactly at a node).
	out := spans[:0]
	for _, sp := range spans {
		if sp.To > sp.From {
			out = append(out, sp)
		}
	}
	return d, out
}

package edgespeed

import (
	"cmp"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math"
	"slices"

	"github.com/hextrack/hextrack/eta/mapmatch"
	"github.com/hextrack/hextrack/geo/road"
)

// DefaultKappa is the shrinkage weight, in free-flow seconds: about two
// traversals of a 100 m street at 30 km/h.
const DefaultKappa = 25

// Limits on what a hop may say.
const (
	minFreeS   = 0.5 // a hop driving less free-flow time than this stood still
	maxSpeedMS = 45  // faster hops are matching errors
	maxRatio   = 20  // a hop's ratio is capped here
)

// acc is evidence: observed and free-flow seconds over the same stretch.
type acc struct {
	S, F float64
	N    int32
}

func (a *acc) add(s, f float64) {
	a.S += s
	a.F += f
	a.N++
}

// Learner gathers hops into per-edge evidence for one graph. Not safe
// for concurrent use.
type Learner struct {
	ff      []float32
	buckets int
	edges   map[road.EdgeID][]acc // [buckets] then all-day
	global  []acc                 // [buckets] then all-day
	sig     uint64
	kappa   float64
}

// NewLearner returns a learner for g with buckets time-of-day buckets and
// the shrinkage weight kappa (≤ 0: DefaultKappa).
func NewLearner(g *road.Graph, buckets int, kappa float64) *Learner {
	if kappa <= 0 {
		kappa = DefaultKappa
	}
	return &Learner{ff: g.FreeFlowSeconds(), buckets: buckets, edges: map[road.EdgeID][]acc{},
		global: make([]acc, buckets+1), sig: Signature(g), kappa: kappa}
}

// Add folds one hop driven in bucket b. It reports whether the hop was
// evidence (see the package doc).
func (l *Learner) Add(h mapmatch.Hop, b int) bool {
	if b < 0 || b >= l.buckets || !(h.Seconds > 0) || h.Meters/h.Seconds > maxSpeedMS {
		return false
	}
	free := 0.0
	for _, s := range h.Spans {
		free += (s.To - s.From) * float64(l.ff[s.Edge])
	}
	if free < minFreeS {
		return false
	}
	secs := math.Min(h.Seconds, maxRatio*free)
	for _, s := range h.Spans {
		f := (s.To - s.From) * float64(l.ff[s.Edge])
		a := l.edges[s.Edge]
		if a == nil {
			a = make([]acc, l.buckets+1)
			l.edges[s.Edge] = a
		}
		a[b].add(secs*f/free, f)
		a[l.buckets].add(secs*f/free, f)
	}
	l.global[b].add(secs, free)
	l.global[l.buckets].add(secs, free)
	return true
}

// Table is the learned evidence, frozen.
func (l *Learner) Table() *Table {
	t := &Table{sig: l.sig, buckets: l.buckets, kappa: l.kappa, edges: make(map[road.EdgeID][]acc, len(l.edges)),
		global: slices.Clone(l.global)}
	for e, a := range l.edges {
		t.edges[e] = slices.Clone(a)
	}
	return t
}

// Table answers edge travel-time ratios (observed ÷ free-flow time).
type Table struct {
	sig     uint64
	buckets int
	kappa   float64
	edges   map[road.EdgeID][]acc
	global  []acc
}

// Edges is the number of edges with evidence.
func (t *Table) Edges() int { return len(t.edges) }

// Fits reports whether the table was learned on g (same Signature).
func (t *Table) Fits(g *road.Graph) bool { return t.sig == Signature(g) }

// Global is the city's ratio in bucket b (shrunk towards its all-day
// ratio), and whether any hop was seen.
func (t *Table) Global(b int) (float64, bool) {
	all := t.global[t.buckets]
	if all.F <= 0 {
		return 1, false
	}
	r := all.S / all.F
	if b < 0 || b >= t.buckets {
		return r, true
	}
	g := t.global[b]
	return (g.S + t.kappa*r) / (g.F + t.kappa), true
}

// Ratio is edge e's ratio in bucket b, shrunk towards fallback where its
// evidence is thin (fallback itself when there is none).
func (t *Table) Ratio(e road.EdgeID, b int, fallback float64) float64 {
	a := t.edges[e]
	if a == nil {
		return fallback
	}
	all := a[t.buckets]
	r := (all.S + t.kappa*fallback) / (all.F + t.kappa)
	if b < 0 || b >= t.buckets {
		return r
	}
	return (a[b].S + t.kappa*r) / (a[b].F + t.kappa)
}

// Stat is one edge's evidence in one bucket (-1: all day; Edge -1: the
// whole city), for persistence.
type Stat struct {
	Edge          road.EdgeID
	Bucket        int
	Secs, FreeSec float64
	N             int32
}

// State is a table in exported fields, sorted, for model files.
type State struct {
	Signature uint64
	Buckets   int
	Kappa     float64
	Stats     []Stat
}

// State is the table's state.
func (t *Table) State() State {
	s := State{Signature: t.sig, Buckets: t.buckets, Kappa: t.kappa}
	put := func(e road.EdgeID, a []acc) {
		for b, v := range a {
			if v.N > 0 {
				bk := b
				if b == t.buckets {
					bk = -1
				}
				s.Stats = append(s.Stats, Stat{e, bk, v.S, v.F, v.N})
			}
		}
	}
	put(-1, t.global)
	for e, a := range t.edges {
		put(e, a)
	}
	slices.SortFunc(s.Stats, func(a, b Stat) int {
		if a.Edge != b.Edge {
			return cmp.Compare(a.Edge, b.Edge)
		}
		return cmp.Compare(a.Bucket, b.Bucket)
	})
	return s
}

// ErrState: a state that no table could have written (a corrupt file).
var ErrState = errors.New("edgespeed: malformed state")

// FromState rebuilds a table.
func FromState(s State) (*Table, error) {
	if s.Buckets <= 0 || s.Buckets > 48 || !(s.Kappa > 0) {
		return nil, ErrState
	}
	t := &Table{sig: s.Signature, buckets: s.Buckets, kappa: s.Kappa, edges: map[road.EdgeID][]acc{},
		global: make([]acc, s.Buckets+1)}
	for _, st := range s.Stats {
		if st.Bucket < -1 || st.Bucket >= s.Buckets || st.Edge < -1 || !(st.Secs >= 0) || !(st.FreeSec > 0) {
			return nil, ErrState
		}
		b := st.Bucket
		if b < 0 {
			b = s.Buckets
		}
		a := t.global
		if st.Edge >= 0 {
			a = t.edges[st.Edge]
			if a == nil {
				a = make([]acc, s.Buckets+1)
				t.edges[st.Edge] = a
			}
		}
		a[b] = acc{st.Secs, st.FreeSec, st.N}
	}
	return t, nil
}

// Signature names a graph's edges: their count, ends and lengths. Two
// loads of the same map have the same signature.
func Signature(g *road.Graph) uint64 {
	h := fnv.New64a()
	var buf [16]byte
	binary.LittleEndian.PutUint64(buf[:8], uint64(g.NumEdges()))
	h.Write(buf[:8])
	for e := range g.NumEdges() {
		ed := g.Edge(road.EdgeID(e))
		binary.LittleEndian.PutUint32(buf[0:], uint32(ed.From))
		binary.LittleEndian.PutUint32(buf[4:], uint32(ed.To))
		binary.LittleEndian.PutUint64(buf[8:], math.Float64bits(ed.LengthM))
		h.Write(buf[:])
	}
	return h.Sum64()
}

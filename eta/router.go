package eta

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/eta/edgespeed"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
)

// Speed factors a learned cell speed may apply to an edge's free-flow speed.
const (
	minFactor = 0.1
	maxFactor = 2.0
)

// rebuildEvery bounds how often the edge weights follow a changing model.
const rebuildEvery = time.Second

// Router finds time-weighted routes over a road graph with A*, edge times
// coming from the free-flow speed of each edge scaled by what the speed
// model learned for the edge's cell and time-of-day bucket:
// speed(edge) = freeflow(edge) × learned(cell) / prior(cell), clamped to
// [0.1, 2] × free flow. The cell prior is the (harmonic, length-weighted)
// mean free-flow speed of the cell's edges; NewRouter registers it in the
// model. With edge speeds learned from matched trails (SetEdgeSpeeds) an
// edge's time is its own learned ratio × free flow, shrunk towards the
// cell's ratio, or the city's where the cell learned nothing (see
// eta/edgespeed), clamped alike. Safe for concurrent use.
type Router struct {
	g        *road.Graph
	model    *SpeedModel
	edgeCell []int32
	cells    []geo.Cell
	priors   []float64
	ff       []float32
	lens     []float32

	mu    sync.Mutex // serialises rebuilds
	w     atomic.Pointer[weights]
	edges atomic.Pointer[edgespeed.Table] // nil: cell speeds only
}

type weights struct {
	ver   uint64
	built time.Time
	secs  [Buckets][]float32
	vmax  [Buckets]float64
}

// NewRouter prepares a router over g using model's speeds (model may be nil:
// free-flow speeds only).
func NewRouter(g *road.Graph, model *SpeedModel) *Router {
	r := &Router{g: g, model: model, ff: g.FreeFlowSeconds()}
	idx := map[geo.Cell]int32{}
	r.edgeCell = make([]int32, g.NumEdges())
	var sumLen, sumPace []float64
	for e := range r.edgeCell {
		ed := g.Edge(road.EdgeID(e))
		a, b := g.Node(ed.From), g.Node(ed.To)
		c := geo.CellOf(geo.Point{Lat: (a.Lat + b.Lat) / 2, Lng: (a.Lng + b.Lng) / 2}, SpeedRes)
		i, ok := idx[c]
		if !ok {
			i = int32(len(r.cells))
			idx[c] = i
			r.cells = append(r.cells, c)
			sumLen, sumPace = append(sumLen, 0), append(sumPace, 0)
		}
		r.edgeCell[e] = i
		r.lens = append(r.lens, float32(ed.LengthM))
		sumLen[i] += ed.LengthM
		sumPace[i] += float64(r.ff[e])
	}
	r.priors = make([]float64, len(r.cells))
	for i, c := range r.cells {
		r.priors[i] = sumLen[i] / sumPace[i]
		if model != nil {
			model.SetPrior(c, r.priors[i])
		}
	}
	r.rebuild()
	return r
}

// Graph is the router's road graph.
func (r *Router) Graph() *road.Graph { return r.g }

// Cells are the speed cells the graph covers.
func (r *Router) Cells() []geo.Cell { return append([]geo.Cell(nil), r.cells...) }

func (r *Router) current() *weights {
	w := r.w.Load()
	if r.model == nil || time.Since(w.built) < rebuildEvery || r.model.Version() == w.ver {
		return w
	}
	return r.rebuild()
}

// Refresh makes the edge weights follow the model now instead of within
// a second: for a batch of learning (eta-eval) followed by routing, and
// for tests.
func (r *Router) Refresh() { r.rebuild() }

// SetEdgeSpeeds installs per-edge speeds learned from matched trails (nil
// removes them) and rebuilds the weights. A table learned on another graph
// is refused (false) and the router keeps what it had.
func (r *Router) SetEdgeSpeeds(t *edgespeed.Table) bool {
	if t != nil && !t.Fits(r.g) {
		return false
	}
	r.edges.Store(t)
	r.build(true)
	return true
}

// EdgeSpeeds is the installed edge-speed table (nil: none).
func (r *Router) EdgeSpeeds() *edgespeed.Table { return r.edges.Load() }

// rebuild recomputes edge weights from the model if it changed.
func (r *Router) rebuild() *weights { return r.build(false) }

// build recomputes edge weights (force: even if the model did not change).
func (r *Router) build(force bool) *weights {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ver uint64
	if r.model != nil {
		ver = r.model.Version()
	}
	if w := r.w.Load(); !force && w != nil && w.ver == ver && r.model != nil {
		return w
	}
	edges := r.edges.Load()
	w := &weights{ver: ver, built: time.Now()}
	factor := make([]float64, len(r.cells))
	for b := 0; b < Buckets; b++ {
		city := 1.0
		if edges != nil {
			city, _ = edges.Global(b)
		}
		for i, c := range r.cells {
			factor[i] = 1 / city
			if r.model != nil {
				if v, learned := r.model.Speed(c, b); learned {
					factor[i] = v / r.priors[i]
				}
			}
			factor[i] = math.Max(minFactor, math.Min(maxFactor, factor[i]))
		}
		secs := make([]float32, len(r.ff))
		vmax := 0.0
		for e := range secs {
			s := float64(r.ff[e]) / factor[r.edgeCell[e]]
			if edges != nil {
				ratio := edges.Ratio(road.EdgeID(e), b, 1/factor[r.edgeCell[e]])
				s = float64(r.ff[e]) * math.Max(1/maxFactor, math.Min(1/minFactor, ratio))
			}
			secs[e] = float32(s)
			// Bound from the float32 actually used, so rounding can't make
			// the heuristic overestimate.
			vmax = math.Max(vmax, r.g.Edge(road.EdgeID(e)).LengthM/float64(secs[e]))
		}
		w.secs[b], w.vmax[b] = secs, vmax*1.0001
	}
	r.w.Store(w)
	return w
}

// Route is the fastest route from one point to another departing at t (its
// hour picks the time-of-day speeds). Errors: road.ErrOffGraph when a point
// is farther than road.MaxSnapM from every road, road.ErrUnreachable.
func (r *Router) Route(ctx context.Context, from, to geo.Point, t time.Time) (road.Route, error) {
	if err := ctx.Err(); err != nil {
		return road.Route{}, err
	}
	a := r.g.Near(from, nearSlackM, nearMax)
	b := r.g.Near(to, nearSlackM, nearMax)
	if a == nil || b == nil {
		return road.Route{}, road.ErrOffGraph
	}
	w := r.current()
	bk := BucketOf(t)
	return r.g.RouteMulti(a, b, w.secs[bk], w.vmax[bk], accessMS)
}

// Candidate roads per end: every edge within 25 m of the nearest (up to 6),
// each reached from the GPS point at a slow 8 m/s, so a fix a few metres off
// picks the road that makes sense rather than just the nearest one.
const (
	nearSlackM = 25
	nearMax    = 6
	accessMS   = 8
)

// RouteSnapped routes between already snapped points.
func (r *Router) RouteSnapped(a, b road.Snap, t time.Time) (road.Route, error) {
	w := r.current()
	bk := BucketOf(t)
	return r.g.RouteWeighted(a, b, w.secs[bk], w.vmax[bk])
}

// RouteLength is the shortest route by distance (its Seconds are meters).
// The routed-constant baseline of eta-eval uses it.
func (r *Router) RouteLength(a, b road.Snap) (road.Route, error) {
	return r.g.RouteWeighted(a, b, r.lens, 1.0001)
}

// Weights are the edge travel times (seconds, indexed by road.EdgeID) the
// router uses for departures at t, and the speed bound of its heuristic.
// The slice is shared: read only.
func (r *Router) Weights(t time.Time) ([]float32, float64) {
	w := r.current()
	bk := BucketOf(t)
	return w.secs[bk], w.vmax[bk]
}

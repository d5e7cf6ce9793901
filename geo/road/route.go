package road

import (
	"math"
	"sync"

	"github.com/hextrack/hextrack/geo"
)

// Route is a path through the graph between two snapped points.
type Route struct {
	Seconds float64
	Meters  float64
	Path    []geo.Point // from the snapped origin to the snapped destination
	Edges   []EdgeID
}

// router finds fastest paths through the network (A* with a straight-line
// heuristic); a Graph embeds it, so its methods are the Graph's.
type router struct{ *network }

// heuristicSlack keeps the planar straight-line bound below the true
// great-circle length (the planar projection is within ~0.1% over a city).
const heuristicSlack = 0.99

// FreeFlowSeconds returns a copy of the per-edge travel times at free-flow
// speed, the weights Route uses.
func (g *router) FreeFlowSeconds() []float32 { return append([]float32(nil), g.ff...) }

// Route finds the fastest free-flow route between two points (each snapped
// to its nearest road). Simulators use it to drive along real streets.
func (g *Graph) Route(from, to geo.Point) (Route, error) {
	a, ok := g.Snap(from)
	if !ok {
		return Route{}, ErrOffGraph
	}
	b, ok := g.Snap(to)
	if !ok {
		return Route{}, ErrOffGraph
	}
	return g.RouteWeighted(a, b, g.ff, g.maxSpeed)
}

type searchState struct {
	dist   []float64
	parent []int32 // edge into the node, -1 for a source, -2 unset
	stamp  []uint32
	done   []uint32
	gen    uint32
	heap   nodeHeap
}

var searchPool sync.Pool

func (g *router) state() *searchState {
	s, _ := searchPool.Get().(*searchState)
	n := len(g.pts)
	if s == nil || len(s.dist) != n {
		s = &searchState{dist: make([]float64, n), parent: make([]int32, n),
			stamp: make([]uint32, n), done: make([]uint32, n)}
	}
	s.gen++
	if s.gen == 0 { // wrapped: clear stamps
		clear(s.stamp)
		clear(s.done)
		s.gen = 1
	}
	s.heap = s.heap[:0]
	return s
}

type endpoint struct {
	edge int32
	frac float64 // position of the point along edge
	snap int     // index of the candidate snap
	cost float64 // access cost of the candidate
}

// sides lists the directed edges a snapped point lies on: its edge and, for
// a two-way road, the reverse twin (with the fraction mirrored).
func (g *router) sides(s Snap) []endpoint {
	out := []endpoint{{edge: int32(s.Edge), frac: s.Frac}}
	if r := g.rev[s.Edge]; r >= 0 {
		out = append(out, endpoint{edge: r, frac: 1 - s.Frac})
	}
	return out
}

// RouteWeighted runs A* from snapped point a to snapped point b, with
// secs[e] the travel time of edge e and maxSpeed (m/s) an upper bound of
// LengthM/secs over all edges — the heuristic divides straight-line distance
// by it, so an understated maxSpeed breaks optimality. It returns
// ErrUnreachable when no directed path exists (the search ends when the
// frontier is empty, so it never loops).
func (g *router) RouteWeighted(a, b Snap, secs []float32, maxSpeed float64) (Route, error) {
	return g.RouteMulti([]Snap{a}, []Snap{b}, secs, maxSpeed, 0)
}

// RouteMulti is RouteWeighted with several candidate snaps per end (see
// Near): the route may start on any src candidate and end on any dst
// candidate, each costing DistM/accessMS seconds extra (accessMS 0: free).
// It keeps GPS noise from snapping a point onto the wrong side of a one-way
// street and sending the route around the block.
func (g *router) RouteMulti(srcSnaps, dstSnaps []Snap, secs []float32, maxSpeed, accessMS float64) (Route, error) {
	if len(secs) != len(g.head) || maxSpeed <= 0 || len(srcSnaps) == 0 || len(dstSnaps) == 0 {
		return Route{}, ErrUnreachable
	}
	access := func(s Snap) float64 {
		if accessMS <= 0 {
			return 0
		}
		return s.DistM / accessMS
	}
	var src, dst []endpoint
	for i, s := range srcSnaps {
		for _, e := range g.sides(s) {
			e.snap, e.cost = i, access(s)
			src = append(src, e)
		}
	}
	target := g.proj.xy(dstSnaps[0].Point)
	radius := 0.0
	for i, s := range dstSnaps {
		radius = math.Max(radius, g.planar(target, g.proj.xy(s.Point)))
		for _, e := range g.sides(s) {
			e.snap, e.cost = i, access(s)
			dst = append(dst, e)
		}
	}
	inv := heuristicSlack / maxSpeed
	h := func(n int32) float64 { return math.Max(0, g.planar(g.xy[n], target)-radius) * inv }

	// Direct: both points on the same directed edge, origin first.
	best := math.Inf(1)
	bestVia := int32(-1) // node through which the best path enters dst edge
	var bestDst endpoint
	var direct *[2]endpoint
	for _, s := range src {
		for _, d := range dst {
			if s.edge == d.edge && s.frac <= d.frac {
				c := s.cost + d.cost + (d.frac-s.frac)*float64(secs[s.edge])
				if c < best {
					best = c
					direct = &[2]endpoint{s, d}
				}
			}
		}
	}

	st := g.state()
	defer searchPool.Put(st)
	gen := st.gen
	relax := func(v int32, d float64, via int32) {
		if st.stamp[v] != gen || d < st.dist[v] {
			st.stamp[v] = gen
			st.dist[v] = d
			st.parent[v] = via
			st.heap.push(heapItem{f: d + h(v), n: v})
		}
	}
	// Sources are encoded in parent as -1-index into src.
	for i, s := range src {
		relax(g.head[s.edge], s.cost+(1-s.frac)*float64(secs[s.edge]), int32(-1-i))
	}
	for len(st.heap) > 0 {
		it := st.heap.pop()
		u := it.n
		if st.done[u] == gen {
			continue
		}
		if it.f >= best {
			break
		}
		st.done[u] = gen
		du := st.dist[u]
		// Entry into a destination edge: reach its tail, then frac of it.
		for _, d := range dst {
			if g.tail[d.edge] == u {
				if c := du + d.cost + d.frac*float64(secs[d.edge]); c < best {
					best, bestVia, bestDst, direct = c, u, d, nil
				}
			}
		}
		for e := g.first[u]; e < g.first[u+1]; e++ {
			v := g.head[e]
			if st.done[v] == gen {
				continue
			}
			relax(v, du+float64(secs[e]), e)
		}
	}
	if math.IsInf(best, 1) {
		return Route{}, ErrUnreachable
	}
	r := Route{Seconds: best}
	if direct != nil {
		s, d := direct[0], direct[1]
		r.Edges = []EdgeID{EdgeID(s.edge)}
		r.Meters = (d.frac - s.frac) * float64(g.len[s.edge])
		r.Path = []geo.Point{srcSnaps[s.snap].Point, dstSnaps[d.snap].Point}
		return r, nil
	}
	// Walk back from bestVia to a source.
	var rev []int32
	v := bestVia
	var first endpoint
	for {
		p := st.parent[v]
		if p < 0 {
			first = src[-1-p]
			break
		}
		rev = append(rev, p)
		v = g.tail[p]
	}
	r.Edges = make([]EdgeID, 0, len(rev)+2)
	r.Edges = append(r.Edges, EdgeID(first.edge))
	r.Meters = (1 - first.frac) * float64(g.len[first.edge])
	r.Path = make([]geo.Point, 0, len(rev)+3)
	r.Path = append(r.Path, srcSnaps[first.snap].Point, g.pts[g.head[first.edge]])
	for i := len(rev) - 1; i >= 0; i-- {
		e := rev[i]
		r.Edges = append(r.Edges, EdgeID(e))
		r.Meters += float64(g.len[e])
		r.Path = append(r.Path, g.pts[g.head[e]])
	}
	r.Edges = append(r.Edges, EdgeID(bestDst.edge))
	r.Meters += bestDst.frac * float64(g.len[bestDst.edge])
	r.Path = append(r.Path, dstSnaps[bestDst.snap].Point)
	return r, nil
}

type heapItem struct {
	f float64
	n int32
}

// nodeHeap is a binary min-heap on f (lazy deletion: stale items are skipped
// when popped).
type nodeHeap []heapItem

func (h *nodeHeap) push(it heapItem) {
	*h = append(*h, it)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].f <= s[i].f {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *nodeHeap) pop() heapItem {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s[r].f < s[l].f {
			m = r
		}
		if s[i].f <= s[m].f {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

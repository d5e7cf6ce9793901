package road

import (
	"cmp"
	"math"
	"slices"

	"github.com/hextrack/hextrack/geo"
)

// gridCellM is the side of a snapping bucket. Urban edges are mostly shorter
// than this, so each edge lands in one to four buckets.
const gridCellM = 200

// MaxSnapM is how far a point may be from the nearest road and still be
// snapped; farther points are "off the graph" (ErrOffGraph).
const MaxSnapM = 1000

// edgeGrid buckets edges by the planar cells their bounding box covers. Only
// one edge of each two-way pair is stored; Snap's caller gets the twin through
// Graph.Reverse.
type edgeGrid struct {
	x0, y0 float64
	nx, ny int
	first  []int32 // bucket b holds items[first[b]:first[b+1]]
	items  []int32
}

func newEdgeGrid(g *network) edgeGrid {
	var gr edgeGrid
	if len(g.xy) == 0 {
		return gr
	}
	minX, minY := math.Inf(1), math.Inf(1)
	maxX, maxY := math.Inf(-1), math.Inf(-1)
	for _, p := range g.xy {
		minX, minY = math.Min(minX, p[0]), math.Min(minY, p[1])
		maxX, maxY = math.Max(maxX, p[0]), math.Max(maxY, p[1])
	}
	gr.x0, gr.y0 = minX, minY
	gr.nx = int((maxX-minX)/gridCellM) + 1
	gr.ny = int((maxY-minY)/gridCellM) + 1
	count := make([]int32, gr.nx*gr.ny+1)
	visit := func(e int, fn func(b int)) {
		a, c := g.xy[g.tail[e]], g.xy[g.head[e]]
		bx0, by0 := gr.bucket(math.Min(a[0], c[0]), math.Min(a[1], c[1]))
		bx1, by1 := gr.bucket(math.Max(a[0], c[0]), math.Max(a[1], c[1]))
		for y := by0; y <= by1; y++ {
			for x := bx0; x <= bx1; x++ {
				fn(y*gr.nx + x)
			}
		}
	}
	stored := func(e int) bool { r := g.rev[e]; return r < 0 || int(r) > e }
	for e := range g.head {
		if stored(e) {
			visit(e, func(b int) { count[b+1]++ })
		}
	}
	for i := 1; i < len(count); i++ {
		count[i] += count[i-1]
	}
	gr.first = count
	gr.items = make([]int32, count[len(count)-1])
	fill := append([]int32(nil), count[:len(count)-1]...)
	for e := range g.head {
		if stored(e) {
			visit(e, func(b int) { gr.items[fill[b]] = int32(e); fill[b]++ })
		}
	}
	return gr
}

func (gr *edgeGrid) bucket(x, y float64) (int, int) {
	bx := int((x - gr.x0) / gridCellM)
	by := int((y - gr.y0) / gridCellM)
	return min(max(bx, 0), gr.nx-1), min(max(by, 0), gr.ny-1)
}

// Snap is a point projected onto the nearest road edge.
type Snap struct {
	Edge  EdgeID
	Frac  float64   // position along Edge, 0 at From, 1 at To
	Point geo.Point // the projected point
	DistM float64   // distance from the query point to Point
}

// Snap projects p onto the nearest edge within MaxSnapM. For a two-way road
// it returns one of the two directed edges; the other is Graph.Reverse(Edge).
func (g *Graph) Snap(p geo.Point) (Snap, bool) {
	gr := &g.grid
	if gr.nx == 0 || !p.Valid() {
		return Snap{}, false
	}
	q := g.proj.xy(p)
	cx := int(math.Floor((q[0] - gr.x0) / gridCellM))
	cy := int(math.Floor((q[1] - gr.y0) / gridCellM))
	best, bestD, bestT := int32(-1), math.Inf(1), 0.0
	maxRing := int(MaxSnapM/gridCellM) + 2
	for r := 0; r <= maxRing; r++ {
		// Everything in ring r is at least (r-1)*cell away.
		if best >= 0 && float64(r-1)*gridCellM > bestD {
			break
		}
		for y := cy - r; y <= cy+r; y++ {
			if y < 0 || y >= gr.ny {
				continue
			}
			step := 1
			if y != cy-r && y != cy+r {
				step = 2 * r
			}
			for x := cx - r; x <= cx+r; x += max(step, 1) {
				if x < 0 || x >= gr.nx {
					continue
				}
				b := y*gr.nx + x
				for _, e := range gr.items[gr.first[b]:gr.first[b+1]] {
					d, t := segDist(q, g.xy[g.tail[e]], g.xy[g.head[e]])
					if d < bestD || (d == bestD && e < best) {
						best, bestD, bestT = e, d, t
					}
				}
			}
		}
	}
	if best < 0 {
		return Snap{}, false
	}
	a, b := g.pts[g.tail[best]], g.pts[g.head[best]]
	sp := geo.Point{Lat: a.Lat + (b.Lat-a.Lat)*bestT, Lng: a.Lng + (b.Lng-a.Lng)*bestT}
	d := geo.Distance(p, sp)
	if d > MaxSnapM {
		return Snap{}, false
	}
	return Snap{Edge: EdgeID(best), Frac: bestT, Point: sp, DistM: d}, true
}

// Near returns the snaps of p onto every edge within slackM of the nearest
// one (the nearest first, at most max), one per two-way pair; nil when p is
// off the graph. Routing from or to all of them (RouteMulti) absorbs GPS
// error near parallel or one-way streets.
func (g *Graph) Near(p geo.Point, slackM float64, max int) []Snap {
	s, ok := g.Snap(p)
	if !ok {
		return nil
	}
	out := []Snap{s}
	gr := &g.grid
	q := g.proj.xy(p)
	lim := s.DistM + slackM
	bx0, by0 := gr.bucket(q[0]-lim, q[1]-lim)
	bx1, by1 := gr.bucket(q[0]+lim, q[1]+lim)
	type cand struct {
		e    int32
		d, t float64
	}
	var cs []cand
	seen := map[int32]bool{int32(s.Edge): true}
	if r := g.rev[s.Edge]; r >= 0 {
		seen[r] = true
	}
	for y := by0; y <= by1; y++ {
		for x := bx0; x <= bx1; x++ {
			b := y*gr.nx + x
			for _, e := range gr.items[gr.first[b]:gr.first[b+1]] {
				if seen[e] {
					continue
				}
				seen[e] = true
				if d, t := segDist(q, g.xy[g.tail[e]], g.xy[g.head[e]]); d <= lim {
					cs = append(cs, cand{e, d, t})
				}
			}
		}
	}
	slices.SortFunc(cs, func(a, b cand) int { return cmp.Compare(a.d, b.d) })
	for _, c := range cs {
		if len(out) >= max {
			break
		}
		a, b := g.pts[g.tail[c.e]], g.pts[g.head[c.e]]
		sp := geo.Point{Lat: a.Lat + (b.Lat-a.Lat)*c.t, Lng: a.Lng + (b.Lng-a.Lng)*c.t}
		out = append(out, Snap{Edge: EdgeID(c.e), Frac: c.t, Point: sp, DistM: geo.Distance(p, sp)})
	}
	return out
}

// NodeSnap is a snap exactly at node n (frac 0 of one of its out-edges, or
// frac 1 of an in-edge for a node without out-edges). Routes between node
// snaps are node-to-node shortest paths.
func (g *Graph) NodeSnap(n NodeID) Snap {
	if lo, hi := g.OutEdges(n); lo < hi {
		return Snap{Edge: lo, Frac: 0, Point: g.pts[n]}
	}
	for e, h := range g.head {
		if h == int32(n) {
			return Snap{Edge: EdgeID(e), Frac: 1, Point: g.pts[n]}
		}
	}
	return Snap{Edge: -1}
}

// segDist is the planar distance from q to segment ab and the fraction along
// ab of the closest point.
func segDist(q, a, b [2]float64) (float64, float64) {
	dx, dy := b[0]-a[0], b[1]-a[1]
	l2 := dx*dx + dy*dy
	t := 0.0
	if l2 > 0 {
		t = ((q[0]-a[0])*dx + (q[1]-a[1])*dy) / l2
		t = math.Max(0, math.Min(1, t))
	}
	px, py := a[0]+t*dx-q[0], a[1]+t*dy-q[1]
	return math.Hypot(px, py), t
}

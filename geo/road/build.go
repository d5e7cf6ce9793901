package road

import (
	"math"

	"github.com/hextrack/hextrack/geo"
)

// Way is a road polyline given to BuildGraph.
type Way struct {
	Nodes    []int // indexes into BuildGraph's nodes
	Class    RoadClass
	SpeedMS  float64 // 0: the class default
	Forward  bool    // traffic may go from Nodes[0] towards the end
	Backward bool    // traffic may go the other way
	Name     string  // street name ("": unnamed), drawn in GeoJSON
}

// BuildGraph builds a graph from explicit nodes and ways, as they are: unlike
// LoadOSM and SyntheticCity it does not prune to the largest strongly
// connected component, so some pairs may be unreachable. For tests and tools.
func BuildGraph(nodes []geo.Point, ways []Way) *Graph {
	var b builder
	for _, p := range nodes {
		b.addNode(p)
	}
	for _, w := range ways {
		idx := make([]int32, 0, len(w.Nodes))
		for _, n := range w.Nodes {
			if n >= 0 && n < len(nodes) {
				idx = append(idx, int32(n))
			}
		}
		sp := w.SpeedMS
		if sp <= 0 {
			sp = w.Class.DefaultSpeed()
		}
		b.name = w.Name
		b.addWay(idx, w.Class, sp, w.Forward, w.Backward)
	}
	return b.build(false)
}

// builder accumulates nodes, directed edges and road polylines, then keeps
// the largest strongly connected component and freezes a Graph.
type builder struct {
	pts   []geo.Point
	edges []bEdge
	roads []road
	name  string // the street name addWay gives the roads it adds
}

type bEdge struct {
	u, v  int32
	speed float32
	class RoadClass
}

func (b *builder) addNode(p geo.Point) int32 {
	b.pts = append(b.pts, p)
	return int32(len(b.pts) - 1)
}

// addWay adds the segments of a polyline, forward, backward or both.
func (b *builder) addWay(nodes []int32, class RoadClass, speedMS float64, fwd, bwd bool) {
	if len(nodes) < 2 || (!fwd && !bwd) {
		return
	}
	if !(speedMS > 0) {
		speedMS = class.DefaultSpeed()
	}
	for i := 0; i+1 < len(nodes); i++ {
		u, v := nodes[i], nodes[i+1]
		if u == v {
			continue
		}
		if fwd {
			b.edges = append(b.edges, bEdge{u, v, float32(speedMS), class})
		}
		if bwd {
			b.edges = append(b.edges, bEdge{v, u, float32(speedMS), class})
		}
	}
	b.roads = append(b.roads, road{nodes: append([]int32(nil), nodes...), class: class, oneway: fwd != bwd, name: b.name})
}

// build freezes the graph, keeping only the largest strongly connected
// component when prune is set.
func (b *builder) build(prune bool) *Graph {
	n := len(b.pts)
	var keep []bool
	if prune {
		keep = largestSCC(n, b.edges)
	} else {
		keep = make([]bool, n)
		for i := range keep {
			keep[i] = true
		}
	}
	newID := make([]int32, n)
	g := &Graph{network: &network{}}
	for i := range newID {
		newID[i] = -1
		if keep[i] {
			newID[i] = int32(len(g.pts))
			g.pts = append(g.pts, b.pts[i])
		}
	}
	// Count out-degree, dedupe parallel edges (keep the fastest).
	type key struct{ u, v int32 }
	best := make(map[key]int, len(b.edges))
	for i, e := range b.edges {
		u, v := newID[e.u], newID[e.v]
		if u < 0 || v < 0 {
			continue
		}
		k := key{u, v}
		if j, ok := best[k]; !ok || b.edges[j].speed < e.speed {
			best[k] = i
		}
	}
	g.first = make([]int32, len(g.pts)+1)
	for k := range best {
		g.first[k.u+1]++
	}
	for i := 1; i < len(g.first); i++ {
		g.first[i] += g.first[i-1]
	}
	m := len(best)
	g.tail, g.head = make([]int32, m), make([]int32, m)
	g.len, g.speed = make([]float32, m), make([]float32, m)
	g.class, g.rev = make([]RoadClass, m), make([]int32, m)
	fill := append([]int32(nil), g.first[:len(g.pts)]...)
	// Deterministic order: iterate the builder's edges, not the map.
	for i, e := range b.edges {
		u, v := newID[e.u], newID[e.v]
		if u < 0 || v < 0 || best[key{u, v}] != i {
			continue
		}
		j := fill[u]
		fill[u]++
		g.tail[j], g.head[j] = u, v
		g.len[j] = float32(geo.Distance(g.pts[u], g.pts[v]))
		if g.len[j] < 0.01 {
			g.len[j] = 0.01
		}
		g.speed[j], g.class[j] = e.speed, e.class
		g.maxSpeed = math.Max(g.maxSpeed, float64(e.speed))
	}
	g.ff = make([]float32, m)
	for e := range g.head {
		g.ff[e] = g.len[e] / g.speed[e]
		g.rev[e] = -1
		v := g.head[e]
		for r := g.first[v]; r < g.first[v+1]; r++ {
			if g.head[r] == g.tail[e] {
				g.rev[e] = r
				break
			}
		}
	}
	g.proj = newProj(g.pts)
	g.xy = make([][2]float64, len(g.pts))
	for i, p := range g.pts {
		g.xy[i] = g.proj.xy(p)
	}
	for _, r := range b.roads {
		nodes := make([]int32, len(r.nodes))
		alive := 0
		for i, id := range r.nodes {
			nodes[i] = newID[id]
			if nodes[i] >= 0 {
				alive++
			}
		}
		if alive >= 2 {
			g.roads = append(g.roads, road{nodes: nodes, class: r.class, oneway: r.oneway, name: r.name})
		}
	}
	g.router = router{g.network}
	g.grid = newEdgeGrid(g.network)
	return g
}

// largestSCC marks the nodes of the largest strongly connected component
// (Kosaraju, iterative so big maps don't blow the stack).
func largestSCC(n int, edges []bEdge) []bool {
	fwdFirst, fwdAdj := csr(n, edges, false)
	revFirst, revAdj := csr(n, edges, true)
	order := make([]int32, 0, n)
	seen := make([]bool, n)
	type frame struct{ v, i int32 }
	var stack []frame
	for s := 0; s < n; s++ {
		if seen[s] {
			continue
		}
		seen[s] = true
		stack = append(stack[:0], frame{int32(s), fwdFirst[s]})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.i < fwdFirst[top.v+1] {
				w := fwdAdj[top.i]
				top.i++
				if !seen[w] {
					seen[w] = true
					stack = append(stack, frame{w, fwdFirst[w]})
				}
				continue
			}
			order = append(order, top.v)
			stack = stack[:len(stack)-1]
		}
	}
	comp := make([]int32, n)
	for i := range comp {
		comp[i] = -1
	}
	var sizes []int
	var st []int32
	for i := len(order) - 1; i >= 0; i-- {
		s := order[i]
		if comp[s] >= 0 {
			continue
		}
		c := int32(len(sizes))
		sizes = append(sizes, 0)
		comp[s] = c
		st = append(st[:0], s)
		for len(st) > 0 {
			v := st[len(st)-1]
			st = st[:len(st)-1]
			sizes[c]++
			for j := revFirst[v]; j < revFirst[v+1]; j++ {
				if w := revAdj[j]; comp[w] < 0 {
					comp[w] = c
					st = append(st, w)
				}
			}
		}
	}
	bestC, bestN := int32(-1), 0
	for c, sz := range sizes {
		if sz > bestN {
			bestC, bestN = int32(c), sz
		}
	}
	keep := make([]bool, n)
	if bestN < 2 {
		return keep
	}
	for i := range keep {
		keep[i] = comp[i] == bestC
	}
	return keep
}

func csr(n int, edges []bEdge, reverse bool) (first, adj []int32) {
	first = make([]int32, n+1)
	for _, e := range edges {
		u := e.u
		if reverse {
			u = e.v
		}
		first[u+1]++
	}
	for i := 1; i <= n; i++ {
		first[i] += first[i-1]
	}
	adj = make([]int32, len(edges))
	fill := append([]int32(nil), first[:n]...)
	for _, e := range edges {
		u, v := e.u, e.v
		if reverse {
			u, v = v, u
		}
		adj[fill[u]] = v
		fill[u]++
	}
	return first, adj
}

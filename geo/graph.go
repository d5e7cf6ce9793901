package geo

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
)

// Errors of the road graph.
var (
	// ErrUnreachable: no directed path joins the two points.
	ErrUnreachable = errors.New("geo: destination unreachable")
	// ErrOffGraph: a point is too far from every road to be snapped.
	ErrOffGraph = errors.New("geo: point is off the road graph")
)

// NodeID identifies a graph node (a road junction or shape point).
type NodeID int32

// EdgeID identifies a directed graph edge.
type EdgeID int32

// RoadClass is the OSM highway class of an edge, coarsened.
type RoadClass uint8

// Road classes, fastest first.
const (
	ClassMotorway RoadClass = iota
	ClassTrunk
	ClassPrimary
	ClassSecondary
	ClassTertiary
	ClassUnclassified
	ClassResidential
	ClassService
	ClassLiving
	numClasses
)

var classNames = [numClasses]string{"motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential", "service", "living_street"}

func (c RoadClass) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "unknown"
}

// classSpeedKPH is the free-flow urban speed of a class when the way has no
// usable maxspeed. Chosen for European city centres (Porto): what a car
// actually averages between junctions, not the legal limit.
var classSpeedKPH = [numClasses]float64{90, 70, 50, 45, 40, 30, 30, 15, 10}

// DefaultSpeed is the free-flow speed (m/s) of class c.
func (c RoadClass) DefaultSpeed() float64 {
	if c >= numClasses {
		return 30 / 3.6
	}
	return classSpeedKPH[c] / 3.6
}

// Edge is a directed road segment between two nodes.
type Edge struct {
	From, To NodeID
	LengthM  float64
	SpeedMS  float64 // free-flow speed from maxspeed or the road class
	Class    RoadClass
}

// Graph is an immutable directed road graph: nodes with positions, edges in a
// compressed adjacency array, a grid index for snapping, and the road
// polylines for drawing. Safe for concurrent use.
type Graph struct {
	pts   []Point
	xy    [][2]float64 // local planar meters (see proj)
	first []int32      // out-edges of node n are [first[n], first[n+1])
	tail  []int32
	head  []int32
	len   []float32
	speed []float32
	class []RoadClass
	rev   []int32   // reverse twin of each edge or -1
	ff    []float32 // free-flow seconds per edge

	proj     proj
	maxSpeed float64
	grid     edgeGrid
	roads    []road

	geoOnce sync.Once
	geoJSON []byte
}

type road struct {
	nodes  []int32 // node ids, -1 where the node was dropped
	class  RoadClass
	oneway bool
}

// NumNodes is the number of nodes.
func (g *Graph) NumNodes() int { return len(g.pts) }

// NumEdges is the number of directed edges.
func (g *Graph) NumEdges() int { return len(g.head) }

// Node is the position of node n.
func (g *Graph) Node(n NodeID) Point { return g.pts[n] }

// Edge returns edge e.
func (g *Graph) Edge(e EdgeID) Edge {
	return Edge{From: NodeID(g.tail[e]), To: NodeID(g.head[e]), LengthM: float64(g.len[e]),
		SpeedMS: float64(g.speed[e]), Class: g.class[e]}
}

// OutEdges returns the ids of the edges leaving n as the range [lo, hi).
func (g *Graph) OutEdges(n NodeID) (lo, hi EdgeID) {
	return EdgeID(g.first[n]), EdgeID(g.first[n+1])
}

// Reverse returns the edge running the other way along the same segment, if
// the road is two-way.
func (g *Graph) Reverse(e EdgeID) (EdgeID, bool) {
	r := g.rev[e]
	return EdgeID(r), r >= 0
}

// MaxSpeed is the highest free-flow edge speed in m/s.
func (g *Graph) MaxSpeed() float64 { return g.maxSpeed }

// Bounds returns the south-west and north-east corners of the graph.
func (g *Graph) Bounds() (sw, ne Point) {
	if len(g.pts) == 0 {
		return
	}
	sw, ne = g.pts[0], g.pts[0]
	for _, p := range g.pts {
		sw.Lat, sw.Lng = math.Min(sw.Lat, p.Lat), math.Min(sw.Lng, p.Lng)
		ne.Lat, ne.Lng = math.Max(ne.Lat, p.Lat), math.Max(ne.Lng, p.Lng)
	}
	return sw, ne
}

// RandomNode picks a node uniformly at random; simulators use it to choose
// destinations. Every node can reach every other (the graph is one strongly
// connected component).
func (g *Graph) RandomNode(rng *rand.Rand) NodeID { return NodeID(rng.IntN(len(g.pts))) }

// RandomPoint is the position of a random node.
func (g *Graph) RandomPoint(rng *rand.Rand) Point { return g.pts[g.RandomNode(rng)] }

// proj maps degrees to local planar meters. x uses the cosine of the
// highest |latitude| of the graph so planar distances never exceed the
// great-circle ones by more than a hair; the router's heuristic relies on
// that (with a safety factor) to stay admissible.
type proj struct{ kx, ky float64 }

func newProj(pts []Point) proj {
	maxLat := 0.0
	for _, p := range pts {
		maxLat = math.Max(maxLat, math.Abs(p.Lat))
	}
	k := EarthRadiusM * math.Pi / 180
	return proj{kx: k * math.Cos(rad(maxLat)), ky: k}
}

func (pr proj) xy(p Point) [2]float64 { return [2]float64{p.Lng * pr.kx, p.Lat * pr.ky} }

// planar is the distance between two projected points: within ~0.1% of
// Distance over a city, and far cheaper.
func (g *Graph) planar(a, b [2]float64) float64 {
	return math.Hypot(a[0]-b[0], a[1]-b[1])
}

// Way is a road polyline given to BuildGraph.
type Way struct {
	Nodes    []int // indexes into BuildGraph's nodes
	Class    RoadClass
	SpeedMS  float64 // 0: the class default
	Forward  bool    // traffic may go from Nodes[0] towards the end
	Backward bool    // traffic may go the other way
}

// BuildGraph builds a graph from explicit nodes and ways, as they are: unlike
// LoadOSM and SyntheticCity it does not prune to the largest strongly
// connected component, so some pairs may be unreachable. For tests and tools.
func BuildGraph(nodes []Point, ways []Way) *Graph {
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
		b.addWay(idx, w.Class, sp, w.Forward, w.Backward)
	}
	return b.build(false)
}

// builder accumulates nodes, directed edges and road polylines, then keeps
// the largest strongly connected component and freezes a Graph.
type builder struct {
	pts   []Point
	edges []bEdge
	roads []road
}

type bEdge struct {
	u, v  int32
	speed float32
	class RoadClass
}

func (b *builder) addNode(p Point) int32 {
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
	b.roads = append(b.roads, road{nodes: append([]int32(nil), nodes...), class: class, oneway: fwd != bwd})
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
	g := &Graph{}
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
		g.len[j] = float32(Distance(g.pts[u], g.pts[v]))
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
			g.roads = append(g.roads, road{nodes: nodes, class: r.class, oneway: r.oneway})
		}
	}
	g.grid = newEdgeGrid(g)
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

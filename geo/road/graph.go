package road

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/hextrack/hextrack/geo"
)

// Errors of the road graph.
var (
	// ErrUnreachable: no directed path joins the two points.
	ErrUnreachable = errors.New("road: destination unreachable")
	// ErrOffGraph: a point is too far from every road to be snapped.
	ErrOffGraph = errors.New("road: point is off the road graph")
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

// Graph is an immutable directed road graph. Its parts each do one job:
// the network (nodes with positions, edges in a compressed adjacency array;
// this file), the router that searches it (route.go), the grid index that
// snaps points onto it (snap.go) and the road polylines drawn from it
// (geojson.go). BuildGraph, LoadOSM and SyntheticCity make one (build.go,
// osm.go, synth.go). Safe for concurrent use.
type Graph struct {
	*network
	router
	grid  edgeGrid
	roads []road

	geoOnce sync.Once
	geoJSON []byte
}

// network is the frozen node and edge arrays every part of a Graph reads.
type network struct {
	pts   []geo.Point
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
}

type road struct {
	nodes  []int32 // node ids, -1 where the node was dropped
	class  RoadClass
	oneway bool
	name   string // OSM name tag; "" when unnamed
}

// NumNodes is the number of nodes.
func (g *network) NumNodes() int { return len(g.pts) }

// NumEdges is the number of directed edges.
func (g *network) NumEdges() int { return len(g.head) }

// Node is the position of node n.
func (g *network) Node(n NodeID) geo.Point { return g.pts[n] }

// Edge returns edge e.
func (g *network) Edge(e EdgeID) Edge {
	return Edge{From: NodeID(g.tail[e]), To: NodeID(g.head[e]), LengthM: float64(g.len[e]),
		SpeedMS: float64(g.speed[e]), Class: g.class[e]}
}

// OutEdges returns the ids of the edges leaving n as the range [lo, hi).
func (g *network) OutEdges(n NodeID) (lo, hi EdgeID) {
	return EdgeID(g.first[n]), EdgeID(g.first[n+1])
}

// Reverse returns the edge running the other way along the same segment, if
// the road is two-way.
func (g *network) Reverse(e EdgeID) (EdgeID, bool) {
	r := g.rev[e]
	return EdgeID(r), r >= 0
}

// MaxSpeed is the highest free-flow edge speed in m/s.
func (g *network) MaxSpeed() float64 { return g.maxSpeed }

// Bounds returns the south-west and north-east corners of the graph.
func (g *network) Bounds() (sw, ne geo.Point) {
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
func (g *network) RandomNode(rng *rand.Rand) NodeID { return NodeID(rng.IntN(len(g.pts))) }

// RandomPoint is the position of a random node.
func (g *network) RandomPoint(rng *rand.Rand) geo.Point { return g.pts[g.RandomNode(rng)] }

// proj maps degrees to local planar meters. x uses the cosine of the
// highest |latitude| of the graph so planar distances never exceed the
// great-circle ones by more than a hair; the router's heuristic relies on
// that (with a safety factor) to stay admissible.
type proj struct{ kx, ky float64 }

func newProj(pts []geo.Point) proj {
	maxLat := 0.0
	for _, p := range pts {
		maxLat = math.Max(maxLat, math.Abs(p.Lat))
	}
	k := geo.EarthRadiusM * math.Pi / 180
	return proj{kx: k * math.Cos(maxLat*math.Pi/180), ky: k}
}

func (pr proj) xy(p geo.Point) [2]float64 { return [2]float64{p.Lng * pr.kx, p.Lat * pr.ky} }

// planar is the distance between two projected points: within ~0.1% of
// Distance over a city, and far cheaper.
func (g *network) planar(a, b [2]float64) float64 {
	return math.Hypot(a[0]-b[0], a[1]-b[1])
}

package road_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
	"github.com/hextrack/hextrack/internal/shareddata"
)

// dataFile is the path of a file of ../shared/data (see shareddata.Path).
func dataFile(tb testing.TB, name string) string {
	tb.Helper()
	return shareddata.Path(tb, name)
}

func mustLoadPorto(tb testing.TB) *road.Graph {
	tb.Helper()
	g, err := road.LoadOSMFile(dataFile(tb, "porto.osm.pbf"))
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// stronglyConnected checks that every node reaches node 0 and node 0
// reaches every node.
func stronglyConnected(t *testing.T, g *road.Graph) {
	t.Helper()
	n := g.NumNodes()
	radj := make([][]road.NodeID, n)
	fwd := make([]bool, n)
	stack := []road.NodeID{0}
	fwd[0] = true
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		lo, hi := g.OutEdges(u)
		for e := lo; e < hi; e++ {
			v := g.Edge(e).To
			if !fwd[v] {
				fwd[v] = true
				stack = append(stack, v)
			}
		}
	}
	for e := 0; e < g.NumEdges(); e++ {
		ed := g.Edge(road.EdgeID(e))
		radj[ed.To] = append(radj[ed.To], ed.From)
	}
	bwd := make([]bool, n)
	bwd[0] = true
	stack = append(stack[:0], 0)
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, v := range radj[u] {
			if !bwd[v] {
				bwd[v] = true
				stack = append(stack, v)
			}
		}
	}
	for i := 0; i < n; i++ {
		if !fwd[i] || !bwd[i] {
			t.Fatalf("node %d not strongly connected to node 0 (fwd %v bwd %v)", i, fwd[i], bwd[i])
		}
	}
}

func oneWayShare(g *road.Graph) float64 {
	one := 0
	for e := 0; e < g.NumEdges(); e++ {
		if _, ok := g.Reverse(road.EdgeID(e)); !ok {
			one++
		}
	}
	return float64(one) / float64(g.NumEdges())
}

func TestLoadOSMPorto(t *testing.T) {
	g := mustLoadPorto(t)
	if g.NumNodes() < 4000 || g.NumEdges() < 6000 {
		t.Fatalf("porto graph too small: %d nodes, %d edges", g.NumNodes(), g.NumEdges())
	}
	stronglyConnected(t, g)
	if s := oneWayShare(g); s < 0.1 {
		t.Errorf("one-way edge share %.2f: one-way rules not applied?", s)
	}
	sw, ne := g.Bounds()
	if sw.Lat < 41.06 || ne.Lat > 41.17 || sw.Lng < -8.68 || ne.Lng > -8.48 {
		t.Errorf("bounds %v %v outside the extract", sw, ne)
	}
	if ms := g.MaxSpeed(); ms < 15 || ms > 40 {
		t.Errorf("max speed %.1f m/s implausible", ms)
	}
	// Roundabouts and motorways are one-way; a street tagged oneway=yes has
	// no reverse twin. Count classes to make sure speeds come from the tags.
	classes := map[road.RoadClass]int{}
	for e := 0; e < g.NumEdges(); e++ {
		classes[g.Edge(road.EdgeID(e)).Class]++
	}
	for _, c := range []road.RoadClass{road.ClassPrimary, road.ClassSecondary, road.ClassResidential} {
		if classes[c] == 0 {
			t.Errorf("no %v edges", c)
		}
	}
}

func TestLoadOSMRejectsGarbage(t *testing.T) {
	if _, err := road.LoadOSM(bytes.NewReader([]byte("not a pbf"))); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestParseMaxSpeed(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"50", 50 / 3.6, true},
		{"50 km/h", 50 / 3.6, true},
		{"30 mph", 30 * 1609.344 / 3600, true},
		{"PT:urban", 50 / 3.6, true},
		{"walk", 10 / 3.6, true},
		{"none", 0, false},
		{"", 0, false},
		{"-5", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := road.ParseMaxSpeed(tc.in)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("ParseMaxSpeed(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

var porto = geo.Point{Lat: 41.1496, Lng: -8.6109}

func TestSyntheticCity(t *testing.T) {
	a := road.SyntheticCity(7, porto)
	b := road.SyntheticCity(7, porto)
	c := road.SyntheticCity(8, porto)
	t.Run("deterministic", func(t *testing.T) {
		if a.NumNodes() != b.NumNodes() || a.NumEdges() != b.NumEdges() || !bytes.Equal(a.GeoJSON(), b.GeoJSON()) {
			t.Fatal("same seed gave different cities")
		}
		for i := 0; i < a.NumNodes(); i++ {
			if a.Node(road.NodeID(i)) != b.Node(road.NodeID(i)) {
				t.Fatalf("node %d differs", i)
			}
		}
		if bytes.Equal(a.GeoJSON(), c.GeoJSON()) {
			t.Fatal("different seeds gave the same city")
		}
	})
	t.Run("connected", func(t *testing.T) {
		if a.NumNodes() < 800 {
			t.Fatalf("only %d nodes", a.NumNodes())
		}
		stronglyConnected(t, a)
	})
	t.Run("shape", func(t *testing.T) {
		if s := oneWayShare(a); s < 0.05 || s > 0.5 {
			t.Errorf("one-way share %.2f", s)
		}
		sw, ne := a.Bounds()
		if d := geo.Distance(sw, ne); d < 5000 || d > 8000 {
			t.Errorf("diagonal %.0f m", d)
		}
		classes := map[road.RoadClass]bool{}
		for e := 0; e < a.NumEdges(); e++ {
			classes[a.Edge(road.EdgeID(e)).Class] = true
		}
		if !classes[road.ClassSecondary] || !classes[road.ClassResidential] {
			t.Errorf("want arterials and local streets, got %v", classes)
		}
	})
}

func TestGeoJSON(t *testing.T) {
	g := road.SyntheticCity(1, porto)
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Properties struct {
				Class  string `json:"class"`
				Oneway bool   `json:"oneway"`
			} `json:"properties"`
			Geometry struct {
				Type        string       `json:"type"`
				Coordinates [][2]float64 `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(g.GeoJSON(), &fc); err != nil {
		t.Fatal(err)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) < 30 {
		t.Fatalf("type %q, %d features", fc.Type, len(fc.Features))
	}
	oneway, pts := 0, 0
	for _, f := range fc.Features {
		if f.Geometry.Type != "LineString" || len(f.Geometry.Coordinates) < 2 {
			t.Fatalf("bad geometry %+v", f.Geometry)
		}
		for _, c := range f.Geometry.Coordinates {
			pts++
			if math.Abs(c[0]*1e5-math.Round(c[0]*1e5)) > 1e-6 || math.Abs(c[1]-porto.Lat) > 0.1 {
				t.Fatalf("coordinate %v not rounded or out of place (want [lng,lat])", c)
			}
		}
		if f.Properties.Oneway {
			oneway++
		}
	}
	if oneway == 0 {
		t.Error("no one-way feature")
	}
	// Simplification: straight arterials collapse to their end points.
	if pts >= g.NumNodes()*2 {
		t.Errorf("%d coordinates for %d nodes: not simplified", pts, g.NumNodes())
	}
}

// Street names reach the GeoJSON (the rider page's addresses come from
// them), JSON-escaped; unnamed roads carry no name.
func TestGeoJSONNames(t *testing.T) {
	type props struct {
		Name *string `json:"name"`
	}
	names := func(t *testing.T, g *road.Graph) []*string {
		t.Helper()
		var fc struct {
			Features []struct {
				Properties props `json:"properties"`
			} `json:"features"`
		}
		if err := json.Unmarshal(g.GeoJSON(), &fc); err != nil {
			t.Fatal(err)
		}
		out := make([]*string, len(fc.Features))
		for i, f := range fc.Features {
			out[i] = f.Properties.Name
		}
		return out
	}
	t.Run("built ways", func(t *testing.T) {
		a, b, c := porto, geo.Offset(porto, 90, 200), geo.Offset(porto, 90, 400)
		g := road.BuildGraph([]geo.Point{a, b, c}, []road.Way{
			{Nodes: []int{0, 1}, Class: road.ClassResidential, Forward: true, Backward: true, Name: `Rua "da" Alegria\\`},
			{Nodes: []int{1, 2}, Class: road.ClassResidential, Forward: true, Backward: true},
		})
		got := names(t, g)
		if len(got) != 2 || got[0] == nil || *got[0] != `Rua "da" Alegria\\` || got[1] != nil {
			t.Fatalf("names %v", got)
		}
	})
	t.Run("porto", func(t *testing.T) {
		named := 0
		all := names(t, mustLoadPorto(t))
		for _, n := range all {
			if n != nil && *n != "" {
				named++
			}
		}
		if named < len(all)/2 {
			t.Errorf("%d of %d Porto roads named, want most", named, len(all))
		}
	})
}

func TestGeoJSONPortoSize(t *testing.T) {
	g := mustLoadPorto(t)
	n := len(g.GeoJSON())
	if n > 1<<20 {
		t.Errorf("roads.geojson is %d bytes, want < 1 MiB", n)
	}
	t.Logf("porto roads.geojson: %d bytes", n)
}

func TestSnap(t *testing.T) {
	g := road.SyntheticCity(3, porto)
	rng := rand.New(rand.NewPCG(1, 2))
	t.Run("near an edge", func(t *testing.T) {
		for i := 0; i < 200; i++ {
			e := road.EdgeID(rng.IntN(g.NumEdges()))
			ed := g.Edge(e)
			a, b := g.Node(ed.From), g.Node(ed.To)
			mid := geo.Point{Lat: (a.Lat + b.Lat) / 2, Lng: (a.Lng + b.Lng) / 2}
			p := geo.Offset(mid, geo.Bearing(a, b)+90, 3)
			s, ok := g.Snap(p)
			if !ok {
				t.Fatalf("%v not snapped", p)
			}
			if s.DistM > 3.2 {
				t.Fatalf("snap of a point 3 m off edge %d is %.2f m away (edge %d)", e, s.DistM, s.Edge)
			}
		}
	})
	t.Run("matches brute force", func(t *testing.T) {
		sw, ne := g.Bounds()
		for i := 0; i < 300; i++ {
			p := geo.Point{Lat: sw.Lat + rng.Float64()*(ne.Lat-sw.Lat), Lng: sw.Lng + rng.Float64()*(ne.Lng-sw.Lng)}
			s, ok := g.Snap(p)
			if !ok {
				t.Fatalf("%v inside the city not snapped", p)
			}
			best := math.Inf(1)
			for e := 0; e < g.NumEdges(); e++ {
				ed := g.Edge(road.EdgeID(e))
				best = math.Min(best, pointSegM(p, g.Node(ed.From), g.Node(ed.To)))
			}
			if math.Abs(s.DistM-best) > 0.5 {
				t.Fatalf("snap %v: %.2f m, brute force %.2f m", p, s.DistM, best)
			}
			ed := g.Edge(s.Edge)
			if d := pointSegM(s.Point, g.Node(ed.From), g.Node(ed.To)); d > 0.1 {
				t.Fatalf("snapped point %.2f m off its edge", d)
			}
		}
	})
	t.Run("far away", func(t *testing.T) {
		if _, ok := g.Snap(geo.Offset(porto, 45, 20000)); ok {
			t.Fatal("point 20 km away snapped")
		}
		if _, ok := g.Snap(geo.Point{Lat: math.NaN()}); ok {
			t.Fatal("NaN snapped")
		}
	})
}

// pointSegM: distance from p to segment ab in a tangent plane centred on p
// (independent of the graph's own projection).
func pointSegM(p, a, b geo.Point) float64 {
	k := geo.EarthRadiusM * math.Pi / 180
	kx := k * math.Cos(p.Lat*math.Pi/180)
	ax, ay := (a.Lng-p.Lng)*kx, (a.Lat-p.Lat)*k
	bx, by := (b.Lng-p.Lng)*kx, (b.Lat-p.Lat)*k
	dx, dy := bx-ax, by-ay
	t := 0.0
	if l2 := dx*dx + dy*dy; l2 > 0 {
		t = math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l2))
	}
	return math.Hypot(ax+t*dx, ay+t*dy)
}

// square: 0=(SW) 1=(SE) 2=(NE) 3=(NW), 200 m sides; 0→1 one-way.
func square() *road.Graph {
	c := porto
	pts := []geo.Point{c, geo.Offset(c, 90, 200), geo.Offset(geo.Offset(c, 90, 200), 0, 200), geo.Offset(c, 0, 200)}
	return road.BuildGraph(pts, []road.Way{
		{Nodes: []int{0, 1}, Class: road.ClassResidential, Forward: true},
		{Nodes: []int{1, 2, 3, 0}, Class: road.ClassResidential, Forward: true, Backward: true},
	})
}

func TestRouteOneWay(t *testing.T) {
	g := square()
	a := geo.Offset(g.Node(0), 90, 50) // on the one-way 0→1, near 0
	b := geo.Offset(g.Node(0), 90, 150)
	fwd, err := g.Route(a, b)
	if err != nil {
		t.Fatal(err)
	}
	back, err := g.Route(b, a)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(fwd.Meters-100) > 1 {
		t.Errorf("with the flow: %.1f m, want 100", fwd.Meters)
	}
	// Against the flow: continue to 1, around 2, 3, 0, then 50 m: 700 m.
	if math.Abs(back.Meters-700) > 2 {
		t.Errorf("against the flow: %.1f m, want 700 (around the block)", back.Meters)
	}
	if back.Seconds <= fwd.Seconds*5 {
		t.Errorf("against the flow %.0f s vs %.0f s", back.Seconds, fwd.Seconds)
	}
}

func TestRouteUnreachable(t *testing.T) {
	c := porto
	pts := []geo.Point{c, geo.Offset(c, 90, 300), geo.Offset(c, 90, 600)}
	// A dead-end one-way chain: 0→1→2 and nothing back.
	g := road.BuildGraph(pts, []road.Way{{Nodes: []int{0, 1, 2}, Class: road.ClassPrimary, Forward: true}})
	_, err := g.Route(geo.Offset(c, 90, 500), geo.Offset(c, 90, 100))
	if !errors.Is(err, road.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if _, err := g.Route(geo.Offset(c, 90, 100), geo.Offset(c, 90, 500)); err != nil {
		t.Fatalf("forward: %v", err)
	}
	if _, err := g.Route(geo.Offset(c, 0, 50000), c); !errors.Is(err, road.ErrOffGraph) {
		t.Fatalf("off graph: %v", err)
	}
}

func BenchmarkSnapPorto(b *testing.B) {
	g := mustLoadPorto(b)
	rng := rand.New(rand.NewPCG(1, 1))
	sw, ne := g.Bounds()
	pts := make([]geo.Point, 1024)
	for i := range pts {
		pts[i] = geo.Point{Lat: sw.Lat + rng.Float64()*(ne.Lat-sw.Lat), Lng: sw.Lng + rng.Float64()*(ne.Lng-sw.Lng)}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		g.Snap(pts[i%len(pts)])
	}
}

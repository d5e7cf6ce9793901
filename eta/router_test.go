package eta_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/eta/edgespeed"
	"github.com/hextrack/hextrack/eta/mapmatch"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
	"github.com/hextrack/hextrack/internal/shareddata"
)

var portoCenter = geo.Point{Lat: 41.1496, Lng: -8.6109}

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

// trainRandom feeds the model random speeds over the graph's cells so edge
// weights are not just free flow.
func trainRandom(m *eta.SpeedModel, r *eta.Router, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 9))
	for _, c := range r.Cells() {
		if rng.IntN(3) == 0 {
			continue
		}
		for b := 0; b < eta.Buckets; b++ {
			for k := 0; k < eta.MinBucketCount; k++ {
				m.Add(eta.Observation{Cell: c, Bucket: b, SpeedMS: 2 + rng.Float64()*15})
			}
		}
	}
}

// dijkstra is a plain textbook Dijkstra from node s, independent of the
// router's code.
func dijkstra(g *road.Graph, w []float32, s road.NodeID) []float64 {
	dist := make([]float64, g.NumNodes())
	for i := range dist {
		dist[i] = math.Inf(1)
	}
	done := make([]bool, g.NumNodes())
	dist[s] = 0
	type item struct {
		d float64
		n road.NodeID
	}
	pq := []item{{0, s}}
	for len(pq) > 0 {
		i := slices.IndexFunc(pq, func(it item) bool {
			return it.d == slices.MinFunc(pq, func(a, b item) int { return cmpF(a.d, b.d) }).d
		})
		it := pq[i]
		pq = slices.Delete(pq, i, i+1)
		if done[it.n] {
			continue
		}
		done[it.n] = true
		lo, hi := g.OutEdges(it.n)
		for e := lo; e < hi; e++ {
			v := g.Edge(e).To
			if d := it.d + float64(w[e]); d < dist[v] {
				dist[v] = d
				pq = append(pq, item{d, v})
			}
		}
	}
	return dist
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestRouterMatchesDijkstra(t *testing.T) {
	graphs := map[string]func(testing.TB) *road.Graph{
		"synthetic": func(testing.TB) *road.Graph { return road.SyntheticCity(5, portoCenter) },
		"porto":     mustLoadPorto,
	}
	for name, load := range graphs {
		t.Run(name, func(t *testing.T) {
			g := load(t)
			m := eta.NewSpeedModel(eta.SpeedConfig{})
			r := eta.NewRouter(g, m)
			trainRandom(m, r, 1)
			r.Refresh() // else the weights could change between Weights and RouteSnapped
			at := time.Date(2024, 5, 6, 8, 30, 0, 0, time.UTC)
			w, _ := r.Weights(at)
			rng := rand.New(rand.NewPCG(2, 3))
			for i := 0; i < 5; i++ {
				s := road.NodeID(rng.IntN(g.NumNodes()))
				dist := dijkstra(g, w, s)
				for j := 0; j < 20; j++ {
					d := road.NodeID(rng.IntN(g.NumNodes()))
					route, err := r.RouteSnapped(g.NodeSnap(s), g.NodeSnap(d), at)
					if err != nil {
						t.Fatalf("%d→%d: %v", s, d, err)
					}
					if math.Abs(route.Seconds-dist[d]) > 1e-3*math.Max(1, dist[d]) {
						t.Fatalf("%d→%d: A* %.4f s, Dijkstra %.4f s", s, d, route.Seconds, dist[d])
					}
					// The reported edges account for the duration: the inner
					// edges fully, the end edges partly.
					inner, all := 0.0, 0.0
					for k, e := range route.Edges {
						all += float64(w[e])
						if k > 0 && k < len(route.Edges)-1 {
							inner += float64(w[e])
						}
					}
					if route.Seconds < inner-1e-3 || route.Seconds > all+1e-3 {
						t.Fatalf("%d→%d: route %.3f s outside its edges' [%.3f, %.3f]", s, d, route.Seconds, inner, all)
					}
				}
			}
		})
	}
}

// square: 0=(SW) 1=(SE) 2=(NE) 3=(NW), 200 m sides; 0→1 one-way.
func square() *road.Graph {
	c := portoCenter
	pts := []geo.Point{c, geo.Offset(c, 90, 200), geo.Offset(geo.Offset(c, 90, 200), 0, 200), geo.Offset(c, 0, 200)}
	return road.BuildGraph(pts, []road.Way{
		{Nodes: []int{0, 1}, Class: road.ClassResidential, Forward: true},
		{Nodes: []int{1, 2, 3, 0}, Class: road.ClassResidential, Forward: true, Backward: true},
	})
}

func TestRouterOneWay(t *testing.T) {
	g := square()
	r := eta.NewRouter(g, nil)
	ctx := context.Background()
	a := geo.Offset(g.Node(0), 90, 50)
	b := geo.Offset(g.Node(0), 90, 150)
	with, err := r.Route(ctx, a, b, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	against, err := r.Route(ctx, b, a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(with.Meters-100) > 1 || math.Abs(against.Meters-700) > 2 {
		t.Fatalf("with the flow %.0f m (want 100), against %.0f m (want 700, around the block)", with.Meters, against.Meters)
	}
	// The geometry goes around: it visits the far corner.
	far := g.Node(2)
	if !slices.ContainsFunc(against.Path, func(p geo.Point) bool { return geo.Distance(p, far) < 1 }) {
		t.Fatalf("path against the one-way does not go round the block: %v", against.Path)
	}
}

func TestRouterUnreachable(t *testing.T) {
	c := portoCenter
	pts := []geo.Point{c, geo.Offset(c, 90, 300), geo.Offset(c, 90, 600)}
	g := road.BuildGraph(pts, []road.Way{{Nodes: []int{0, 1, 2}, Class: road.ClassPrimary, Forward: true}})
	r := eta.NewRouter(g, nil)
	done := make(chan error, 1)
	go func() {
		_, err := r.Route(context.Background(), geo.Offset(c, 90, 500), geo.Offset(c, 90, 100), time.Now())
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, road.ErrUnreachable) {
			t.Fatalf("err = %v, want road.ErrUnreachable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("unreachable route did not return")
	}
	est := eta.NewEstimator(nil, r)
	if _, err := est.Estimate(context.Background(), geo.Offset(c, 90, 500), geo.Offset(c, 90, 100)); !errors.Is(err, road.ErrUnreachable) {
		t.Fatalf("estimator: %v, want road.ErrUnreachable", err)
	}
}

func TestRouterLearnedSpeedsChangeRoute(t *testing.T) {
	g := road.SyntheticCity(2, portoCenter)
	m := eta.NewSpeedModel(eta.SpeedConfig{})
	r := eta.NewRouter(g, m)
	sw, ne := g.Bounds()
	a, b := geo.Point{Lat: sw.Lat + 0.005, Lng: sw.Lng + 0.005}, geo.Point{Lat: ne.Lat - 0.005, Lng: ne.Lng - 0.005}
	at := time.Date(2024, 5, 6, 12, 0, 0, 0, time.UTC)
	before, err := r.Route(context.Background(), a, b, at)
	if err != nil {
		t.Fatal(err)
	}
	// Every cell crawls at 2 m/s, all day.
	for _, c := range r.Cells() {
		m.Add(eta.Observation{Cell: c, Bucket: eta.BucketOf(at), SpeedMS: 2})
	}
	w, _ := r.Weights(at) // the model changed: weights rebuild (at most once a second)
	_ = w
	time.Sleep(1100 * time.Millisecond)
	after, err := r.Route(context.Background(), a, b, at)
	if err != nil {
		t.Fatal(err)
	}
	if after.Seconds < before.Seconds*1.5 {
		t.Fatalf("slow traffic learned, yet %.0f s → %.0f s", before.Seconds, after.Seconds)
	}
}

// TestRouterEdgeSpeeds: with an edge-speed table the router's weights are
// each driven edge's learned time, the city's ratio on edges never driven
// (no cell learned anything here), and a slow edge is routed around; a
// table learned on another graph is refused.
func TestRouterEdgeSpeeds(t *testing.T) {
	g := road.SyntheticCity(2, portoCenter)
	r := eta.NewRouter(g, eta.NewSpeedModel(eta.SpeedConfig{}))
	at := time.Date(2024, 5, 6, 9, 0, 0, 0, time.UTC)
	ff := g.FreeFlowSeconds()
	a, b := g.Node(0), g.Node(road.NodeID(g.NumNodes()-1))
	before, err := r.Route(context.Background(), a, b, at)
	if err != nil {
		t.Fatal(err)
	}
	slow := before.Edges[len(before.Edges)/2] // a middle edge of the route
	l := edgespeed.NewLearner(g, eta.Buckets, 0)
	ratio := func(e road.EdgeID) float64 {
		if e == slow {
			return 9
		}
		return 1.5
	}
	for _, e := range before.Edges {
		ed := g.Edge(e)
		for range 50 {
			l.Add(mapmatch.Hop{Seconds: ratio(e) * float64(ff[e]), Meters: ed.LengthM, Spans: []mapmatch.Span{{Edge: e, To: 1}}}, eta.BucketOf(at))
		}
	}
	if !r.SetEdgeSpeeds(l.Table()) {
		t.Fatal("table refused on its own graph")
	}
	w, _ := r.Weights(at)
	city, _ := l.Table().Global(eta.BucketOf(at))
	unseen := road.EdgeID(-1)
	for e := range road.EdgeID(g.NumEdges()) {
		if !slices.Contains(before.Edges, e) {
			unseen = e
			break
		}
	}
	if got := float64(w[slow]) / float64(ff[slow]); math.Abs(got-9) > 0.5 {
		t.Errorf("slow edge: %.2f × free flow, want ≈ 9", got)
	}
	if got := float64(w[unseen]) / float64(ff[unseen]); math.Abs(got-city) > 0.01 {
		t.Errorf("edge never driven: %.3f × free flow, want the city's %.3f", got, city)
	}
	after, err := r.Route(context.Background(), a, b, at)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(after.Edges, slow) {
		t.Errorf("the route still drives the edge learned at 9 × free flow")
	}
	if r.SetEdgeSpeeds(edgespeed.NewLearner(road.SyntheticCity(3, portoCenter), eta.Buckets, 0).Table()) {
		t.Error("a table of another graph was installed")
	}
	if r.EdgeSpeeds() == nil {
		t.Error("refusing another graph's table dropped the installed one")
	}
}

func BenchmarkRoutePorto(b *testing.B) {
	g := mustLoadPorto(b)
	m := eta.NewSpeedModel(eta.SpeedConfig{})
	r := eta.NewRouter(g, m)
	trainRandom(m, r, 1)
	r.Refresh()
	rng := rand.New(rand.NewPCG(4, 4))
	pairs := make([][2]geo.Point, 512)
	for i := range pairs {
		pairs[i] = [2]geo.Point{g.RandomPoint(rng), g.RandomPoint(rng)}
	}
	ctx := context.Background()
	at := time.Date(2024, 5, 6, 8, 30, 0, 0, time.UTC)
	var lat []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p := pairs[i%len(pairs)]
		t0 := time.Now()
		if _, err := r.Route(ctx, p[0], p[1], at); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

package mapmatch_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hextrack/hextrack/eta/mapmatch"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
)

var porto = geo.Point{Lat: 41.15, Lng: -8.61}

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// walk drives path at speedMS, a fix every every, each moved by Gaussian
// noise of sigmaM metres.
func walk(path []geo.Point, speedMS float64, every time.Duration, sigmaM float64, rng *rand.Rand) []mapmatch.Fix {
	var out []mapmatch.Fix
	step := speedMS * every.Seconds()
	at, next := 0.0, 0.0 // metres driven at path[i], metres of the next fix
	for i := 1; i < len(path); i++ {
		seg := geo.Distance(path[i-1], path[i])
		for next <= at+seg {
			f := 0.0
			if seg > 0 {
				f = (next - at) / seg
			}
			p := geo.Point{Lat: path[i-1].Lat + (path[i].Lat-path[i-1].Lat)*f, Lng: path[i-1].Lng + (path[i].Lng-path[i-1].Lng)*f}
			p = geo.Offset(p, rng.Float64()*360, math.Abs(rng.NormFloat64())*sigmaM)
			out = append(out, mapmatch.Fix{Point: p, Time: t0.Add(time.Duration(next / speedMS * float64(time.Second)))})
			next += step
		}
		at += seg
	}
	return out
}

// routeMetres are the lengths of a route's edges but its first and last
// (which it drives only part of); matchMetres the metres a match's spans
// drove on each edge.
func routeMetres(g *road.Graph, r road.Route) map[road.EdgeID]float64 {
	out := map[road.EdgeID]float64{}
	for _, e := range r.Edges[1 : len(r.Edges)-1] {
		out[e] += g.Edge(e).LengthM
	}
	return out
}

func matchMetres(g *road.Graph, res mapmatch.Result) map[road.EdgeID]float64 {
	out := map[road.EdgeID]float64{}
	for _, h := range res.Hops {
		for _, s := range h.Spans {
			out[s.Edge] += (s.To - s.From) * g.Edge(s.Edge).LengthM
		}
	}
	return out
}

// TestMatchRecoversRoute drives random routes through the synthetic city
// (jittered grid, one-way streets), samples a fix every 15 s with GPS
// noise, and checks that the matched edges are the driven ones, in the
// driven direction: most of the route's length is on matched edges and
// little matched length is off the route.
func TestMatchRecoversRoute(t *testing.T) {
	g := road.SyntheticCity(1, porto)
	m := mapmatch.New(g, mapmatch.Config{})
	for _, tc := range []struct {
		name          string
		speedMS       float64
		every         time.Duration
		sigmaM        float64
		recall, false float64
	}{
		{"clean, dense", 8, 5 * time.Second, 0, 0.98, 0.05},
		{"noisy, 15 s (Porto)", 8, 15 * time.Second, 8, 0.97, 0.05},
		{"noisy, sparse", 10, 30 * time.Second, 10, 0.9, 0.08},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 1))
			var onRoute, routeLen, matched float64
			for range 30 {
				a, b := g.RandomPoint(rng), g.RandomPoint(rng)
				if geo.Distance(a, b) < 1000 {
					continue
				}
				r, err := g.Route(a, b)
				if err != nil {
					t.Fatal(err)
				}
				trail := walk(r.Path, tc.speedMS, tc.every, tc.sigmaM, rng)
				res := m.Match(trail)
				if res.Chains != 1 {
					t.Errorf("%d chains, want 1", res.Chains)
				}
				want, got := routeMetres(g, r), matchMetres(g, res)
				for e, l := range want {
					routeLen += l
					onRoute += math.Min(l, got[e])
				}
				for _, l := range got {
					matched += l
				}
			}
			recall := onRoute / routeLen
			falseShare := 1 - onRoute/matched
			t.Logf("route length on matched edges %.3f, matched length off the route %.3f", recall, falseShare)
			if recall < tc.recall || falseShare > tc.false {
				t.Errorf("recall %.3f (want ≥ %.2f), off-route %.3f (want ≤ %.2f)", recall, tc.recall, falseShare, tc.false)
			}
		})
	}
}

// TestMatchBreaksChain: a jump no car could drive in the time between two
// fixes ends the chain, a fix far from every road is left out, and a
// matched hop never spans the jump.
func TestMatchBreaksChain(t *testing.T) {
	g := road.SyntheticCity(1, porto)
	m := mapmatch.New(g, mapmatch.Config{})
	rng := rand.New(rand.NewPCG(3, 3))
	r1, err := g.Route(geo.Offset(porto, 270, 1500), geo.Offset(porto, 270, 300))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := g.Route(geo.Offset(porto, 90, 1200), geo.Offset(porto, 0, 1200))
	if err != nil {
		t.Fatal(err)
	}
	a := walk(r1.Path, 8, 10*time.Second, 3, rng)
	b := walk(r2.Path, 8, 10*time.Second, 3, rng)
	end := a[len(a)-1].Time
	off := mapmatch.Fix{Point: geo.Offset(porto, 180, 20_000), Time: end.Add(5 * time.Second)}
	trail := append(a, off)
	for _, f := range b { // 1.5 km away, 10 s later
		trail = append(trail, mapmatch.Fix{Point: f.Point, Time: end.Add(10*time.Second + f.Time.Sub(t0))})
	}
	res := m.Match(trail)
	if res.Chains != 2 {
		t.Fatalf("%d chains, want 2", res.Chains)
	}
	if got, want := len(res.Points), len(trail)-1; got != want {
		t.Errorf("%d points matched, want %d (all but the one off the map)", got, want)
	}
	for _, p := range res.Points {
		if p.Index == len(a) {
			t.Errorf("the fix 20 km off the map was matched: %+v", p)
		}
	}
	for _, h := range res.Hops {
		if res.Points[h.From].Chain != res.Points[h.To].Chain {
			t.Errorf("hop %+v crosses chains", h)
		}
		if h.Meters > 8*h.Seconds+200 {
			t.Errorf("hop of %.0f m in %.0f s", h.Meters, h.Seconds)
		}
	}
}

// BenchmarkMatch matches Porto-like trails (a fix every 15 s, 8 m of
// noise) through the synthetic city; fixes/s is what training pays.
func BenchmarkMatch(b *testing.B) {
	g := road.SyntheticCity(1, porto)
	m := mapmatch.New(g, mapmatch.Config{})
	rng := rand.New(rand.NewPCG(9, 9))
	var trails [][]mapmatch.Fix
	fixes := 0
	for len(trails) < 50 {
		a, c := g.RandomPoint(rng), g.RandomPoint(rng)
		r, err := g.Route(a, c)
		if err != nil || r.Meters < 1000 {
			continue
		}
		trails = append(trails, walk(r.Path, 8, 15*time.Second, 8, rng))
		fixes += len(trails[len(trails)-1])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, tr := range trails {
			m.Match(tr)
		}
	}
	b.ReportMetric(float64(fixes)*float64(b.N)/b.Elapsed().Seconds(), "fixes/s")
}

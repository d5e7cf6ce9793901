package zone_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/zone"
)

// benchIndex is 1,000 overlapping zones over the test city (randomZones)
// and points a driver would send there.
func benchIndex(b *testing.B) (*zone.Index, []geo.Point) {
	rng := rand.New(rand.NewPCG(19, 4))
	x := mustIndex(b, randomZones(b, rng, 1000)...)
	pts := make([]geo.Point, 4096)
	for i := range pts {
		pts[i] = geo.Point{Lat: city.s + rng.Float64()*(city.n-city.s), Lng: city.w + rng.Float64()*(city.e-city.w)}
	}
	return x, pts
}

// BenchmarkIndexAt: the zones at a point, among 1,000.
func BenchmarkIndexAt(b *testing.B) {
	x, pts := benchIndex(b)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		n += len(x.At(pts[i%len(pts)]))
	}
	b.ReportMetric(float64(n)/float64(b.N), "zones/op")
}

// BenchmarkIndexNear: the ingest path's filter.
func BenchmarkIndexNear(b *testing.B) {
	x, pts := benchIndex(b)
	from := make([]geo.Cell, len(pts))
	for i, p := range pts {
		from[i] = geo.CellOf(geo.Offset(p, 90, 50), geo.ResIndex)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		x.Near(from[i%len(pts)], pts[i%len(pts)])
	}
}

// BenchmarkStep: one fix through the transition function, 50 m moves.
func BenchmarkStep(b *testing.B) {
	x, pts := benchIndex(b)
	var s zone.State
	t := time.Unix(0, 0)
	p := pts[0]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p = geo.Offset(p, float64(i%360), 50)
		if p.Lat < city.s || p.Lat > city.n || p.Lng < city.w || p.Lng > city.e {
			p = pts[i%len(pts)]
		}
		t = t.Add(5 * time.Second)
		s, _ = zone.Step(x, s, "d", zone.Fix{Pos: p, TS: t})
	}
}

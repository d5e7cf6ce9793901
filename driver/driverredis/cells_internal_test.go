package driverredis

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/hextrack/hextrack/geo"
)

// TestCellDisk: every point of a cell's disk is in that cell, for cells
// all over the globe, the 12 res-9 pentagons and their neighbors included;
// and the disk is large enough to serve a batch (tens of meters).
func TestCellDisk(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var centers []geo.Point
	for range 3000 {
		centers = append(centers, geo.Point{Lat: r.Float64()*170 - 85, Lng: r.Float64()*360 - 180})
	}
	pents, err := h3.Pentagons(geo.ResIndex)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pents {
		ll, _ := h3.CellToLatLng(p)
		centers = append(centers, geo.Point{Lat: ll.Lat, Lng: ll.Lng})
		// A neighbor's center, where cells are most distorted.
		ring, _ := p.GridDisk(1)
		for _, c := range ring {
			ll, _ := h3.CellToLatLng(c)
			centers = append(centers, geo.Point{Lat: ll.Lat + 1e-4, Lng: ll.Lng - 1e-4})
		}
	}
	centers = append(centers, geo.Point{Lat: 41.15, Lng: -8.61}, geo.Point{Lat: 0.0001, Lng: 179.9999}, geo.Point{Lat: -33.9, Lng: 151.2})
	with := 0
	minR := math.Inf(1)
	for _, p0 := range centers {
		d := newCellDisk(p0)
		if d.cell != geo.CellOf(p0, geo.ResIndex) {
			t.Fatalf("disk of %v: cell %v, want %v", p0, d.cell, geo.CellOf(p0, geo.ResIndex))
		}
		if d.r2 == 0 {
			continue
		}
		with++
		rad := math.Sqrt(d.r2)
		minR = min(minR, rad)
		for k := range 60 {
			// On the rim (the worst case) and inside.
			dist := rad * 0.99999
			if k%3 == 0 {
				dist = rad * r.Float64()
			}
			q := geo.Offset(d.center, r.Float64()*360, dist)
			if got := d.cellOf(q); got != d.cell {
				t.Fatalf("point %v in the disk of %v: disk says %v", q, d.cell, got)
			}
			if want := geo.CellOf(q, geo.ResIndex); want != d.cell {
				t.Fatalf("point %v at %.1f m of the center of %v (disk radius %.1f m) is in %v", q, dist, d.cell, rad, want)
			}
		}
	}
	if with < len(centers)*9/10 || minR < 30 {
		t.Fatalf("%d of %d cells have a disk, smallest radius %.1f m", with, len(centers), minR)
	}
	t.Logf("%d of %d cells with a disk, smallest radius %.1f m", with, len(centers), minR)

	// The polygon test: points around the center it accepts are in the
	// cell; and it accepts nearly every point of the cell.
	var inCell, accepted int
	for _, p0 := range centers {
		d := newCellDisk(p0)
		if d.r2 == 0 {
			continue
		}
		for range 100 {
			q := geo.Offset(d.center, r.Float64()*360, 250*math.Sqrt(r.Float64()))
			x, y, ok := d.local(q)
			want := geo.CellOf(q, geo.ResIndex)
			if want == d.cell {
				inCell++
			}
			if ok && d.inPoly(x, y) {
				accepted++
				if want != d.cell {
					t.Fatalf("point %v (%.1f, %.1f m) accepted in %v, H3 says %v", q, x, y, d.cell, want)
				}
			}
		}
	}
	if accepted < inCell*95/100 {
		t.Fatalf("the polygon test accepts %d of %d points in their cell", accepted, inCell)
	}
	t.Logf("the polygon test accepts %d of %d points in their cell", accepted, inCell)
}

// TestCellDiskFollowsBatch: a disk moving with a driver gives H3's cell for
// every fix.
func TestCellDiskFollowsBatch(t *testing.T) {
	var d cellDisk
	p := geo.Point{Lat: 41.1496, Lng: -8.6109}
	for i := range 5000 {
		q := geo.Offset(p, 37, float64(i)*3)
		if got, want := d.cellOf(q), geo.CellOf(q, geo.ResIndex); got != want {
			t.Fatalf("fix %d at %v: %v, want %v", i, q, got, want)
		}
	}
}

// BenchmarkBatchCells: the r9 cells of a 50-fix batch (a driver at 10 m/s
// reporting every second, with GPS jitter), per fix from H3 and through a
// cellDisk as Ingest does.
func BenchmarkBatchCells(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	batches := make([][]geo.Point, 256)
	for i := range batches {
		start := geo.Point{Lat: 41.07 + r.Float64()*0.09, Lng: -8.68 + r.Float64()*0.19}
		heading := r.Float64() * 360
		for k := range 50 {
			p := geo.Offset(start, heading, 10*float64(k))
			batches[i] = append(batches[i], geo.Point{Lat: p.Lat + (r.Float64()-0.5)*2e-5, Lng: p.Lng + (r.Float64()-0.5)*2e-5})
		}
	}
	b.Run("h3", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			for _, p := range batches[i%len(batches)] {
				_ = geo.CellOf(p, geo.ResIndex)
			}
		}
	})
	b.Run("disk", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var d cellDisk
			for _, p := range batches[i%len(batches)] {
				_ = d.cellOf(p)
			}
		}
	})
}

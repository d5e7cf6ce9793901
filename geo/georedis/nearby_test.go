package georedis_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
)

// TestNearbyGeoEdgeCases checks Nearby over the GEO sets against a linear
// scan where Redis' GEOSEARCH distances (from geohash cell centers, with
// its own Earth radius) order drivers differently from ours: drivers at one
// position, drivers on a circle a few centimeters apart in distance, a
// dense spot where most drivers have another status or are stale (the
// script reads past them), queries on both sides of a region's edge, and
// a limit larger than the members one GEOSEARCH returns.
func TestNearbyGeoEdgeCases(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustOpen(t)
	now := time.Now()
	x := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix, Now: func() time.Time { return now }})
	r := rand.New(rand.NewPCG(7, 8))
	type drv struct {
		p      geo.Point
		seen   time.Time
		status string
	}
	var ds []drv
	add := func(p geo.Point, seen time.Time, status string) {
		ds = append(ds, drv{p: round7(p), seen: seen, status: status})
	}
	fresh := now.Add(-time.Second)
	// 30 drivers at one position, 5 m from the center.
	same := geo.Offset(portoCenter, 10, 5)
	for i := 0; i < 30; i++ {
		add(same, fresh, "available")
	}
	// 60 on a circle of 40 m (distances a few cm apart: Redis' order differs).
	for i := 0; i < 60; i++ {
		add(geo.Offset(portoCenter, float64(i)*6, 40+r.Float64()*0.05), fresh, []string{"available", "on_trip"}[i%2])
	}
	// A dense spot 300 m away: 400 drivers within 10 m, 1 in 20 available
	// and fresh.
	spot := geo.Offset(portoCenter, 200, 300)
	for i := 0; i < 400; i++ {
		st, seen := "on_trip", fresh
		switch {
		case i%20 == 0:
			st = "available"
		case i%3 == 0:
			st, seen = "available", now.Add(-time.Hour)
		}
		add(geo.Offset(spot, r.Float64()*360, r.Float64()*10), seen, st)
	}
	// Along a region's edge: drivers on both sides.
	c6 := geo.CellOf(portoCenter, geo.ResRegion)
	b := c6.Boundary()
	edgeMid := geo.Point{Lat: (b[0].Lat + b[1].Lat) / 2, Lng: (b[0].Lng + b[1].Lng) / 2}
	for i := 0; i < 200; i++ {
		add(geo.Offset(edgeMid, r.Float64()*360, math.Abs(r.NormFloat64())*80), fresh, "available")
	}
	var us []geo.Update
	for i, d := range ds {
		us = append(us, geo.Update{ID: fmt.Sprintf("e%d", i), Pos: d.p, Seen: d.seen, Status: d.status})
	}
	if err := x.UpdateMany(ctx, us); err != nil {
		t.Fatal(err)
	}
	centers := []geo.Point{portoCenter, same, spot, geo.Offset(spot, 0, 3), edgeMid,
		geo.Offset(edgeMid, 0, 20), geo.Offset(edgeMid, 90, 20), geo.Offset(edgeMid, 180, 20), geo.Offset(edgeMid, 270, 20)}
	for i := 0; i < 20; i++ {
		centers = append(centers, geo.Offset(edgeMid, r.Float64()*360, r.Float64()*150))
	}
	for ci, c := range centers {
		for _, tc := range []struct {
			radius float64
			limit  int
			status string
		}{{3000, 20, "available"}, {3000, 20, ""}, {3000, 5, "on_trip"}, {45, 50, ""}, {1000, 300, "available"},
			{3000, 1, ""}, {40.02, 100, ""}} {
			name := fmt.Sprintf("center %d r=%v limit %d %q", ci, tc.radius, tc.limit, tc.status)
			hits, err := x.Nearby(ctx, geo.NearbyQuery{Center: c, RadiusM: tc.radius, Limit: tc.limit, Status: tc.status})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var want []float64
			for _, d := range ds {
				if now.Sub(d.seen) > x.Stale() || (tc.status != "" && d.status != tc.status) {
					continue
				}
				if dist := geo.Distance(c, d.p); dist <= tc.radius {
					want = append(want, dist)
				}
			}
			sort.Float64s(want)
			if len(want) > tc.limit {
				want = want[:tc.limit]
			}
			if len(hits) != len(want) {
				t.Fatalf("%s: %d hits, brute force %d", name, len(hits), len(want))
			}
			for i := range want {
				if math.Abs(hits[i].DistanceM-want[i]) > 1e-9 {
					t.Fatalf("%s: hit %d at %.6f m, brute force %.6f m", name, i, hits[i].DistanceM, want[i])
				}
			}
		}
	}
}

// round7 is p as the index stores it (7 decimals).
func round7(p geo.Point) geo.Point {
	lat, _ := strconv.ParseFloat(strconv.FormatFloat(p.Lat, 'f', 7, 64), 64)
	lng, _ := strconv.ParseFloat(strconv.FormatFloat(p.Lng, 'f', 7, 64), 64)
	return geo.Point{Lat: lat, Lng: lng}
}

package geo_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/geotest"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestIndexNearbyAndMove(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustOpen(t)
	now := time.Now()
	x := geo.NewIndex(rdb, geo.IndexConfig{Prefix: prefix, Stale: 30 * time.Second, Now: func() time.Time { return now }})

	near := geo.Offset(portoCenter, 45, 100)
	far := geo.Offset(portoCenter, 180, 2500)
	stale := geo.Offset(portoCenter, 90, 50)
	busy := geo.Offset(portoCenter, 270, 60)
	for _, u := range []geo.Update{
		{ID: "near", Pos: near, Seen: now, Status: "available"},
		{ID: "far", Pos: far, Seen: now, Status: "available"},
		{ID: "stale", Pos: stale, Seen: now.Add(-time.Minute), Status: "available"},
		{ID: "busy", Pos: busy, Seen: now, Status: "on_trip"},
	} {
		if err := x.Put(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	hits, err := x.Nearby(ctx, geo.NearbyQuery{Center: portoCenter, RadiusM: 5000, Limit: 10, Status: "available"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(hits); got != "near,far" {
		t.Fatalf("nearby = %s, want near,far", got)
	}
	hits, _ = x.Nearby(ctx, geo.NearbyQuery{Center: portoCenter, RadiusM: 1000, Limit: 10, Status: "available"})
	if got := ids(hits); got != "near" {
		t.Fatalf("nearby 1km = %s, want near", got)
	}
	hits, _ = x.Nearby(ctx, geo.NearbyQuery{Center: portoCenter, RadiusM: 5000, Limit: 1})
	if got := ids(hits); got != "busy" {
		t.Fatalf("limit 1 without a status filter = %s, want busy (60 m)", got)
	}
	// Move "near" across regions: it must leave its old cell and region.
	moved := geo.Offset(portoCenter, 0, 30000)
	if err := x.Put(ctx, geo.Update{ID: "near", Prev: geo.CellOf(near, 9), Pos: moved, Seen: now.Add(time.Second), Status: "available"}); err != nil {
		t.Fatal(err)
	}
	if geo.CellOf(moved, 6) == geo.CellOf(near, 6) {
		t.Fatal("test setup: the move should cross regions")
	}
	hits, _ = x.Nearby(ctx, geo.NearbyQuery{Center: portoCenter, RadiusM: 5000, Limit: 10, Status: "available"})
	if got := ids(hits); got != "far" {
		t.Fatalf("after move nearby = %s, want far", got)
	}
	if n := countMemberships(t, ctx, rdb, prefix, "near"); n != 1 {
		t.Fatalf("driver is in %d cells after a move, want 1", n)
	}
	// An older fix arriving late does not move it back.
	if err := x.Put(ctx, geo.Update{ID: "near", Pos: near, Seen: now.Add(500 * time.Millisecond), Status: "available"}); err != nil {
		t.Fatal(err)
	}
	if n := countMemberships(t, ctx, rdb, prefix, "near"); n != 1 {
		t.Fatalf("driver is in %d cells after a late fix, want 1", n)
	}
	hits, _ = x.Nearby(ctx, geo.NearbyQuery{Center: moved, RadiusM: 500, Limit: 10})
	if got := ids(hits); got != "near" {
		t.Fatalf("nearby at the new place = %s, want near", got)
	}
	// Trim drops the stale driver.
	n, err := x.Trim(ctx, 30*time.Second)
	if err != nil || n < 1 {
		t.Fatalf("trim removed %d, err %v", n, err)
	}
	if c := countMemberships(t, ctx, rdb, prefix, "stale"); c != 0 {
		t.Fatalf("stale driver still in %d cells after trim", c)
	}
}

func ids(hs []geo.Hit) string {
	var s []string
	for _, h := range hs {
		s = append(s, h.ID)
	}
	return strings.Join(s, ",")
}

// countMemberships counts the cell sets under prefix that hold id.
func countMemberships(t *testing.T, ctx context.Context, rdb *redis.Client, prefix, id string) int {
	t.Helper()
	return len(geotest.CellsOf(ctx, t, rdb, prefix, id))
}

// TestNearbyMatchesBruteForce checks the pruned ring search against a
// linear scan on city-dense and sparse points: same drivers, same order.
func TestNearbyMatchesBruteForce(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustOpen(t)
	now := time.Now()
	x := geo.NewIndex(rdb, geo.IndexConfig{Prefix: prefix, Now: func() time.Time { return now }})
	r := rand.New(rand.NewPCG(3, 4))
	var pts []geo.Point
	var us []geo.Update
	for i := 0; i < 3000; i++ {
		var p geo.Point
		if i%3 == 0 {
			p = geo.Offset(portoCenter, r.Float64()*360, r.Float64()*8000) // sparse
		} else {
			p = geo.Offset(portoCenter, r.Float64()*360, math.Abs(r.NormFloat64())*300) // hotspot
		}
		pts = append(pts, p)
		us = append(us, geo.Update{ID: fmt.Sprintf("d%d", i), Pos: p, Seen: now, Status: "available"})
	}
	if err := x.UpdateMany(ctx, us); err != nil {
		t.Fatal(err)
	}
	for qi := 0; qi < 60; qi++ {
		c := geo.Offset(portoCenter, r.Float64()*360, r.Float64()*6000)
		for _, tc := range []struct {
			radius float64
			limit  int
		}{{3000, 20}, {500, 5}, {8000, 50}, {150, 3}, {25000, 10}, {25000, 400}} {
			hits, err := x.Nearby(ctx, geo.NearbyQuery{Center: c, RadiusM: tc.radius, Limit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			var want []float64
			for _, p := range pts {
				if d := geo.Distance(c, p); d <= tc.radius {
					want = append(want, d)
				}
			}
			sort.Float64s(want)
			if len(want) > tc.limit {
				want = want[:tc.limit]
			}
			if len(hits) != len(want) {
				t.Fatalf("query %d r=%v: %d hits, brute force %d", qi, tc.radius, len(hits), len(want))
			}
			for i := range want {
				if math.Abs(hits[i].DistanceM-want[i]) > 0.01 {
					t.Fatalf("query %d r=%v: hit %d at %.2f m, brute force %.2f m", qi, tc.radius, i, hits[i].DistanceM, want[i])
				}
			}
		}
	}
}

package georedis_test

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
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/geotest"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestIndexNearbyAndMove(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustOpen(t)
	now := time.Now()
	x := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix, Stale: 30 * time.Second, Now: func() time.Time { return now }})

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
	if g := geoSetsOf(t, ctx, rdb, prefix, "near"); len(g) != 1 || g[0] != geo.CellOf(moved, geo.ResRegion).String() {
		t.Fatalf("driver is in the GEO sets of regions %v after a move, want only %s", g, geo.CellOf(moved, geo.ResRegion))
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
	if g := geoSetsOf(t, ctx, rdb, prefix, "stale"); len(g) != 0 {
		t.Fatalf("stale driver still in the GEO sets of %v after trim", g)
	}
}

// geoSetsOf returns the regions whose GEO set under prefix holds id.
func geoSetsOf(t *testing.T, ctx context.Context, rdb *redis.Client, prefix, id string) []string {
	t.Helper()
	var out []string
	iter := rdb.Scan(ctx, 0, prefix+"geo:*:g", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if _, err := rdb.ZScore(ctx, key, id).Result(); err == nil {
			out = append(out, key[strings.Index(key, "{")+1:strings.Index(key, "}")])
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNearbyPolar: positions beyond Redis GEO's latitudes are indexed (not
// in the GEO sets) and found by queries that reach them, which walk the
// cells; queries near the antimeridian do too.
func TestNearbyPolar(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustOpen(t)
	now := time.Now()
	x := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix, Now: func() time.Time { return now }})
	pole := geo.Point{Lat: 89.9, Lng: 10}
	edge := geo.Point{Lat: 85.0505, Lng: 10}
	date := geo.Point{Lat: 10, Lng: 179.9999}
	for i, p := range []geo.Point{pole, edge, date} {
		if err := x.Put(ctx, geo.Update{ID: fmt.Sprintf("p%d", i), Pos: p, Seen: now, Status: "available"}); err != nil {
			t.Fatalf("put %v: %v", p, err)
		}
	}
	for _, tc := range []struct {
		at   geo.Point
		want string
	}{
		{geo.Offset(pole, 0, 100), "p0"},
		{geo.Offset(edge, 180, 200), "p1"},
		{geo.Point{Lat: 10, Lng: -179.9999}, "p2"},
		{geo.Offset(date, 270, 500), "p2"},
	} {
		hits, err := x.Nearby(ctx, geo.NearbyQuery{Center: tc.at, RadiusM: 1000, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(hits); got != tc.want {
			t.Errorf("nearby %v = %q, want %s", tc.at, got, tc.want)
		}
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

// TestNearbyMatchesBruteForce checks Nearby, over the GEO sets and over the
// r9 cells, against a linear scan on city-dense and sparse points after
// moves inside and across cells and regions, with stale drivers and drivers
// of another status: same drivers, same order.
func TestNearbyMatchesBruteForce(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustOpen(t)
	now := time.Now()
	x := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix, Now: func() time.Time { return now }})
	r := rand.New(rand.NewPCG(3, 4))
	type drv struct {
		p      geo.Point
		seen   time.Time
		status string
	}
	var ds []drv
	var us []geo.Update
	for i := 0; i < 3000; i++ {
		var p geo.Point
		if i%3 == 0 {
			p = geo.Offset(portoCenter, r.Float64()*360, r.Float64()*8000) // sparse
		} else {
			p = geo.Offset(portoCenter, r.Float64()*360, math.Abs(r.NormFloat64())*300) // hotspot
		}
		d := drv{p: p, seen: now.Add(-2 * time.Second), status: "available"}
		switch {
		case i%10 == 1:
			d.status = "on_trip"
		case i%10 == 2:
			d.seen = now.Add(-time.Minute) // stale
		}
		ds = append(ds, d)
		us = append(us, geo.Update{ID: fmt.Sprintf("d%d", i), Pos: p, Seen: d.seen, Status: d.status})
	}
	if err := x.UpdateMany(ctx, us); err != nil {
		t.Fatal(err)
	}
	// Move every fourth driver: a few hundred meters (other r9 cells) or
	// kilometers (other regions); some stale drivers come back fresh.
	us = us[:0]
	for i := 0; i < len(ds); i += 4 {
		prev := geo.CellOf(ds[i].p, geo.ResIndex)
		dist := 50 + r.Float64()*400
		if i%8 == 0 {
			dist = 3000 + r.Float64()*9000
		}
		ds[i].p = geo.Offset(ds[i].p, r.Float64()*360, dist)
		ds[i].seen = now.Add(-time.Second)
		us = append(us, geo.Update{ID: fmt.Sprintf("d%d", i), Prev: prev, Pos: ds[i].p, Seen: ds[i].seen, Status: ds[i].status})
	}
	if err := x.UpdateMany(ctx, us); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T) {
		for qi := 0; qi < 60; qi++ {
			c := geo.Offset(portoCenter, r.Float64()*360, r.Float64()*6000)
			for _, tc := range []struct {
				radius float64
				limit  int
				status string
			}{{3000, 20, ""}, {3000, 20, "available"}, {500, 5, ""}, {8000, 50, "available"}, {150, 3, ""},
				{25000, 10, "on_trip"}, {25000, 400, ""}} {
				hits, err := x.Nearby(ctx, geo.NearbyQuery{Center: c, RadiusM: tc.radius, Limit: tc.limit, Status: tc.status})
				if err != nil {
					t.Fatal(err)
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
					t.Fatalf("query %d r=%v %q: %d hits, brute force %d", qi, tc.radius, tc.status, len(hits), len(want))
				}
				for i := range want {
					if math.Abs(hits[i].DistanceM-want[i]) > 0.01 {
						t.Fatalf("query %d r=%v %q: hit %d at %.2f m, brute force %.2f m", qi, tc.radius, tc.status, i, hits[i].DistanceM, want[i])
					}
				}
			}
		}
	}
	t.Run("geo", check)
	t.Run("cells", func(t *testing.T) {
		defer georedis.UseCellsForNearby()()
		check(t)
	})
}

var portoCenter = geo.Point{Lat: 41.1496, Lng: -8.6109}

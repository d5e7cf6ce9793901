package georedis

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/redistest"
)

// cityDense places n points in Porto as bench/cmd/benchrun does: 70%
// around 12 hotspots (Gaussian, σ 400 m), the rest uniform over the box.
func cityDense(n int, seed uint64) []geo.Point {
	const s, w, nn, e = 41.069, -8.677, 41.163, -8.486
	r := rand.New(rand.NewPCG(seed, 99))
	hot := make([]geo.Point, 12)
	for i := range hot {
		hot[i] = geo.Point{Lat: s + r.Float64()*(nn-s), Lng: w + r.Float64()*(e-w)}
	}
	out := make([]geo.Point, n)
	for i := range out {
		if r.Float64() < 0.7 {
			out[i] = geo.Offset(hot[r.IntN(len(hot))], r.Float64()*360, math.Abs(r.NormFloat64())*400)
		} else {
			out[i] = geo.Point{Lat: s + r.Float64()*(nn-s), Lng: w + r.Float64()*(e-w)}
		}
	}
	return out
}

// countHook counts round trips (pipelines and single commands) and the
// bulk strings of script replies.
type countHook struct{ trips, scripts, replies atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.trips.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.trips.Add(1)
		err := next(ctx, cmds)
		for _, c := range cmds {
			if c.Name() == "evalsha" {
				h.scripts.Add(1)
				if v, ok := c.(*redis.Cmd); ok {
					if s, ok := v.Val().([]any); ok {
						h.replies.Add(int64(len(s)))
					}
				}
			}
		}
		return err
	}
}

// BenchmarkNearbyCity is issue 11's nearby scenario without HTTP: 200,000
// drivers city-dense in Porto, limit 20, city-dense query points. It
// reports latency quantiles, round trips, scripts and reply elements per
// query, and the same quantiles of GEOSEARCH BYRADIUS 200 m doubling COUNT
// 20 on one GEO set of the same points (the bench's reference). A load
// measurement: run it under the bench lock.
func BenchmarkNearbyCity(b *testing.B) {
	ctx := context.Background()
	rdb, prefix := redistest.MustOpen(b)
	hook := &countHook{}
	rdb.AddHook(hook)
	now := time.Now()
	x := NewIndex(rdb, IndexConfig{Prefix: prefix, Stale: 30 * time.Minute})
	pts := cityDense(200000, 7)
	us := make([]geo.Update, 0, 1000)
	ref := prefix + "ref"
	for i, p := range pts {
		us = append(us, geo.Update{ID: "n" + strconv.Itoa(i), Pos: p, Seen: now, Status: "available"})
		if len(us) == cap(us) || i == len(pts)-1 {
			if err := x.UpdateMany(ctx, us); err != nil {
				b.Fatal(err)
			}
			pipe := rdb.Pipeline()
			for _, u := range us {
				pipe.GeoAdd(ctx, ref, &redis.GeoLocation{Name: u.ID, Longitude: u.Pos.Lng, Latitude: u.Pos.Lat})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
			us = us[:0]
		}
	}
	qs := cityDense(3300, 11)
	quantiles := func(b *testing.B, ds []time.Duration) {
		slices.Sort(ds)
		q := func(p float64) float64 {
			return float64(ds[min(len(ds)-1, int(math.Ceil(p*float64(len(ds))))-1)].Microseconds())
		}
		b.ReportMetric(q(0.5), "p50-µs")
		b.ReportMetric(q(0.99), "p99-µs")
	}
	b.Run("nearby", func(b *testing.B) {
		b.ReportAllocs()
		hook.trips.Store(0)
		hook.scripts.Store(0)
		hook.replies.Store(0)
		ds := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			q := qs[i%len(qs)]
			t := time.Now()
			hits, err := x.Nearby(ctx, geo.NearbyQuery{Center: q, RadiusM: 3000, Limit: 20, Status: "available"})
			ds = append(ds, time.Since(t))
			if err != nil || len(hits) != 20 {
				b.Fatalf("%d hits, %v", len(hits), err)
			}
		}
		quantiles(b, ds)
		b.ReportMetric(float64(hook.trips.Load())/float64(b.N), "trips/op")
		b.ReportMetric(float64(hook.scripts.Load())/float64(b.N), "scripts/op")
		b.ReportMetric(float64(hook.replies.Load())/float64(b.N), "replies/op")
	})
	b.Run("geosearch", func(b *testing.B) {
		ds := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			q := qs[i%len(qs)]
			t := time.Now()
			for r := 200.0; ; r *= 2 {
				res, err := rdb.GeoSearch(ctx, ref, &redis.GeoSearchQuery{Longitude: q.Lng, Latitude: q.Lat,
					Radius: r, RadiusUnit: "m", Sort: "ASC", Count: 20}).Result()
				if err != nil {
					b.Fatal(err)
				}
				if len(res) >= 20 || r >= 51200 {
					break
				}
			}
			ds = append(ds, time.Since(t))
		}
		quantiles(b, ds)
	})
	b.Run("ping", func(b *testing.B) {
		ds := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			t := time.Now()
			if err := rdb.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t))
		}
		quantiles(b, ds)
	})
}

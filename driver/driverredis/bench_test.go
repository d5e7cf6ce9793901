package driverredis_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
)

// portoBox is the Porto area of the shared OSM extract.
var portoBox = struct{ s, w, n, e float64 }{41.069, -8.677, 41.163, -8.486}

// cityDense places n points in Porto: 70% around 12 hotspots (Gaussian, σ
// 400 m), the rest uniform over the box — the shape of real supply.
func cityDense(n int, seed uint64) []geo.Point {
	r := rand.New(rand.NewPCG(seed, 99))
	hot := make([]geo.Point, 12)
	for i := range hot {
		hot[i] = geo.Point{Lat: portoBox.s + r.Float64()*(portoBox.n-portoBox.s), Lng: portoBox.w + r.Float64()*(portoBox.e-portoBox.w)}
	}
	out := make([]geo.Point, n)
	for i := range out {
		if r.Float64() < 0.7 {
			h := hot[r.IntN(len(hot))]
			out[i] = geo.Offset(h, r.Float64()*360, math.Abs(r.NormFloat64())*400)
		} else {
			out[i] = geo.Point{Lat: portoBox.s + r.Float64()*(portoBox.n-portoBox.s), Lng: portoBox.w + r.Float64()*(portoBox.e-portoBox.w)}
		}
	}
	return out
}

func benchService(b *testing.B) (*driverredis.Service, *georedis.Index) {
	rdb, prefix := redistest.MustOpen(b)
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
	return driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix}), idx
}

// BenchmarkIngest applies batches of 1 and 50 pings for 1,000 drivers moving
// through Porto, on real Redis.
func BenchmarkIngest(b *testing.B) {
	for _, batch := range []int{1, 50} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			svc, _ := benchService(b)
			ctx := context.Background()
			starts := cityDense(1000, 1)
			seqs := make([]atomic.Int64, len(starts))
			t0 := time.Now().Add(-time.Hour)
			var seq atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ps := make([]driver.DecodedPing, batch)
				for pb.Next() {
					i := int(seq.Add(1)) % len(starts)
					for k := range ps {
						s := seqs[i].Add(1)
						ps[k] = ping(geo.Offset(starts[i], 45, float64(s)*5), t0.Add(time.Duration(s)*time.Second), s)
					}
					if _, err := svc.Ingest(ctx, fmt.Sprintf("drv%d", i), ps); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "pings/s")
		})
	}
}

// BenchmarkNearby queries limit 20 around random hotspot points with 50,000
// drivers placed city-dense in Porto, and reports p50/p99 latency.
func BenchmarkNearby(b *testing.B) {
	svc, idx := benchService(b)
	ctx := context.Background()
	const n = 50000
	pts := cityDense(n, 7)
	now := time.Now()
	us := make([]geo.Update, 0, 1000)
	for i, p := range pts {
		us = append(us, geo.Update{ID: fmt.Sprintf("d%d", i), Pos: p, Seen: now, Status: driver.StatusAvailable})
		if len(us) == cap(us) {
			if err := idx.UpdateMany(ctx, us); err != nil {
				b.Fatal(err)
			}
			us = us[:0]
		}
	}
	if err := idx.UpdateMany(ctx, us); err != nil {
		b.Fatal(err)
	}
	queries := cityDense(1024, 11)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		list, err := svc.Nearby(ctx, driver.NearbyQuery{Center: queries[i%len(queries)], RadiusM: 3000, Limit: 20})
		if err != nil {
			b.Fatal(err)
		}
		if len(list) == 0 {
			b.Fatal("no driver found")
		}
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

package driverredis_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
)

// limitedServices returns n driver services (n "nodes") sharing one Redis
// prefix, a ping bucket of rate/s and burst, and one settable clock.
func limitedServices(t *testing.T, n int, rate float64, burst, maxBatch int) ([]*driverredis.Service, func(time.Duration)) {
	t.Helper()
	rdb, prefix := redistest.MustOpen(t)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	var out []*driverredis.Service
	for range n {
		idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix, Now: now})
		out = append(out, driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix, Now: now,
			PingRate: rate, PingBurst: burst, Limits: driver.Limits{MaxBatch: maxBatch}}))
	}
	return out, func(d time.Duration) { clock.Add(int64(d)) }
}

func batch(t0 time.Time, from, n int) []driver.DecodedPing {
	ps := make([]driver.DecodedPing, n)
	for i := range ps {
		ps[i] = ping(geo.Offset(porto, 90, float64(from+i)), t0.Add(time.Duration(from+i)*100*time.Millisecond), int64(from+i+1))
	}
	return ps
}

func TestPingRateLimit(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"burst then refused with a retry hint, refilled at the rate", func(t *testing.T) {
			svcs, advance := limitedServices(t, 1, 5, 10, 10)
			svc := svcs[0]
			t0 := time.Now().Add(-time.Minute)
			for i := range 10 {
				mustIngest(t, svc, "d1", batch(t0, i, 1)...)
			}
			_, err := svc.Ingest(ctx, "d1", batch(t0, 10, 1))
			var rl *driver.RateLimitError
			if !errors.As(err, &rl) || !errors.Is(err, driver.ErrRateLimited) {
				t.Fatalf("11th ping: err %v, want a RateLimitError", err)
			}
			if rl.RetryAfter() <= 0 || rl.RetryAfter() > 200*time.Millisecond {
				t.Fatalf("retry after %v, want (0, 200ms] at 5/s", rl.RetryAfter())
			}
			advance(rl.RetryAfter())
			if res := mustIngest(t, svc, "d1", batch(t0, 10, 1)...); res.Accepted != 1 {
				t.Fatalf("after the wait: %+v", res)
			}
			// A refused ping was not applied: the driver's last seq is 11.
			st, err := svc.Get(ctx, "d1")
			if err != nil || st.LastSeq != 11 {
				t.Fatalf("state %+v %v, want last_seq 11", st, err)
			}
		}},
		{"an offline batch the size of the burst passes an idle bucket", func(t *testing.T) {
			svcs, advance := limitedServices(t, 1, 1, 0, 500) // burst: 2×500
			svc := svcs[0]
			t0 := time.Now().Add(-time.Hour)
			if res := mustIngest(t, svc, "d1", batch(t0, 0, 500)...); res.Accepted != 500 {
				t.Fatalf("first batch: %+v", res)
			}
			if res := mustIngest(t, svc, "d1", batch(t0, 500, 500)...); res.Accepted != 500 {
				t.Fatalf("second batch: %+v", res)
			}
			// The bucket is empty: a third batch costs its size, 500 s at 1/s.
			_, err := svc.Ingest(ctx, "d1", batch(t0, 1000, 500))
			var rl *driver.RateLimitError
			if !errors.As(err, &rl) || rl.RetryAfter() < 499*time.Second {
				t.Fatalf("third batch: %v, want a wait of ~500s", err)
			}
			advance(500 * time.Second)
			if res := mustIngest(t, svc, "d1", batch(t0, 1000, 500)...); res.Accepted != 500 {
				t.Fatalf("after refill: %+v", res)
			}
		}},
		{"the bucket is shared by every node", func(t *testing.T) {
			svcs, _ := limitedServices(t, 3, 1, 6, 3)
			t0 := time.Now().Add(-time.Minute)
			for i := range 6 {
				mustIngest(t, svcs[i%3], "d1", batch(t0, i, 1)...)
			}
			for i, svc := range svcs {
				if _, err := svc.Ingest(ctx, "d1", batch(t0, 6+i, 1)); !errors.Is(err, driver.ErrRateLimited) {
					t.Fatalf("node %d: %v, want rate limited", i, err)
				}
			}
		}},
		{"invalid pings cost too", func(t *testing.T) {
			svcs, _ := limitedServices(t, 1, 1, 3, 3)
			bad := driver.DecodedPing{Ping: driver.Ping{Pos: geo.Point{Lat: 95}, TS: time.Now(), Seq: 1}}
			for range 3 {
				if res := mustIngest(t, svcs[0], "d1", bad); len(res.Rejected) != 1 {
					t.Fatalf("bad ping: %+v", res)
				}
			}
			if _, err := svcs[0].Ingest(ctx, "d1", []driver.DecodedPing{bad}); !errors.Is(err, driver.ErrRateLimited) {
				t.Fatalf("4th bad ping: %v, want rate limited", err)
			}
			if _, err := svcs[0].Get(ctx, "d1"); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("invalid pings created driver state: %v", err)
			}
		}},
		{"drivers have separate buckets; a negative rate is unlimited", func(t *testing.T) {
			svcs, _ := limitedServices(t, 1, 1, 2, 2)
			t0 := time.Now().Add(-time.Minute)
			mustIngest(t, svcs[0], "d1", batch(t0, 0, 2)...)
			mustIngest(t, svcs[0], "d2", batch(t0, 0, 2)...)
			free, _ := limitedServices(t, 1, -1, 0, 2)
			for i := range 50 {
				mustIngest(t, free[0], "d1", batch(t0, 2*i, 2)...)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

package eta_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/geo"
)

// mustRedis connects to the shared Redis; tests get their own key prefix
// and delete their keys. Unreachable Redis fails under CI=true.
func mustRedis(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis unreachable (CI=true): %v", err)
		}
		tb.Skipf("redis unreachable: %v", err)
	}
	prefix := fmt.Sprintf("test:eta:%s:%x", strings.ReplaceAll(tb.Name(), "/", "_"), rand.Uint64())
	tb.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := rdb.Scan(ctx, 0, prefix+":*", 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return rdb, prefix
}

func TestSpeedStoreRoundTrip(t *testing.T) {
	rdb, prefix := mustRedis(t)
	ctx := context.Background()
	st := eta.NewSpeedStore(rdb, prefix, time.Hour)
	c := geo.CellOf(portoCenter, eta.SpeedRes)
	obs := []eta.Observation{{Cell: c, Bucket: 2, SpeedMS: 10}, {Cell: c, Bucket: 2, SpeedMS: 5}}
	stats, err := st.Apply(ctx, 0.1, obs)
	if err != nil {
		t.Fatal(err)
	}
	// Same arithmetic as the in-memory model: mean pace 0.15 s/m, n=2.
	want := map[int]float64{-1: 0.15, 2: 0.15}
	if len(stats) != 2 {
		t.Fatalf("stats %+v", stats)
	}
	for _, s := range stats {
		if s.Cell != c || math.Abs(s.Pace-want[s.Bucket]) > 1e-6 || s.N != 2 {
			t.Fatalf("stat %+v", s)
		}
	}
	key := st.Key(c.Parent(geo.ResRegion))
	if !strings.Contains(key, "{"+c.Parent(geo.ResRegion).String()+"}") {
		t.Fatalf("key %q has no region hash tag", key)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("TTL %v, want (0, 1h]", ttl)
	}
	loaded, err := st.Load(ctx, []geo.Cell{c.Parent(geo.ResRegion)})
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 2 || loaded[0].Pace != stats[0].Pace && loaded[0].Pace != stats[1].Pace {
		t.Fatalf("loaded %+v, applied %+v", loaded, stats)
	}
	// A second node's model picks the stored values up.
	m := eta.NewSpeedModel(eta.SpeedConfig{})
	f := eta.NewFeeder(m, st, eta.FeederConfig{})
	if err := f.LoadRegions(ctx, []geo.Cell{c.Parent(geo.ResRegion)}); err != nil {
		t.Fatal(err)
	}
	if v, learned := m.Speed(c, 0); !learned || math.Abs(v-1/0.15) > 1e-4 {
		t.Fatalf("loaded speed %v %v", v, learned)
	}
}

func TestFeederNeverBlocks(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := eta.NewSpeedModel(eta.SpeedConfig{})
	f := eta.NewFeeder(m, nil, eta.FeederConfig{QueueSize: 4, Registry: reg})
	a := fix(portoCenter, 0)
	b := fix(geo.Offset(portoCenter, 90, 150), 15*time.Second)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10; i++ {
			f.Offer(a, b)
		}
		f.Offer(a, a) // stationary
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Offer blocked on a full queue")
	}
	mf, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range mf {
		if fam.GetName() == "hextrack_eta_speed_observations_total" {
			for _, m := range fam.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if got["accepted"] != 4 || got["dropped"] != 6 || got["ignored"] != 1 {
		t.Fatalf("counters %v, want accepted 4, dropped 6, ignored 1", got)
	}
	f.Flush(context.Background())
	if v, learned := m.Speed(geo.CellOf(portoCenter, eta.SpeedRes), eta.BucketOf(t0)); !learned || math.Abs(v-10) > 0.05 {
		// The midpoint of the hop is 75 m east: same r8 cell for this centre.
		t.Fatalf("after flush: %v %v", v, learned)
	}
}

func TestFeederRunFlushesToRedis(t *testing.T) {
	rdb, prefix := mustRedis(t)
	st := eta.NewSpeedStore(rdb, prefix, time.Minute)
	m := eta.NewSpeedModel(eta.SpeedConfig{})
	f := eta.NewFeeder(m, st, eta.FeederConfig{FlushEvery: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	f.Offer(fix(portoCenter, 0), fix(geo.Offset(portoCenter, 90, 150), 15*time.Second))
	c := geo.CellOf(geo.Offset(portoCenter, 90, 75), eta.SpeedRes)
	key := st.Key(c.Parent(geo.ResRegion))
	deadline := time.Now().Add(3 * time.Second)
	for rdb.HLen(context.Background(), key).Val() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("batch never reached Redis")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, learned := m.Speed(c, eta.BucketOf(t0)); !learned || math.Abs(v-10) > 0.05 {
		t.Fatalf("model after flush: %v %v", v, learned)
	}
}

func TestAccuracyHistogram(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := eta.NewAccuracy(reg)
	a.Observe("dropoff", 10*time.Minute, 12*time.Minute)
	a.Observe("dropoff", 0, time.Minute) // no promise: ignored
	mf, err := reg.Gather()
	if err != nil || len(mf) != 2 {
		t.Fatalf("%d families (%v), want 2", len(mf), err)
	}
	for _, fam := range mf {
		h := fam.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 1 {
			t.Fatalf("%s: %d samples, want 1", fam.GetName(), h.GetSampleCount())
		}
		want := 1.2
		if fam.GetName() == "hextrack_eta_error_seconds" {
			want = 120
		}
		if math.Abs(h.GetSampleSum()-want) > 1e-9 {
			t.Fatalf("%s sum %v, want %v", fam.GetName(), h.GetSampleSum(), want)
		}
	}
}

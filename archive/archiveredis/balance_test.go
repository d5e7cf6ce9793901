package archiveredis_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/archiveredis"
	"github.com/hextrack/hextrack/feed/feedredis"
)

// holders returns how many shards each node holds the lease of (by the
// lease keys in Redis; "" counts free shards).
func (e *env) holders() map[string]int {
	out := map[string]int{}
	for s := range feedredis.ArchiveShards {
		out[e.rdb.Get(context.Background(), e.prefix+fmt.Sprintf("archive:lease:{s%d}", s)).Val()]++
	}
	return out
}

// waitSpread waits until nodes hold every shard, each at most per.
func (e *env) waitSpread(nodes []string, per int, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h := e.holders()
		ok, total := true, 0
		for _, n := range nodes {
			total += h[n]
			ok = ok && h[n] > 0 && h[n] <= per
		}
		if ok && total == feedredis.ArchiveShards {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("leases %v: want all %d shards spread over %v, at most %d each", h, feedredis.ArchiveShards, nodes, per)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Three pipelines on one Redis share the shards (at most ceil(16/3) = 6
// each); when one stops, the two others take its shards (8 each); when
// one is killed (its leases and registration left to expire), the last
// takes them all after LeaseTTL. Events published all along are archived,
// each once, in order.
func TestPipelinesShareShards(t *testing.T) {
	e := newEnv(t)
	var stops []func()
	for _, n := range []string{"a", "b", "c"} {
		stops = append(stops, run(t, e.pipeline(e.store, n, nil)))
	}
	topics := make([]string, 6)
	want := make([][]string, len(topics))
	var wg sync.WaitGroup
	pub := func() {
		for i := range topics {
			wg.Add(1)
			go func() {
				defer wg.Done()
				want[i] = append(want[i], e.publish(topics[i], 3)...)
			}()
		}
		wg.Wait()
	}
	for i := range topics {
		topics[i] = e.topic()
	}
	pub()
	e.waitSpread([]string{"a", "b", "c"}, 6, 10*time.Second)
	pub()

	stops[2]() // c stops: releases its leases and leaves the registry
	e.waitSpread([]string{"a", "b"}, 8, 10*time.Second)
	pub()

	// b dies: its leases and registration stay until they expire.
	killB(e, stops[1])
	e.waitSpread([]string{"a"}, 16, 10*time.Second)
	pub()
	for i, tp := range topics {
		e.waitArchived(tp, want[i], 10*time.Second)
	}
	e.waitClean(5 * time.Second)
}

// killB stops pipeline b as a kill would leave it: its leases and its
// registration are put back, with the TTL they had, after its graceful
// stop removed them.
func killB(e *env, stop func()) {
	held := e.holders()["b"]
	stop()
	ctx := context.Background()
	for s, n := 0, 0; s < feedredis.ArchiveShards && n < held; s++ {
		k := e.prefix + fmt.Sprintf("archive:lease:{s%d}", s)
		if e.rdb.SetNX(ctx, k, "b", 600*time.Millisecond).Val() {
			n++
		}
	}
	e.rdb.ZAdd(ctx, e.prefix+"archive:nodes", redis.Z{Score: float64(time.Now().Add(600 * time.Millisecond).UnixMilli()), Member: "b"})
}

// The retention job runs on one node per period and deletes only what is
// older than the retention: old events, trail points and status changes;
// trips and the ledger are kept.
func TestRetentionPrunesOnlyOldRows(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := newEnvAt(t, b.url(t))
			ctx := context.Background()
			now := time.Now()
			old, recent := now.Add(-100*24*time.Hour), now.Add(-time.Hour)
			seed(t, e.store, "t_old", old)
			seed(t, e.store, "t_new", recent)

			reg := prometheus.NewRegistry()
			cfg := archiveredis.RetentionConfig{Prefix: e.prefix, NodeID: "n1", Keep: 90 * 24 * time.Hour,
				Every: time.Minute, Registerer: reg, Logger: quiet(t)}
			r1 := archiveredis.NewRetention(e.rdb, e.store, cfg)
			cfg.NodeID = "n2"
			r2 := archiveredis.NewRetention(e.rdb, e.store, cfg)
			t.Cleanup(func() { e.rdb.Del(context.Background(), e.prefix+"archive:lease:prune") })
			res, ran, err := r1.Once(ctx)
			if err != nil || !ran {
				t.Fatalf("first node: ran %v, %v", ran, err)
			}
			if res != (archive.PruneResult{Events: 1, Points: 1, StatusChanges: 1}) {
				t.Fatalf("pruned %+v, want one old row of each", res)
			}
			if _, ran, err := r2.Once(ctx); err != nil || ran {
				t.Fatalf("second node in the same period: ran %v, %v; want not run", ran, err)
			}
			db := e.sqlDB()
			for q, want := range map[string]int64{
				"SELECT COUNT(*) FROM events":                                     1,
				"SELECT COUNT(*) FROM trail_points WHERE trip_id = 't_new'":       1,
				"SELECT COUNT(*) FROM trail_points":                               1,
				"SELECT COUNT(*) FROM driver_status":                              1,
				"SELECT COUNT(*) FROM trips":                                      2,
				"SELECT COUNT(*) FROM ledger":                                     2,
				"SELECT COUNT(*) FROM events WHERE topic = 'trip:t_new'":          1,
				"SELECT COUNT(*) FROM driver_status WHERE trip_id = 't_new'":      1,
				"SELECT COUNT(*) FROM ledger WHERE trip_id IN ('t_old', 't_new')": 2,
			} {
				if n := count(t, db, q); n != want {
					t.Errorf("%s = %d, want %d", q, n, want)
				}
			}
			if n := labeled(t, reg, "hextrack_archive_pruned_rows_total", "trail_points"); n != 1 {
				t.Errorf("pruned trail_points counted = %v, want 1", n)
			}
		})
	}
}

// seed stores one record of each kind for trip id at time at.
func seed(t *testing.T, s archiveredis.Archive, id string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	ms := at.UnixMilli()
	if _, err := s.AppendEvents(ctx, []archive.Event{{Topic: "trip:" + id, ID: fmt.Sprintf("%d-0", ms), Type: "trip.status",
		TripID: id, TS: at}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertTrips(ctx, []archive.Trip{{ID: id, Kind: "ride", RiderID: "r1", Status: "completed", Version: 3,
		CreatedAt: at, UpdatedAt: at}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendPoints(ctx, []archive.Point{{TripID: id, Seq: 1, DriverID: "d1", Lat: 52.5, Lng: 13.4, TS: at}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendLedger(ctx, []archive.Entry{{ID: "pay_" + id + ":v1", Kind: archive.EntryPayment, PaymentID: "pay_" + id,
		TripID: id, Amount: 1200, Currency: "EUR", Status: "pending", At: at, Body: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendStatuses(ctx, []archive.StatusChange{{DriverID: "d1", Status: "on_trip", TripID: id, At: at}}); err != nil {
		t.Fatal(err)
	}
}

package driverredis_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/geotest"
	"github.com/hextrack/hextrack/internal/redistest"
)

var porto = geo.Point{Lat: 41.1496, Lng: -8.6109}

// mustService returns a driver service over a real Redis with its own
// prefix, and a settable clock.
func mustService(t *testing.T) (*driverredis.Service, func(time.Duration), func() []string) {
	t.Helper()
	rdb, prefix := redistest.MustOpen(t)
	// As the server runs it: Redis' own errors (LOADING, BUSY, …) become
	// feed.ErrUnavailable, and the scripts' refusals must stay themselves.
	rdb.AddHook(feedredis.UnavailableHook{})
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	nowFn := func() time.Time { return time.Unix(0, clock.Load()) }
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix, Stale: 30 * time.Second, Now: nowFn})
	svc := driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix, Now: nowFn})
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	return svc, advance, func() []string { return geotest.CellsOf(context.Background(), t, rdb, prefix, "d1") }
}

func ping(p geo.Point, ts time.Time, seq int64) driver.DecodedPing {
	return driver.DecodedPing{Ping: driver.Ping{Pos: p, TS: ts, Seq: seq, Accuracy: math.NaN(), Speed: math.NaN(), Heading: math.NaN()}}
}

func TestPingThenNearby(t *testing.T) {
	ctx := context.Background()
	svc, advance, _ := mustService(t)
	t0 := time.Now()
	mustIngest(t, svc, "d1", ping(geo.Offset(porto, 0, 200), t0, 1))
	mustIngest(t, svc, "d2", ping(geo.Offset(porto, 90, 800), t0, 1))
	mustIngest(t, svc, "off", ping(geo.Offset(porto, 180, 100), t0, 1))
	if _, err := svc.SetStatus(ctx, "off", driver.StatusOffline); err != nil {
		t.Fatal(err)
	}
	list, err := svc.Nearby(ctx, driver.NearbyQuery{Center: porto})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "d1" || list[1].ID != "d2" {
		t.Fatalf("nearby = %+v, want d1 then d2 (offline excluded)", list)
	}
	if math.Abs(list[0].DistanceM-200) > 2 || list[0].ETAS <= 0 {
		t.Fatalf("d1 distance %.1f eta %.0f", list[0].DistanceM, list[0].ETAS)
	}
	// 31 s later without pings both are stale.
	advance(31 * time.Second)
	list, _ = svc.Nearby(ctx, driver.NearbyQuery{Center: porto})
	if len(list) != 0 {
		t.Fatalf("stale drivers returned: %+v", list)
	}
	st, err := svc.Get(ctx, "d1")
	if err != nil || st.Fresh {
		t.Fatalf("d1 state %+v err %v: want not fresh", st, err)
	}
	if _, err := svc.Get(ctx, "nobody"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("unknown driver: err %v", err)
	}
}

func mustIngest(t *testing.T, svc *driverredis.Service, id string, ps ...driver.DecodedPing) driver.IngestResult {
	t.Helper()
	res, err := svc.Ingest(context.Background(), id, ps)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBatchDuplicatesAndOrder(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := mustService(t)
	t0 := time.Now().Add(-10 * time.Minute)
	pts := make([]geo.Point, 6)
	for i := range pts {
		pts[i] = geo.Offset(porto, 0, float64(i)*100)
	}
	// Out of order, with a duplicate seq inside the batch.
	res := mustIngest(t, svc, "d1",
		ping(pts[3], t0.Add(30*time.Second), 4),
		ping(pts[1], t0.Add(10*time.Second), 2),
		ping(pts[2], t0.Add(20*time.Second), 3),
		ping(pts[1], t0.Add(10*time.Second), 2),
		ping(pts[0], t0, 1),
	)
	if res.Accepted != 4 || res.Duplicates != 1 || len(res.Rejected) != 0 || res.LastSeq != 4 {
		t.Fatalf("result %+v, want 4 accepted, 1 duplicate, last seq 4", res)
	}
	st, _ := svc.Get(ctx, "d1")
	if d := geo.Distance(geo.Point{Lat: st.Location.Lat, Lng: st.Location.Lng}, pts[3]); d > 1 {
		t.Fatalf("position is %.1f m from the newest fix", d)
	}
	// Replaying the same batch changes nothing.
	res = mustIngest(t, svc, "d1", ping(pts[3], t0.Add(30*time.Second), 4), ping(pts[0], t0, 1))
	if res.Accepted != 0 || res.Duplicates != 2 {
		t.Fatalf("replay %+v, want 2 duplicates", res)
	}
	// A late offline batch with older fixes is accepted but never moves the
	// driver back; a newer one moves it.
	res = mustIngest(t, svc, "d1", ping(pts[4], t0.Add(5*time.Second), 10), ping(pts[5], t0.Add(40*time.Second), 11))
	if res.Accepted != 2 || res.LastSeq != 11 {
		t.Fatalf("late batch %+v", res)
	}
	st, _ = svc.Get(ctx, "d1")
	if d := geo.Distance(geo.Point{Lat: st.Location.Lat, Lng: st.Location.Lng}, pts[5]); d > 1 {
		t.Fatalf("position is %.1f m from the newest fix", d)
	}
	if !st.Location.TS.Equal(t0.Add(40 * time.Second).Truncate(time.Millisecond)) {
		t.Fatalf("ts %v", st.Location.TS)
	}
}

func TestImplausibleJumpAndValidation(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := mustService(t)
	t0 := time.Now().Add(-time.Minute)
	mustIngest(t, svc, "d1", ping(porto, t0, 1))
	// 5 km in 10 s is 500 m/s.
	bad := ping(geo.Offset(porto, 0, 5000), t0.Add(10*time.Second), 2)
	nan := ping(porto, t0.Add(11*time.Second), 3)
	nan.Pos.Lat = math.NaN()
	good := ping(geo.Offset(porto, 0, 300), t0.Add(20*time.Second), 4)
	res := mustIngest(t, svc, "d1", bad, nan, good)
	if res.Accepted != 1 || len(res.Rejected) != 2 ||
		res.Rejected[0] != (driver.Rejection{Index: 0, Reason: driver.ReasonImplausible}) ||
		res.Rejected[1] != (driver.Rejection{Index: 1, Reason: driver.ReasonNotFinite}) {
		t.Fatalf("result %+v", res)
	}
	st, _ := svc.Get(ctx, "d1")
	if d := geo.Distance(geo.Point{Lat: st.Location.Lat, Lng: st.Location.Lng}, geo.Offset(porto, 0, 300)); d > 1 {
		t.Fatalf("position %.1f m off", d)
	}
	// A batch that is all invalid stores nothing.
	res = mustIngest(t, svc, "fresh", ping(geo.Point{Lat: 91, Lng: 0}, t0, 1))
	if res.Accepted != 0 || len(res.Rejected) != 1 {
		t.Fatalf("result %+v", res)
	}
	if _, err := svc.Get(ctx, "fresh"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("a rejected ping created state: %v", err)
	}
	if _, err := svc.Ingest(ctx, "bad id!", []driver.DecodedPing{good}); !errors.Is(err, driver.ErrInvalid) {
		t.Fatalf("bad id: %v", err)
	}
}

func TestConcurrentPingsEndInOneCell(t *testing.T) {
	ctx := context.Background()
	svc, _, cells := mustService(t)
	t0 := time.Now().Add(-time.Hour)
	var seq atomic.Int64
	var wg sync.WaitGroup
	// 8 goroutines ping d1 at once along a line that crosses many r9 cells
	// and two r6 regions; each ping's ts grows with its seq, so the newest
	// is well defined whatever the arrival order.
	const perG = 60
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < perG; i++ {
				s := seq.Add(1)
				p := geo.Offset(porto, 10, float64(s)*20+r.Float64())
				if _, err := svc.Ingest(ctx, "d1", []driver.DecodedPing{ping(p, t0.Add(time.Duration(s)*time.Second), s)}); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	last := seq.Load()
	st, err := svc.Get(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSeq != last {
		t.Fatalf("last seq %d, want %d", st.LastSeq, last)
	}
	want := geo.Offset(porto, 10, float64(last)*20)
	if d := geo.Distance(geo.Point{Lat: st.Location.Lat, Lng: st.Location.Lng}, want); d > 2 {
		t.Fatalf("final position %.1f m from the newest fix", d)
	}
	got := cells()
	if len(got) != 1 || got[0] != st.Cell {
		t.Fatalf("driver indexed in cells %v, want exactly [%s]", got, st.Cell)
	}
	if geo.CellOf(porto, geo.ResRegion) == geo.CellOf(want, geo.ResRegion) {
		t.Fatal("test setup: the path should cross an r6 region")
	}
}

func TestClaimIsExclusive(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := mustService(t)
	mustIngest(t, svc, "d1", ping(porto, time.Now(), 1))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := svc.Claim(ctx, "d1", fmt.Sprintf("t%d", i))
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, driver.ErrConflict) {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d trips claimed one driver", wins.Load())
	}
	st, _ := svc.Get(ctx, "d1")
	if st.Status != driver.StatusOnTrip || st.TripID == "" {
		t.Fatalf("state %+v", st)
	}
	if _, err := svc.SetStatus(ctx, "d1", driver.StatusOffline); !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("going offline on a trip: %v", err)
	}
	if list, _ := svc.Nearby(ctx, driver.NearbyQuery{Center: porto}); len(list) != 0 {
		t.Fatalf("a busy driver is offered: %+v", list)
	}
	if err := svc.Release(ctx, "d1", st.TripID, ""); err != nil {
		t.Fatal(err)
	}
	if list, _ := svc.Nearby(ctx, driver.NearbyQuery{Center: porto}); len(list) != 1 {
		t.Fatalf("released driver not available: %+v", list)
	}
}

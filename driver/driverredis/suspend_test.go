package driverredis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
)

// TestSuspension: a suspended driver is refused available and claims,
// is out of nearby, stays suspended when its state expires and it pings
// again, is listed and audited; reinstated, it is offline and may work.
func TestSuspension(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustOpen(t)
	rdb.AddHook(feedredis.UnavailableHook{})
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
	svc := driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix})
	t0 := time.Now().Add(-10 * time.Second)
	mustIngest(t, svc, "d1", ping(porto, t0, 1))
	mustIngest(t, svc, "d2", ping(geo.Offset(porto, 90, 300), t0, 1))
	nearby := func() map[string]bool {
		t.Helper()
		list, err := svc.Nearby(ctx, driver.NearbyQuery{Center: porto})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, n := range list {
			ids[n.ID] = true
		}
		return ids
	}

	if _, err := svc.Suspend(ctx, "nobody", "ops:o", "x"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("suspend unknown: %v", err)
	}
	if _, err := svc.Suspend(ctx, "d1", "ops:o", " "); !errors.Is(err, driver.ErrInvalid) {
		t.Fatalf("blank reason: %v", err)
	}
	st, err := svc.Suspend(ctx, "d1", "ops:o", "fraud check")
	if err != nil || st.Status != driver.StatusSuspended || st.Suspension == nil || st.Suspension.By != "ops:o" {
		t.Fatalf("suspend: %+v %v", st, err)
	}
	first := st.Suspension.At
	// Again: the first suspension stands.
	if st, err := svc.Suspend(ctx, "d1", "ops:p", "other"); err != nil || st.Suspension.Reason != "fraud check" || !st.Suspension.At.Equal(first) {
		t.Fatalf("suspend again: %+v %v", st.Suspension, err)
	}
	if _, err := svc.SetStatus(ctx, "d1", driver.StatusAvailable); !errors.Is(err, driver.ErrSuspended) {
		t.Fatalf("available while suspended: %v", err)
	}
	if err := svc.Claim(ctx, "d1", "t1"); !errors.Is(err, driver.ErrSuspended) {
		t.Fatalf("claim while suspended: %v", err)
	}
	if ids := nearby(); ids["d1"] || !ids["d2"] {
		t.Fatalf("nearby while suspended: %v", ids)
	}
	// The state expires (TTL) while suspended; the next ping brings the
	// driver back suspended, not available.
	if err := rdb.Del(ctx, prefix+"drv:{d1}").Err(); err != nil {
		t.Fatal(err)
	}
	if st, err := svc.Get(ctx, "d1"); err != nil || st.Status != driver.StatusSuspended || st.Suspension == nil {
		t.Fatalf("expired state: %+v %v", st, err)
	}
	mustIngest(t, svc, "d1", ping(porto, t0.Add(time.Second), 2))
	if st, err := svc.Get(ctx, "d1"); err != nil || st.Status != driver.StatusSuspended || st.Location == nil {
		t.Fatalf("after a ping: %+v %v", st, err)
	}
	if ids := nearby(); ids["d1"] {
		t.Fatalf("nearby after a ping while suspended: %v", ids)
	}
	if ok, err := svc.IsSuspended(ctx, "d1"); err != nil || !ok {
		t.Fatalf("IsSuspended %v %v", ok, err)
	}
	list, err := svc.Suspended(ctx, 10)
	if err != nil || len(list) != 1 || list[0].ID != "d1" || list[0].Reason != "fraud check" {
		t.Fatalf("suspended list %+v %v", list, err)
	}
	if _, err := svc.Suspended(ctx, 0); !errors.Is(err, driver.ErrInvalid) {
		t.Fatalf("limit 0: %v", err)
	}

	// A driver on a trip is not suspended: ops reassign first.
	if _, err := svc.SetStatus(ctx, "d2", driver.StatusAvailable); err != nil {
		t.Fatal(err)
	}
	if err := svc.Claim(ctx, "d2", "t2"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Suspend(ctx, "d2", "ops:o", "x"); !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("suspend on a trip: %v", err)
	}

	st, err = svc.Reinstate(ctx, "d1", "ops:q", "cleared")
	if err != nil || st.Status != driver.StatusOffline || st.Suspension != nil {
		t.Fatalf("reinstate: %+v %v", st, err)
	}
	if _, err := svc.Reinstate(ctx, "nobody", "ops:q", ""); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("reinstate unknown: %v", err)
	}
	if _, err := svc.SetStatus(ctx, "d1", driver.StatusAvailable); err != nil {
		t.Fatal(err)
	}
	if ids := nearby(); !ids["d1"] {
		t.Fatalf("nearby after reinstatement: %v", ids)
	}
	if list, err := svc.Suspended(ctx, 10); err != nil || len(list) != 0 {
		t.Fatalf("suspended list after reinstatement %+v %v", list, err)
	}
	log, err := svc.SuspensionLog(ctx, "d1")
	if err != nil || len(log) != 2 || log[0].Action != "reinstate" || log[0].By != "ops:q" || log[0].Reason != "cleared" ||
		log[1].Action != "suspend" || log[1].Reason != "fraud check" || !log[1].At.Equal(first) {
		t.Fatalf("audit log %+v %v", log, err)
	}
}

package tripredis_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/eta/live"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// checkTag asserts that SnapshotTag agrees with Snapshot for a: the same
// ETag and status, or the same error. It returns the tag. Locations and
// ETAs are stored asynchronously: a trip that changed between the two reads
// (SnapshotTag differs before and after Snapshot) is compared again.
func checkTag(tb testing.TB, e *triptest.Env, id string, a trip.Actor) string {
	tb.Helper()
	ctx := context.Background()
	var snap trip.Snapshot
	var tag, status string
	var serr, terr error
	for range 20 {
		tag0, _, _ := e.Trips.Store().SnapshotTag(ctx, id, a)
		snap, serr = e.Trips.Store().Snapshot(ctx, id, a)
		tag, status, terr = e.Trips.Store().SnapshotTag(ctx, id, a)
		if tag == tag0 {
			break
		}
	}
	if serr != nil || terr != nil {
		if serr == nil || terr == nil || serr.Error() != terr.Error() {
			tb.Fatalf("%s as %+v: Snapshot error %v, SnapshotTag error %v", id, a, serr, terr)
		}
		return ""
	}
	if tag != snap.ETag() || status != snap.Trip.Status {
		tb.Fatalf("%s as %+v: SnapshotTag %s %s, Snapshot %s %s", id, a, tag, status, snap.ETag(), snap.Trip.Status)
	}
	return tag
}

// TestSnapshotTag checks that the poller's cheap validator is the
// snapshot's ETag in every status, with a location and with an ETA, and
// that it refuses exactly whom Snapshot refuses.
func TestSnapshotTag(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{LocationEvery: time.Millisecond})
	ctx := context.Background()
	ops := trip.Actor{Role: trip.RoleOps, ID: "ops"}
	stranger := trip.Actor{Role: trip.RoleRider, ID: e.ID("r")}

	for _, st := range []string{trip.StatusRequested, trip.StatusAwaitingPayment, trip.StatusAssigned,
		trip.StatusArrived, trip.StatusInProgress, trip.StatusCompleted} {
		t.Run(st, func(t *testing.T) {
			tr, ra, drv := e.TripIn(t, st)
			if tag := checkTag(t, e, tr.ID, ra); tag == "" {
				t.Fatal("the rider was refused")
			}
			checkTag(t, e, tr.ID, ops)
			if drv != "" && checkTag(t, e, tr.ID, trip.Actor{Role: trip.RoleDriver, ID: drv}) == "" {
				t.Fatal("the driver was refused")
			}
			if _, _, err := e.Trips.Store().SnapshotTag(ctx, tr.ID, stranger); !errors.Is(err, trip.ErrForbidden) {
				t.Fatalf("stranger: %v, want forbidden", err)
			}
			checkTag(t, e, tr.ID, stranger)
		})
	}

	t.Run("missing and invalid ids", func(t *testing.T) {
		if _, _, err := e.Trips.Store().SnapshotTag(ctx, e.ID("t_missing"), ops); !errors.Is(err, trip.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		if _, _, err := e.Trips.Store().SnapshotTag(ctx, "bad id/..", ops); !errors.Is(err, trip.ErrInvalid) {
			t.Fatalf("invalid: %v", err)
		}
	})

	t.Run("viewer", func(t *testing.T) {
		tr, ra, _ := e.TripIn(t, trip.StatusRequested)
		sh, err := e.Trips.Shares().Share(ctx, tr.ID, ra, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		v := trip.Actor{Role: trip.RoleViewer, ID: sh.ID, Trip: tr.ID, Share: sh.ID}
		if checkTag(t, e, tr.ID, v) == "" {
			t.Fatal("a live share link was refused")
		}
		if err := e.Trips.Shares().Revoke(ctx, tr.ID, ra, sh.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.Trips.Store().SnapshotTag(ctx, tr.ID, v); !errors.Is(err, trip.ErrShareRevoked) {
			t.Fatalf("revoked link: %v", err)
		}
	})

	t.Run("location and eta", func(t *testing.T) {
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { _ = e.Trips.Tracker().Run(rctx) }()
		e.Drivers.Listen(e.Trips.Tracker())
		r := &lineRouter{speed: 10}
		l := live.New(e.Trips.ETAs(), r, live.Config{Every: time.Millisecond})
		e.Trips.Observe(l)
		lctx, lcancel := context.WithCancel(ctx)
		ldone := make(chan struct{})
		go func() { defer close(ldone); _ = l.Run(lctx) }()
		defer func() { lcancel(); <-ldone }()
		tr, ra, drv := e.TripIn(t, trip.StatusAssigned)
		before := checkTag(t, e, tr.ID, ra)
		p := driver.DecodedPing{Ping: driver.Ping{Seq: 1, TS: time.Now().Add(-time.Second),
			Pos: geo.Offset(geo.Point{Lat: triptest.Ride.Pickup.Lat, Lng: triptest.Ride.Pickup.Lng}, 90, 2000), Accuracy: nan, Speed: nan, Heading: nan}}
		if _, err := e.Drivers.Ingest(ctx, drv, []driver.DecodedPing{p}); err != nil {
			t.Fatal(err)
		}
		l.DriverMoved(ctx, driver.Move{DriverID: drv, TripID: tr.ID, Pos: p.Pos, TS: p.TS})
		r.waitCalls(t, 1)
		deadline := time.Now().Add(3 * time.Second)
		var tag string
		for {
			// "<version>.<location seq>.<route version>": both stored.
			tag = checkTag(t, e, tr.ID, ra)
			parts := strings.Split(strings.Trim(tag, `"`), ".")
			if len(parts) == 3 && parts[1] != "0" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("tag %s: no location or ETA stored", tag)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if tag == before {
			t.Fatalf("tag %s unchanged by a location and an ETA", tag)
		}
	})
}

// lineRouter drives the straight line at speed m/s and counts its calls.
type lineRouter struct {
	speed float64
	calls atomic.Int64
}

func (r *lineRouter) Estimate(_ context.Context, from, to geo.Point) (float64, float64, error) {
	r.calls.Add(1)
	d := geo.Distance(from, to)
	return d / r.speed, d, nil
}

// waitCalls waits until the router was called n times in all.
func (r *lineRouter) waitCalls(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for r.calls.Load() < int64(n) {
		if time.Now().After(deadline) {
			tb.Fatalf("router called %d times, want %d", r.calls.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

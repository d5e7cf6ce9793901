package rider_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/rider"
)

// checkTag asserts that SnapshotTag agrees with Snapshot for a: the same
// ETag and status, or the same error. It returns the tag. Locations and
// ETAs are stored asynchronously: a trip that changed between the two reads
// (SnapshotTag differs before and after Snapshot) is compared again.
func checkTag(tb testing.TB, e *env, id string, a rider.Actor) string {
	tb.Helper()
	ctx := context.Background()
	var snap rider.Snapshot
	var tag, status string
	var serr, terr error
	for range 20 {
		tag0, _, _ := e.trips.SnapshotTag(ctx, id, a)
		snap, serr = e.trips.Snapshot(ctx, id, a)
		tag, status, terr = e.trips.SnapshotTag(ctx, id, a)
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
	e := mustEnv(t, rider.Config{LocationEvery: time.Millisecond})
	ctx := context.Background()
	ops := rider.Actor{Role: rider.RoleOps, ID: "ops"}
	stranger := rider.Actor{Role: rider.RoleRider, ID: e.id("r")}

	for _, st := range []string{rider.StatusRequested, rider.StatusAwaitingPayment, rider.StatusAssigned,
		rider.StatusArrived, rider.StatusInProgress, rider.StatusCompleted} {
		t.Run(st, func(t *testing.T) {
			trip, ra, drv := e.tripIn(t, st)
			if tag := checkTag(t, e, trip.ID, ra); tag == "" {
				t.Fatal("the rider was refused")
			}
			checkTag(t, e, trip.ID, ops)
			if drv != "" && checkTag(t, e, trip.ID, rider.Actor{Role: rider.RoleDriver, ID: drv}) == "" {
				t.Fatal("the driver was refused")
			}
			if _, _, err := e.trips.SnapshotTag(ctx, trip.ID, stranger); !errors.Is(err, rider.ErrForbidden) {
				t.Fatalf("stranger: %v, want forbidden", err)
			}
			checkTag(t, e, trip.ID, stranger)
		})
	}

	t.Run("missing and invalid ids", func(t *testing.T) {
		if _, _, err := e.trips.SnapshotTag(ctx, e.id("t_missing"), ops); !errors.Is(err, rider.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		if _, _, err := e.trips.SnapshotTag(ctx, "bad id/..", ops); !errors.Is(err, rider.ErrInvalid) {
			t.Fatalf("invalid: %v", err)
		}
	})

	t.Run("viewer", func(t *testing.T) {
		trip, ra, _ := e.tripIn(t, rider.StatusRequested)
		sh, err := e.trips.Share(ctx, trip.ID, ra, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		v := rider.Actor{Role: rider.RoleViewer, ID: sh.ID, Trip: trip.ID, Share: sh.ID}
		if checkTag(t, e, trip.ID, v) == "" {
			t.Fatal("a live share link was refused")
		}
		if err := e.trips.Revoke(ctx, trip.ID, ra, sh.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.trips.SnapshotTag(ctx, trip.ID, v); !errors.Is(err, rider.ErrShareRevoked) {
			t.Fatalf("revoked link: %v", err)
		}
	})

	t.Run("location and eta", func(t *testing.T) {
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { _ = e.trips.Run(rctx) }()
		e.drivers.Listen(e.trips)
		r := &lineRouter{speed: 10}
		l := rider.NewLiveETA(e.trips, r, rider.ETAConfig{Every: time.Millisecond})
		runETA(t, l)
		trip, ra, drv := e.tripIn(t, rider.StatusAssigned)
		before := checkTag(t, e, trip.ID, ra)
		p := driver.DecodedPing{Ping: driver.Ping{Seq: 1, TS: time.Now().Add(-time.Second),
			Pos: geo.Offset(pickup, 90, 2000), Accuracy: nan, Speed: nan, Heading: nan}}
		if _, err := e.drivers.Ingest(ctx, drv, []driver.DecodedPing{p}); err != nil {
			t.Fatal(err)
		}
		l.DriverMoved(ctx, driver.Move{DriverID: drv, TripID: trip.ID, Pos: p.Pos, TS: p.TS})
		r.waitCalls(t, 1)
		deadline := time.Now().Add(3 * time.Second)
		var tag string
		for {
			// "<version>.<location seq>.<route version>": both stored.
			tag = checkTag(t, e, trip.ID, ra)
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

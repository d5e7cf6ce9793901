package opsredis_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/ops"
	"github.com/hextrack/hextrack/ops/opsredis"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

func mustOps(tb testing.TB, e *triptest.Env) *opsredis.View {
	tb.Helper()
	e.Trips.Observe(opsredis.NewIndex(e.RDB, opsredis.Config{Prefix: e.Prefix}))
	return opsredis.New(e.RDB, e.Trips.Store(), opsredis.Config{Prefix: e.Prefix, FleetEvery: time.Nanosecond})
}

func TestOpsTrips(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	view := mustOps(t, e)
	ctx := context.Background()
	want := map[string]int64{}
	ids := map[string][]string{}
	for _, st := range []string{trip.StatusRequested, trip.StatusRequested, trip.StatusAssigned,
		trip.StatusInProgress, trip.StatusCompleted, trip.StatusCancelled, trip.StatusAwaitingPayment} {
		tr, _, _ := e.TripIn(t, st)
		want[st]++
		ids[st] = append(ids[st], tr.ID)
	}
	got, err := view.TripCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range trip.Statuses {
		if got[st] != want[st] {
			t.Errorf("count %s = %d, want %d (all %v)", st, got[st], want[st], got)
		}
	}
	t.Run("by status", func(t *testing.T) {
		for st, wantIDs := range ids {
			ts, err := view.Trips(ctx, st, 10)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []string
			for _, tr := range ts {
				if tr.Status != st {
					t.Errorf("%s list has %s in %s", st, tr.ID, tr.Status)
				}
				gotIDs = append(gotIDs, tr.ID)
			}
			slices.Sort(gotIDs)
			slices.Sort(wantIDs)
			if !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("%s: got %v, want %v", st, gotIDs, wantIDs)
			}
		}
	})
	t.Run("all, newest first, limited", func(t *testing.T) {
		last, _, _ := e.TripIn(t, trip.StatusRequested)
		ts, err := view.Trips(ctx, "", 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 3 || ts[0].ID != last.ID {
			t.Fatalf("got %d trips, first %v; want 3, first %s", len(ts), ts, last.ID)
		}
	})
	t.Run("a status change moves the trip", func(t *testing.T) {
		id := ids[trip.StatusRequested][0]
		if _, err := e.Trips.Cancel(ctx, id, trip.Actor{Role: trip.RoleOps, ID: "ops1"}, "test"); err != nil {
			t.Fatal(err)
		}
		c, err := view.TripCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c[trip.StatusRequested] != want[trip.StatusRequested] || c[trip.StatusCancelled] != want[trip.StatusCancelled]+1 {
			t.Fatalf("after cancel: %v (one requested added by the previous case, one moved to cancelled)", c)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		for _, tc := range []struct {
			name, status string
			limit        int
		}{{"unknown status", "flying", 10}, {"zero limit", "", 0}, {"huge limit", "", ops.MaxTripList + 1}} {
			if _, err := view.Trips(ctx, tc.status, tc.limit); !errors.Is(err, ops.ErrInvalid) {
				t.Errorf("%s: err %v, want ErrInvalid", tc.name, err)
			}
		}
	})
}

// An older change indexed after a newer one (two nodes racing) must not
// win: the index keeps the trip's newest event.
func TestOpsIndexOrder(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	view := mustOps(t, e)
	ctx := context.Background()
	tr, _, _ := e.TripIn(t, trip.StatusRequested)
	newer := trip.Change{Trip: tr, Action: trip.ActCancel, From: trip.StatusRequested, To: trip.StatusCancelled, EventID: "9999999999999-5"}
	older := trip.Change{Trip: tr, Action: trip.ActAccept, From: trip.StatusRequested, To: trip.StatusAssigned, EventID: "9999999999999-4"}
	opsredis.NewIndex(e.RDB, opsredis.Config{Prefix: e.Prefix}).TripChanged(ctx, newer)
	opsredis.NewIndex(e.RDB, opsredis.Config{Prefix: e.Prefix}).TripChanged(ctx, older)
	for _, tc := range []struct {
		status string
		want   int
	}{{trip.StatusCancelled, 1}, {trip.StatusAssigned, 0}, {trip.StatusRequested, 0}} {
		ts, err := view.Trips(ctx, tc.status, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != tc.want {
			t.Errorf("%s: %d trips, want %d", tc.status, len(ts), tc.want)
		}
	}
}

func TestOpsFleetAndSupply(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	view := mustOps(t, e)
	ctx := context.Background()
	base := geo.Point{Lat: 52.52, Lng: 13.405}
	far := geo.Point{Lat: 48.137, Lng: 11.575} // another city
	avail := []string{e.PlaceDriver(t, base), e.PlaceDriver(t, geo.Offset(base, 90, 700))}
	for _, id := range avail {
		if _, err := e.Drivers.SetStatus(ctx, id, driver.StatusAvailable); err != nil {
			t.Fatal(err)
		}
	}
	busy := e.PlaceDriver(t, geo.Offset(base, 0, 500))
	if _, err := e.Drivers.SetStatus(ctx, busy, driver.StatusAvailable); err != nil {
		t.Fatal(err)
	}
	tr, _, _ := e.TripIn(t, trip.StatusRequested)
	if err := e.Trips.Assign(ctx, tr.ID, busy); err != nil {
		t.Fatal(err)
	}
	off := e.PlaceDriver(t, far)
	if _, err := e.Drivers.SetStatus(ctx, off, driver.StatusOffline); err != nil {
		t.Fatal(err)
	}
	farOn := e.PlaceDriver(t, geo.Offset(far, 0, 300))
	if _, err := e.Drivers.SetStatus(ctx, farOn, driver.StatusAvailable); err != nil {
		t.Fatal(err)
	}
	stale := e.PlaceDriverAt(t, base, time.Now().Add(-5*time.Minute))
	// Open demand: two requested trips picking up at base (triptest.Ride's pickup).
	e.TripIn(t, trip.StatusRequested)
	e.TripIn(t, trip.StatusRequested)

	c, err := view.DriverCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ops.DriverCounts{Online: 4, Available: 3, OnTrip: 1, Offline: 1}); c != want {
		t.Fatalf("counts %+v, want %+v", c, want)
	}
	t.Run("viewport", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			cells []string
			want  []string
		}{
			{"r5 of base", []string{up(base, 5)}, append([]string{busy}, avail...)},
			{"r5 of the far city: online only", []string{up(far, 5)}, []string{farOn}},
			{"r9 of the first driver", []string{geo.CellOf(base, 9).String()}, avail[:1]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				set, err := ops.ParseCells(tc.cells, 100)
				if err != nil {
					t.Fatal(err)
				}
				ds, trunc, err := view.Drivers(ctx, set, 100)
				if err != nil || trunc {
					t.Fatal(err, trunc)
				}
				var got []string
				for _, d := range ds {
					got = append(got, d.ID)
					if d.ID == stale {
						t.Errorf("stale driver %s returned", stale)
					}
				}
				slices.Sort(got)
				want := slices.Clone(tc.want)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("got %v, want %v", got, want)
				}
			})
		}
		set, _ := ops.ParseCells([]string{up(base, 5)}, 100)
		if ds, trunc, _ := view.Drivers(ctx, set, 2); len(ds) != 2 || !trunc {
			t.Errorf("max 2: %d drivers, truncated %v", len(ds), trunc)
		}
	})
	t.Run("supply at r5", func(t *testing.T) {
		sup, err := view.Supply(ctx, 5, nil)
		if err != nil {
			t.Fatal(err)
		}
		home := up(base, 5)
		var found bool
		for _, s := range sup {
			switch s.Cell {
			case home:
				found = true
				// The assigned trip is not open demand; two requested are.
				if s.Available != 2 || s.OnTrip != 1 || s.Demand != 2 {
					t.Errorf("home cell %+v, want 2 available, 1 on trip, 2 demand", s)
				}
			case up(far, 5):
				if s.Available != 1 || s.Demand != 0 {
					t.Errorf("far cell %+v: want 1 available (an offline driver is no supply), no demand", s)
				}
			}
		}
		if !found {
			t.Fatalf("no home cell in %+v", sup)
		}
		if _, err := view.Supply(ctx, 10, nil); !errors.Is(err, ops.ErrInvalid) {
			t.Errorf("res 10: %v, want ErrInvalid", err)
		}
	})
}

// up is the resolution res ancestor of p's r9 cell: the viewport and the
// supply map follow the H3 hierarchy, whose parents differ from the cell
// containing a point near cell edges.
func up(p geo.Point, res int) string { return geo.CellOf(p, geo.ResIndex).Parent(res).String() }

package tripredis_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// TestDropStop: the check proof uploads make (the pod package's contract):
// an open drop stop of the driver's trip, else ErrNotFound, ErrForbidden
// or ErrStopStatus.
func TestDropStop(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	ctx := context.Background()
	tr, _, drv := e.TripIn(t, trip.StatusInProgress)
	other := e.Driver(t)
	tests := []struct {
		name, trip, stop, driver string
		want                     error
	}{
		{"open drop", tr.ID, "s2", drv, nil},
		{"a pickup", tr.ID, "s1", drv, trip.ErrNotFound},
		{"unknown stop", tr.ID, "s9", drv, trip.ErrNotFound},
		{"unknown trip", "t_nope", "s2", drv, trip.ErrNotFound},
		{"bad trip id", "t/1", "s2", drv, trip.ErrInvalid},
		{"another driver", tr.ID, "s2", other, trip.ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.Trips.DropStop(ctx, tc.trip, tc.stop, tc.driver); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("DropStop: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := e.Trips.Act(ctx, tr.ID, trip.Actor{Role: trip.RoleDriver, ID: drv}, trip.ActComplete, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.Trips.DropStop(ctx, tr.ID, "s2", drv); !errors.Is(err, trip.ErrStopStatus) {
		t.Fatalf("completed drop: %v, want ErrStopStatus", err)
	}
}

// TestLegacyCompleteWithOpenStops: the ride's /complete is refused while
// another stop is open, and completes the last open one otherwise.
func TestLegacyCompleteWithOpenStops(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	ctx := context.Background()
	r := triptest.Ride
	r.Pickup, r.Dropoff = trip.Place{}, trip.Place{}
	r.Stops = []trip.StopInput{{Kind: trip.StopPickup, Location: trip.LatLng{Lat: 52.52, Lng: 13.405}},
		{Kind: trip.StopDrop, Location: trip.LatLng{Lat: 52.51, Lng: 13.40}}, {Kind: trip.StopDrop, Location: trip.LatLng{Lat: 52.50, Lng: 13.38}}}
	snap, _ := e.Create(t, r)
	id := snap.Trip.ID
	drv := e.Driver(t)
	if err := e.Trips.Assign(ctx, id, drv); err != nil {
		t.Fatal(err)
	}
	da := trip.Actor{Role: trip.RoleDriver, ID: drv}
	for _, act := range []string{trip.ActArrived, trip.ActPickup} {
		if _, err := e.Trips.Act(ctx, id, da, act, ""); err != nil {
			t.Fatal(act, err)
		}
	}
	if _, err := e.Trips.Act(ctx, id, da, trip.ActComplete, ""); !errors.Is(err, trip.ErrStopsPending) {
		t.Fatalf("complete with s2 and s3 open: %v, want ErrStopsPending", err)
	}
	if _, err := e.Trips.Stops().Fail(ctx, id, "s2", da, "nobody home"); err != nil {
		t.Fatal(err)
	}
	s, err := e.Trips.Act(ctx, id, da, trip.ActComplete, "")
	if err != nil || s.Trip.Status != trip.StatusCompleted {
		t.Fatalf("complete: %v %v", s.Trip.Status, err)
	}
	want := []string{trip.StopCompleted, trip.StopFailed, trip.StopCompleted}
	for i, st := range s.Trip.Stops {
		if st.Status != want[i] {
			t.Fatalf("stop %s is %s, want %s", st.ID, st.Status, want[i])
		}
	}
}

package trip_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/trip"
)

func stop(id, kind, status string) trip.Stop {
	return trip.Stop{ID: id, Kind: kind, Status: status, Location: trip.LatLng{Lat: 41.1, Lng: -8.6}}
}

func ids(stops []trip.Stop) []string {
	out := make([]string, len(stops))
	for i, s := range stops {
		out[i] = s.ID
	}
	return out
}

// TestCreateRequestStops: a request's stops are checked with a clear
// ErrInvalid, and set the trip's pickup and dropoff.
func TestCreateRequestStops(t *testing.T) {
	in := func(kind string, lat float64) trip.StopInput {
		return trip.StopInput{Kind: kind, Location: trip.LatLng{Lat: lat, Lng: -8.6}}
	}
	many := make([]trip.StopInput, 26)
	for i := range many {
		many[i] = in(trip.StopDrop, 41.1)
	}
	many[0] = in(trip.StopPickup, 41.1)
	pinPickup := in(trip.StopPickup, 41.1)
	pinPickup.Proof = &trip.Proof{PIN: true}
	late := in(trip.StopDrop, 41.2)
	late.Window = &trip.Window{From: time.Now(), To: time.Now().Add(-time.Hour)}
	tests := []struct {
		name  string
		r     trip.CreateRequest
		error string // "" valid
	}{
		{"pickup and drops", trip.CreateRequest{Stops: []trip.StopInput{in(trip.StopPickup, 41.1), in(trip.StopDrop, 41.2), in(trip.StopDrop, 41.3)}}, ""},
		{"two pickups", trip.CreateRequest{Stops: []trip.StopInput{in(trip.StopPickup, 41.1), in(trip.StopPickup, 41.15), in(trip.StopDrop, 41.3)}}, ""},
		{"first a drop", trip.CreateRequest{Stops: []trip.StopInput{in(trip.StopDrop, 41.2), in(trip.StopPickup, 41.1)}}, "first stop must be a pickup"},
		{"no drop", trip.CreateRequest{Stops: []trip.StopInput{in(trip.StopPickup, 41.1)}}, "at least one drop"},
		{"26 stops", trip.CreateRequest{Stops: many}, "at most 25 stops"},
		{"stops and a pickup", trip.CreateRequest{Pickup: trip.Place{Lat: 41, Lng: -8}, Stops: []trip.StopInput{in(trip.StopPickup, 41.1), in(trip.StopDrop, 41.2)}}, "either stops or pickup"},
		{"bad kind", trip.CreateRequest{Stops: []trip.StopInput{in(trip.StopPickup, 41.1), in("via", 41.2)}}, "stops[1] kind"},
		{"lat out of range", trip.CreateRequest{Stops: []trip.StopInput{in(trip.StopPickup, 41.1), in(trip.StopDrop, 91)}}, "stops[1] lat"},
		{"proof on a pickup", trip.CreateRequest{Stops: []trip.StopInput{pinPickup, in(trip.StopDrop, 41.2)}}, "drop stops only"},
		{"window backwards", trip.CreateRequest{Stops: []trip.StopInput{in(trip.StopPickup, 41.1), late}}, "window ends before"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Normalize()
			if tc.error == "" {
				if err != nil {
					t.Fatal(err)
				}
				last := tc.r.Stops[len(tc.r.Stops)-1]
				if tc.r.Pickup.Lat != tc.r.Stops[0].Location.Lat || tc.r.Dropoff.Lat != last.Location.Lat {
					t.Fatalf("pickup %v dropoff %v, want the first pickup and the last drop", tc.r.Pickup, tc.r.Dropoff)
				}
				return
			}
			if !errors.Is(err, trip.ErrInvalid) || !strings.Contains(err.Error(), tc.error) {
				t.Fatalf("error %v, want ErrInvalid saying %q", err, tc.error)
			}
		})
	}
	ride := trip.CreateRequest{Pickup: trip.Place{Lat: 41.1, Lng: -8.6}, Dropoff: trip.Place{Lat: 41.2, Lng: -8.6}}
	if err := ride.Normalize(); err != nil {
		t.Fatal(err)
	}
	if s := ride.StopInputs(); len(s) != 2 || s[0].Kind != trip.StopPickup || s[1].Kind != trip.StopDrop || s[1].Location.Lat != 41.2 {
		t.Fatalf("a ride's stops: %+v", s)
	}
}

// TestStopList: insert, remove and reorder keep the stops that are no
// longer pending in place and refuse what would break the list.
func TestStopList(t *testing.T) {
	base := []trip.Stop{stop("s1", trip.StopPickup, trip.StopCompleted), stop("s2", trip.StopDrop, trip.StopArrived),
		stop("s3", trip.StopDrop, trip.StopPending), stop("s4", trip.StopDrop, trip.StopPending)}
	pos := func(n int) *int { return &n }
	if _, _, err := trip.InsertStop(base, stop("s5", trip.StopDrop, trip.StopPending), pos(1)); !errors.Is(err, trip.ErrInvalid) {
		t.Fatalf("insert before an arrived stop: %v", err)
	}
	got, at, err := trip.InsertStop(base, stop("s5", trip.StopDrop, trip.StopPending), pos(2))
	if err != nil || at != 2 || !slices.Equal(ids(got), []string{"s1", "s2", "s5", "s3", "s4"}) {
		t.Fatalf("insert at 2: %v %d %v", ids(got), at, err)
	}
	if _, err := trip.RemoveStop(base, 1); !errors.Is(err, trip.ErrStopStatus) {
		t.Fatalf("remove an arrived stop: %v", err)
	}
	if got, err := trip.RemoveStop(base, 2); err != nil || !slices.Equal(ids(got), []string{"s1", "s2", "s4"}) {
		t.Fatalf("remove s3: %v %v", ids(got), err)
	}
	if got, err := trip.ReorderStops(base, []string{"s4", "s3"}); err != nil || !slices.Equal(ids(got), []string{"s1", "s2", "s4", "s3"}) {
		t.Fatalf("reorder: %v %v", ids(got), err)
	}
	for _, order := range [][]string{{"s4"}, {"s4", "s4"}, {"s4", "s3", "s9"}} {
		if _, err := trip.ReorderStops(base, order); !errors.Is(err, trip.ErrInvalid) {
			t.Fatalf("reorder %v: %v, want ErrInvalid", order, err)
		}
	}
	if _, err := trip.ReorderStops(base, []string{"s2", "s3", "s4"}); !errors.Is(err, trip.ErrStopStatus) {
		t.Fatalf("reorder an arrived stop: %v, want ErrStopStatus", err)
	}
}

// TestCloseStop: a completed pickup puts the trip in progress, the last
// open stop closed (completed, failed or skipped) completes it.
func TestCloseStop(t *testing.T) {
	now := time.Now()
	tr := trip.Trip{Status: trip.StatusAssigned, Stops: []trip.Stop{stop("s1", trip.StopPickup, trip.StopPending),
		stop("s2", trip.StopDrop, trip.StopPending), stop("s3", trip.StopDrop, trip.StopPending)}}
	stops, to, act := trip.CloseStop(tr, 0, trip.StopCompleted, "", false, now)
	if to != trip.StatusInProgress || act != trip.ActPickup || stops[0].CompletedAt == nil || tr.Stops[0].Status != trip.StopPending {
		t.Fatalf("pickup: %v %s %s (input changed: %v)", stops[0], to, act, tr.Stops[0].Status)
	}
	tr.Stops, tr.Status = stops, trip.StatusInProgress
	stops, to, _ = trip.CloseStop(tr, 1, trip.StopFailed, "closed", false, now)
	if to != "" || stops[1].FailureReason != "closed" {
		t.Fatalf("fail s2: %+v %s", stops[1], to)
	}
	tr.Stops = stops
	stops, to, act = trip.CloseStop(tr, 2, trip.StopCompleted, "", true, now)
	if to != trip.StatusCompleted || act != trip.ActComplete || !stops[2].Override {
		t.Fatalf("last stop: %+v %s %s", stops[2], to, act)
	}
}

// TestPIN: six digits, hashed with the trip and the stop.
func TestPIN(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		p := trip.NewPIN()
		if len(p) != 6 || strings.Trim(p, "0123456789") != "" {
			t.Fatalf("pin %q", p)
		}
		seen[p] = true
	}
	if len(seen) < 45 {
		t.Fatalf("%d distinct PINs of 50", len(seen))
	}
	if trip.PINHash("t1", "s2", "123456") == trip.PINHash("t2", "s2", "123456") {
		t.Fatal("the hash does not depend on the trip")
	}
}

// FuzzStopInput: any JSON body of a stop decodes and validates without
// panicking, and a stop that validates makes a valid list after a pickup.
func FuzzStopInput(f *testing.F) {
	f.Add(`{"kind":"drop","location":{"lat":41.1,"lng":-8.6},"proof":{"pin":true}}`)
	f.Add(`{"kind":"pickup","location":{"lat":91,"lng":0},"window":{"from":"2026-01-01T00:00:00Z","to":"2025-01-01T00:00:00Z"}}`)
	f.Add(`{"kind":"drop","location":{"lat":1,"lng":1},"contact":{"name":"\xff"}}`)
	f.Fuzz(func(t *testing.T, body string) {
		var in trip.StopInput
		if json.Unmarshal([]byte(body), &in) != nil {
			return
		}
		if in.Validate("stop") != nil {
			return
		}
		pickup := trip.StopInput{Kind: trip.StopPickup, Location: trip.LatLng{Lat: 41.1, Lng: -8.6}}.Stop("s1")
		drop := trip.StopInput{Kind: trip.StopDrop, Location: trip.LatLng{Lat: 41.2, Lng: -8.6}}.Stop("s2")
		if err := trip.CheckStops([]trip.Stop{pickup, in.Stop("s3"), drop}); err != nil {
			t.Fatalf("a valid stop %+v breaks the list: %v", in, err)
		}
		if s := in.Stop("s3"); s.Status != trip.StopPending || (s.Proof != nil && s.Kind != trip.StopDrop) {
			t.Fatalf("stop %+v", s)
		}
	})
}

package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/trip"
)

// TestPolyline: the Google algorithm's own example, and a round trip at
// precision 5.
func TestPolyline(t *testing.T) {
	pts := []geo.Point{{Lat: 38.5, Lng: -120.2}, {Lat: 40.7, Lng: -120.95}, {Lat: 43.252, Lng: -126.453}}
	if got := dispatch.EncodePolyline(pts); got != "_p~iF~ps|U_ulLnnqC_mqNvxq`@" {
		t.Fatalf("encoded %q", got)
	}
	back, err := dispatch.DecodePolyline("_p~iF~ps|U_ulLnnqC_mqNvxq`@")
	if err != nil || len(back) != 3 {
		t.Fatalf("decoded %v %v", back, err)
	}
	for i := range pts {
		if math.Abs(back[i].Lat-pts[i].Lat) > 1e-5 || math.Abs(back[i].Lng-pts[i].Lng) > 1e-5 {
			t.Fatalf("point %d: %v, want %v", i, back[i], pts[i])
		}
	}
	if _, err := dispatch.DecodePolyline("_p~iF~ps|U_"); !errors.Is(err, dispatch.ErrInvalid) {
		t.Fatalf("truncated polyline: %v", err)
	}
}

type fixedPositions map[string]geo.Point

func (f fixedPositions) Get(_ context.Context, id string) (driver.State, error) {
	p, ok := f[id]
	if !ok {
		return driver.State{}, driver.ErrNotFound
	}
	return driver.State{ID: id, Location: &driver.Location{Lat: p.Lat, Lng: p.Lng}}, nil
}

// midPaths goes through the midpoint of every leg, except to refuse.
type midPaths struct{ refuse geo.Point }

func (m midPaths) Path(from, to geo.Point) ([]geo.Point, error) {
	if to == m.refuse {
		return nil, errors.New("off the map")
	}
	return []geo.Point{from, {Lat: (from.Lat + to.Lat) / 2, Lng: (from.Lng + to.Lng) / 2}, to}, nil
}

// TestRouterPlan: the stops by the trip's status, paths or straight legs,
// and the driver's position when known.
func TestRouterPlan(t *testing.T) {
	at := geo.Point{Lat: 41.14, Lng: -8.61}
	pickup := trip.Place{Lat: 41.15, Lng: -8.61}
	drop := trip.Place{Lat: 41.16, Lng: -8.60}
	tr := trip.Trip{ID: "t1", DriverID: "d1", Status: trip.StatusAssigned, Pickup: pickup, Dropoff: drop, Version: 3}
	onboard := tr
	onboard.Status = trip.StatusInProgress
	stranger := tr
	stranger.DriverID = "d2" // no known position
	// A delivery with stops: the pickup done, three drops, the second
	// skipped: through the open ones, in order.
	multi := onboard
	multi.Stops = []trip.Stop{
		{ID: "s1", Kind: trip.StopPickup, Location: trip.LatLng{Lat: pickup.Lat, Lng: pickup.Lng}, Status: trip.StopCompleted},
		{ID: "s2", Kind: trip.StopDrop, Location: trip.LatLng{Lat: 41.155, Lng: -8.605}, Status: trip.StopPending, PIN: "123456"},
		{ID: "s3", Kind: trip.StopDrop, Location: trip.LatLng{Lat: 41.157, Lng: -8.603}, Status: trip.StopSkipped},
		{ID: "s4", Kind: trip.StopDrop, Location: trip.LatLng{Lat: drop.Lat, Lng: drop.Lng}, Status: trip.StopPending},
	}
	for _, tc := range []struct {
		name   string
		r      dispatch.Router
		t      trip.Trip
		n      int
		source string
		kinds  string
	}{
		{"straight to pickup and drop", dispatch.Router{Positions: fixedPositions{"d1": at}}, tr, 3, "straight", "pickup,dropoff"},
		{"paths", dispatch.Router{Positions: fixedPositions{"d1": at}, Paths: midPaths{}}, tr, 5, "roads", "pickup,dropoff"},
		{"a leg off the map", dispatch.Router{Positions: fixedPositions{"d1": at}, Paths: midPaths{refuse: geo.Point{Lat: drop.Lat, Lng: drop.Lng}}}, tr, 4, "straight", "pickup,dropoff"},
		{"on board: to the drop", dispatch.Router{Positions: fixedPositions{"d1": at}}, onboard, 2, "straight", "dropoff"},
		{"position unknown: from the pickup", dispatch.Router{Positions: fixedPositions{}}, stranger, 2, "straight", "pickup,dropoff"},
		{"stops: the open ones in order", dispatch.Router{Positions: fixedPositions{"d1": at}}, multi, 3, "straight", "dropoff:s2,dropoff:s4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.r.Plan(context.Background(), tc.t, dispatch.RouteAccepted)
			if err != nil {
				t.Fatal(err)
			}
			pts, err := dispatch.DecodePolyline(r.Polyline)
			if err != nil || len(pts) != tc.n || r.Source != tc.source || r.Version != 3 || r.TripID != "t1" {
				t.Fatalf("%d points (%v), source %s, route %+v", len(pts), err, r.Source, r)
			}
			kinds := ""
			for i, s := range r.Stops {
				if i > 0 {
					kinds += ","
				}
				kinds += s.Kind
				if s.StopID != "" {
					kinds += ":" + s.StopID
				}
				if geo.Distance(pts[s.Index], geo.Point{Lat: s.Lat, Lng: s.Lng}) > 2 {
					t.Fatalf("stop %s at index %d is point %v", s.Kind, s.Index, pts[s.Index])
				}
			}
			if kinds != tc.kinds || r.Stops[len(r.Stops)-1].Index != len(pts)-1 {
				t.Fatalf("stops %+v", r.Stops)
			}
			if r.DistanceM <= 0 {
				t.Fatalf("distance %v", r.DistanceM)
			}
			if b, _ := json.Marshal(r); strings.Contains(string(b), "123456") {
				t.Fatalf("a PIN in the driver's route: %s", b)
			}
		})
	}
	if _, err := (dispatch.Router{Positions: fixedPositions{}}).Plan(context.Background(), trip.Trip{ID: "t"}, dispatch.RouteAccepted); !errors.Is(err, dispatch.ErrInvalid) {
		t.Fatalf("a trip without a driver: %v", err)
	}
}

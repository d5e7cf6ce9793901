package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/geo"
)

// routeOf decodes a trip.route command and its polyline.
func routeOf(t *testing.T, cmd client.Command) (dispatch.Route, []geo.Point) {
	t.Helper()
	var r dispatch.Route
	if err := json.Unmarshal(cmd.Data, &r); err != nil {
		t.Fatalf("trip.route %s: %v", cmd.Data, err)
	}
	pts, err := dispatch.DecodePolyline(r.Polyline)
	if err != nil || len(pts) < 2 || r.Precision != dispatch.RoutePrecision {
		t.Fatalf("trip.route polyline %q (precision %d): %d points, %v", r.Polyline, r.Precision, len(pts), err)
	}
	return r, pts
}

// TestTripRoute: after accept, and after an address change, the driver
// gets trip.route over the WebSocket and the REST channel alike (one
// command, one id): a polyline from near the driver through the pickup to
// the dropoff, along the synthetic map's roads or, without a map, the
// straight legs.
func TestTripRoute(t *testing.T) {
	for _, tc := range []struct{ name, mapFile string }{{"no map", ""}, {"synthetic map", "synthetic"}} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustClusterWith(t, 1, func(cfg *Config) { cfg.MapFile = tc.mapFile })
			ctx := context.Background()
			drv := c.driverID()
			d := dialDriver(t, c, drv, []string{c.base(0)}, nil)
			pings := pingsAt(time.Now().Add(-3*time.Second), 1, 3, time.Second)
			d.Locations(pings...)
			flush(t, d)
			at := geo.Point{Lat: pings[2].Lat, Lng: pings[2].Lng}
			rtok := c.token(t, "rider", "r-"+drv)
			tr := c.createTrip(t, 0, rtok)
			offer := nextCommand(t, d, dispatch.CmdOffer, 5*time.Second)
			if _, err := d.Act(ctx, "accept", tr, ""); err != nil {
				t.Fatal(err)
			}
			cmd := nextCommand(t, d, dispatch.CmdRoute, 5*time.Second)
			r, pts := routeOf(t, cmd)
			pickup := geo.Point{Lat: porto.lat, Lng: porto.lng}
			drop := geo.Point{Lat: porto.lat + 0.01, Lng: porto.lng + 0.01}
			if r.TripID != tr || r.Reason != dispatch.RouteAccepted || len(r.Stops) != 2 ||
				r.Stops[0].Kind != "pickup" || r.Stops[1].Kind != "dropoff" || r.Stops[1].Index != len(pts)-1 {
				t.Fatalf("route %+v", r)
			}
			if m := geo.Distance(pts[0], at); m > 5 {
				t.Fatalf("route starts %.0f m from the driver", m)
			}
			if m := geo.Distance(pts[r.Stops[0].Index], pickup); m > 5 {
				t.Fatalf("route's pickup point is %.0f m from the pickup", m)
			}
			if m := geo.Distance(pts[len(pts)-1], drop); m > 5 {
				t.Fatalf("route ends %.0f m from the dropoff", m)
			}
			if tc.mapFile == "" {
				if r.Source != dispatch.RouteStraight || len(pts) != 3 {
					t.Fatalf("without a map: %s with %d points, want the 3 of the straight legs", r.Source, len(pts))
				}
			} else {
				// Along the grid's roads: many more points than the legs'
				// ends, and longer than the straight legs.
				straight := geo.Distance(at, pickup) + geo.Distance(pickup, drop)
				if r.Source != dispatch.RouteRoads || len(pts) < 6 || r.DistanceM < straight*1.05 {
					t.Fatalf("with the synthetic map: %s with %d points, %.0f m (straight %.0f m)", r.Source, len(pts), r.DistanceM, straight)
				}
			}

			// The REST command channel has the same command, same id.
			page, err := client.New(c.base(0), c.token(t, "driver", drv), nil).DriverCommands(ctx, drv, offer.ID, 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, rc := range page.Commands {
				found = found || (rc.Type == dispatch.CmdRoute && rc.ID == cmd.ID && string(rc.Data) == string(cmd.Data))
			}
			if !found {
				t.Fatalf("REST channel lacks trip.route %s: %+v", cmd.ID, page.Commands)
			}
			if err := d.Ack(ctx, cmd.ID); err != nil {
				t.Fatal(err)
			}

			// An address change: a new route to the new dropoff.
			drop2 := geo.Point{Lat: porto.lat + 0.012, Lng: porto.lng - 0.004}
			tripAction(t, c, 0, rtok, tr, "dropoff", map[string]any{"lat": drop2.Lat, "lng": drop2.Lng, "address": "Rua Nova"})
			cmd2 := nextCommand(t, d, dispatch.CmdRoute, 5*time.Second)
			r2, pts2 := routeOf(t, cmd2)
			if cmd2.ID == cmd.ID || r2.Reason != dispatch.RouteAddressChanged || r2.Version <= r.Version {
				t.Fatalf("second route %s %+v after %s %+v", cmd2.ID, r2, cmd.ID, r)
			}
			if m := geo.Distance(pts2[len(pts2)-1], drop2); m > 5 {
				t.Fatalf("new route ends %.0f m from the new dropoff", m)
			}
			if !strings.HasPrefix(r2.Source, map[bool]string{true: "straight", false: "roads"}[tc.mapFile == ""]) {
				t.Fatalf("new route's source %s", r2.Source)
			}
		})
	}
}

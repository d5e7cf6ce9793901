package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/twpayne/go-polyline"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/trip"
)

// CmdRoute is the durable command that gives an assigned driver the path
// to drive: sent after accept and after every address change (Route).
const CmdRoute = "trip.route"

// Route reasons: why a trip.route was sent.
const (
	RouteAccepted       = "accepted"
	RouteAddressChanged = "address_changed"
)

// Route sources: how the path was drawn.
const (
	RouteRoads    = "roads"    // along the road graph's path
	RouteStraight = "straight" // straight legs: no map, or a leg off it
)

// RoutePrecision is the polyline's precision (decimal digits: 1e5, the
// Google encoded polyline's usual one, about a metre).
const RoutePrecision = 5

// Route is the data of a trip.route command: the path from the driver's
// position through the trip's remaining stops, as a Google encoded
// polyline.
type Route struct {
	TripID  string `json:"trip_id"`
	Version int64  `json:"version"` // the trip's version it was drawn for
	Reason  string `json:"reason"`  // RouteAccepted or RouteAddressChanged
	// Polyline is the path (Google encoded polyline of lat,lng at
	// Precision decimal digits), from the driver (or the pickup when its
	// position is unknown) to the last stop.
	Polyline  string     `json:"polyline"`
	Precision int        `json:"precision"`
	Source    string     `json:"source"` // RouteRoads or RouteStraight
	DistanceM float64    `json:"distance_m"`
	Stops     []RouteEnd `json:"stops"` // the stops it passes, in order
}

// RouteEnd is a stop a route passes: its kind and its index in the
// decoded polyline's points.
type RouteEnd struct {
	Kind   string  `json:"kind"`              // "pickup" or "dropoff"
	StopID string  `json:"stop_id,omitempty"` // the trip's stop (trips with stops)
	Lat    float64 `json:"lat"`
	Lng    float64 `json:"lng"`
	Index  int     `json:"index"`
}

// Paths finds a road path between two points (cmd adapts road.Graph):
// the points from the first to the last, or an error when a point is off
// the map or unreachable (that leg is then straight).
type Paths interface {
	Path(from, to geo.Point) ([]geo.Point, error)
}

// Positions read a driver's state: its latest position (driverredis).
type Positions interface {
	Get(ctx context.Context, driverID string) (driver.State, error)
}

// Router draws the routes sent to drivers. Paths nil: straight legs.
type Router struct {
	Paths     Paths
	Positions Positions
}

// Plan draws the route of trip t for its driver: from the driver's
// position through the trip's open stops in their order (a trip without
// stops: the pickup while it is ahead, assigned or arrived, and the
// dropoff).
func (r Router) Plan(ctx context.Context, t trip.Trip, reason string) (Route, error) {
	if t.DriverID == "" {
		return Route{}, fmt.Errorf("%w: trip %s has no driver", ErrInvalid, t.ID)
	}
	var pts []geo.Point
	if st, err := r.Positions.Get(ctx, t.DriverID); err == nil && st.Location != nil {
		pts = append(pts, geo.Point{Lat: st.Location.Lat, Lng: st.Location.Lng})
	} else if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return Route{}, err
	}
	stops := routeStops(t)
	rt := Route{TripID: t.ID, Version: t.Version, Reason: reason, Precision: RoutePrecision, Source: RouteRoads}
	if r.Paths == nil {
		rt.Source = RouteStraight
	}
	for _, s := range stops {
		if len(pts) == 0 {
			pts = append(pts, s.p)
		} else {
			from := pts[len(pts)-1]
			var leg []geo.Point
			if r.Paths != nil {
				if p, err := r.Paths.Path(from, s.p); err == nil && len(p) > 0 {
					leg = p
				}
			}
			if leg == nil {
				rt.Source = RouteStraight
				leg = []geo.Point{from}
			}
			// The leg's ends are the stop and where the last one ended,
			// exactly (a road path starts and ends at the snapped points).
			leg = append(append([]geo.Point{from}, leg...), s.p)
			for _, p := range leg[1:] {
				if last := pts[len(pts)-1]; p != last {
					rt.DistanceM += geo.Distance(last, p)
					pts = append(pts, p)
				}
			}
		}
		rt.Stops = append(rt.Stops, RouteEnd{Kind: s.kind, StopID: s.id, Lat: s.p.Lat, Lng: s.p.Lng, Index: len(pts) - 1})
	}
	rt.Polyline = EncodePolyline(pts)
	return rt, nil
}

// routeStop is a point a route goes through.
type routeStop struct {
	kind, id string
	p        geo.Point
}

// routeStops are the points t's route goes through after the driver's
// position: its open stops in order (a drop is a "dropoff"), or without
// stops the pickup while ahead and the dropoff.
func routeStops(t trip.Trip) []routeStop {
	var out []routeStop
	if len(t.Stops) > 0 {
		for _, s := range t.Stops {
			if s.Final() {
				continue
			}
			kind := "pickup"
			if s.Kind == trip.StopDrop {
				kind = "dropoff"
			}
			out = append(out, routeStop{kind, s.ID, geo.Point{Lat: s.Location.Lat, Lng: s.Location.Lng}})
		}
		return out
	}
	if t.Status == trip.StatusAssigned || t.Status == trip.StatusArrived || t.Status == trip.StatusRequested {
		out = append(out, routeStop{kind: "pickup", p: geo.Point{Lat: t.Pickup.Lat, Lng: t.Pickup.Lng}})
	}
	return append(out, routeStop{kind: "dropoff", p: geo.Point{Lat: t.Dropoff.Lat, Lng: t.Dropoff.Lng}})
}

// EncodePolyline is pts as a Google encoded polyline at RoutePrecision.
func EncodePolyline(pts []geo.Point) string {
	cs := make([][]float64, len(pts))
	for i, p := range pts {
		cs[i] = []float64{p.Lat, p.Lng}
	}
	return string(polyline.EncodeCoords(cs))
}

// DecodePolyline is the points of a Google encoded polyline at
// RoutePrecision (ErrInvalid when it is not one).
func DecodePolyline(s string) ([]geo.Point, error) {
	cs, rest, err := polyline.DecodeCoords([]byte(s))
	if err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("%w: not an encoded polyline", ErrInvalid)
	}
	pts := make([]geo.Point, len(cs))
	for i, c := range cs {
		pts[i] = geo.Point{Lat: c[0], Lng: c[1]}
	}
	return pts, nil
}

package main

import (
	"context"
	"flag"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/zone"
	"github.com/hextrack/hextrack/zone/zoneredis"
)

// openZones opens the zones in Redis (loaded now, so the first trip
// request already sees the service areas) and their tracker, which
// publishes the zone events.
func openZones(ctx context.Context, rdb redis.UniversalClient, cfg zoneredis.Config, pub zoneredis.Publisher) (*zoneredis.Store, *zoneredis.Tracker, error) {
	s := zoneredis.NewStore(rdb, cfg)
	if err := s.Reload(ctx); err != nil {
		return nil, nil, err
	}
	return s, zoneredis.NewTracker(s, pub), nil
}

// zoneFlags registers the zone limits (serve).
func zoneFlags(fs *flag.FlagSet, c *zone.Config) {
	fs.IntVar(&c.MaxVertices, "zone-max-vertices", envInt("HEXTRACK_ZONE_MAX_VERTICES", 1000), "most vertices of a zone, over all its rings (HEXTRACK_ZONE_MAX_VERTICES)")
	fs.Float64Var(&c.MaxAreaKM2, "zone-max-area", envFloat("HEXTRACK_ZONE_MAX_AREA_KM2", 2500), "largest zone area, km² (HEXTRACK_ZONE_MAX_AREA_KM2)")
	fs.DurationVar(&c.DwellAfter, "zone-dwell", envDur("HEXTRACK_ZONE_DWELL", 0), "dwell delay of a zone created without one; 0: 2m (HEXTRACK_ZONE_DWELL)")
}

// zonedDrivers tells the zone tracker of drivers set offline, so they
// leave the zones they are inside at once (zone.exited, reason offline).
type zonedDrivers struct {
	api.Drivers
	zones interface{ DriverOffline(driverID string) }
}

func (d zonedDrivers) SetStatus(ctx context.Context, driverID, status string) (driver.State, error) {
	st, err := d.Drivers.SetStatus(ctx, driverID, status)
	if err == nil && st.Status == driver.StatusOffline {
		d.zones.DriverOffline(driverID)
	}
	return st, err
}

// zoneServes is what servedTrips asks (zoneredis.Store).
type zoneServes interface {
	Serves(ctx context.Context, p geo.Point) error
}

var _ zoneServes = (*zoneredis.Store)(nil)

// servedTrips refuses trip requests (and drop-off changes) whose pickup or
// drop-off lies outside every service_area zone, when one exists
// (zone.ErrOutsideServiceArea: 422 outside_service_area).
type servedTrips struct {
	api.Trips
	zones zoneServes
}

func (t servedTrips) Create(ctx context.Context, a trip.Actor, idemKey string, r trip.CreateRequest) (trip.Snapshot, bool, error) {
	pts := []geo.Point{{Lat: r.Pickup.Lat, Lng: r.Pickup.Lng}, {Lat: r.Dropoff.Lat, Lng: r.Dropoff.Lng}}
	if len(r.Stops) > 0 { // a request with stops names no pickup or dropoff
		pts = pts[:0]
		for _, s := range r.Stops {
			pts = append(pts, geo.Point{Lat: s.Location.Lat, Lng: s.Location.Lng})
		}
	}
	for _, p := range pts {
		if err := t.zones.Serves(ctx, p); err != nil {
			return trip.Snapshot{}, false, err
		}
	}
	return t.Trips.Create(ctx, a, idemKey, r)
}

func (t servedTrips) ChangeDropoff(ctx context.Context, id string, a trip.Actor, p trip.Place, ifMatch int64) (trip.Snapshot, error) {
	if err := t.zones.Serves(ctx, geo.Point{Lat: p.Lat, Lng: p.Lng}); err != nil {
		return trip.Snapshot{}, err
	}
	return t.Trips.ChangeDropoff(ctx, id, a, p, ifMatch)
}

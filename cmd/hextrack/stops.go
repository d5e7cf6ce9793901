package main

import (
	"context"
	"flag"
	"time"

	"github.com/hextrack/hextrack/api/stops"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// StopSettings are the checks and arrival thresholds of trips' stops
// (tripredis.Config's Stop* fields; zero: tripredis's defaults).
type StopSettings struct {
	CompleteRadius float64       // HEXTRACK_STOP_COMPLETE_RADIUS, --stop-complete-radius: m, default 150
	ApproachingETA time.Duration // HEXTRACK_STOP_APPROACHING_ETA, --stop-approaching-eta: default 2m
	ArrivedRadius  float64       // HEXTRACK_STOP_ARRIVED_RADIUS, --stop-arrived-radius: m, default 50
	ArrivedDwell   time.Duration // HEXTRACK_STOP_ARRIVED_DWELL, --stop-arrived-dwell: default 20s
}

// stopFlags registers the stop settings (serve).
func stopFlags(fs *flag.FlagSet, c *StopSettings) {
	fs.Float64Var(&c.CompleteRadius, "stop-complete-radius", envFloat("HEXTRACK_STOP_COMPLETE_RADIUS", 150),
		"a stop completed farther than this (m) from it is refused (422 too_far_from_stop) unless ops override (HEXTRACK_STOP_COMPLETE_RADIUS)")
	fs.DurationVar(&c.ApproachingETA, "stop-approaching-eta", envDur("HEXTRACK_STOP_APPROACHING_ETA", 2*time.Minute),
		"stop.approaching fires once when the ETA to the next stop first falls under this (HEXTRACK_STOP_APPROACHING_ETA)")
	fs.Float64Var(&c.ArrivedRadius, "stop-arrived-radius", envFloat("HEXTRACK_STOP_ARRIVED_RADIUS", 50),
		"stop.arrived fires once the driver has been within this (m) of the next stop for --stop-arrived-dwell (HEXTRACK_STOP_ARRIVED_RADIUS)")
	fs.DurationVar(&c.ArrivedDwell, "stop-arrived-dwell", envDur("HEXTRACK_STOP_ARRIVED_DWELL", 20*time.Second),
		"how long the driver stays within --stop-arrived-radius before stop.arrived (HEXTRACK_STOP_ARRIVED_DWELL)")
}

// apply sets the stop fields of a trip service's configuration.
func (s StopSettings) apply(c tripredis.Config) tripredis.Config {
	c.StopCompleteRadius, c.StopApproachingETA = s.CompleteRadius, s.ApproachingETA
	c.StopArrivedRadius, c.StopArrivedDwell = s.ArrivedRadius, s.ArrivedDwell
	return c
}

var _ stops.Service = (*tripredis.Stops)(nil)

// servedStops refuses a stop added outside every service_area zone, when
// one exists (as servedTrips does for trip requests).
type servedStops struct {
	stops.Service
	zones zoneServes
}

func (s servedStops) Add(ctx context.Context, id string, a trip.Actor, in trip.StopInput, position *int, ifMatch int64) (trip.Snapshot, error) {
	if err := s.zones.Serves(ctx, geo.Point{Lat: in.Location.Lat, Lng: in.Location.Lng}); err != nil {
		return trip.Snapshot{}, err
	}
	return s.Service.Add(ctx, id, a, in, position, ifMatch)
}

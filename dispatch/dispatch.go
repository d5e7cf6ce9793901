package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/trip"
)

// ErrInvalid: a malformed or unknown command ID or cursor (400).
var ErrInvalid = errors.New("invalid command id")

// Driver command types, sent on a driver's feed "driver:<id>".
const (
	CmdOffer          = "offer"
	CmdCancelled      = "trip.cancelled"
	CmdReassigned     = "trip.reassigned"
	CmdAddressChanged = "trip.address_changed"
	// CmdReplaced is live-only: a newer connection of the driver took over.
	CmdReplaced = "session.replaced"
	// CmdSuspended is live-only: ops suspended the driver; its open
	// WebSocket, on any node, closes (driverws.CloseSuspended).
	CmdSuspended = "driver.suspended"
)

// EventArriving is the durable trip event sent once when the driver's ETA
// to the pickup falls under the dispatcher's ArrivingETA.
const EventArriving = "trip.arriving"

// DriverTopic is the feed topic of a driver's command channel.
func DriverTopic(driverID string) string { return "driver:" + driverID }

// Offer is the data of an offer command.
type Offer struct {
	TripID    string     `json:"trip_id"`
	OfferNo   int64      `json:"offer_no"`
	Kind      string     `json:"kind"`
	Pickup    trip.Place `json:"pickup"`
	Dropoff   trip.Place `json:"dropoff"`
	ETAS      float64    `json:"eta_s"`
	DistanceM float64    `json:"distance_m"`
	ExpiresAt time.Time  `json:"expires_at"`
}

// Trips is what dispatch needs of trips (trip.Service implements it): the
// trip, the drivers to skip, expiry, and for arrival detection the trip's
// pickup and the arrived transition.
type Trips interface {
	Get(ctx context.Context, id string) (trip.Trip, error)
	Excluded(ctx context.Context, id string) ([]string, error)
	Expire(ctx context.Context, id string) (trip.Snapshot, error)
	ArrivalView(ctx context.Context, id string) (trip.Trip, error)
	Act(ctx context.Context, id string, a trip.Actor, action, reason string) (trip.Snapshot, error)
}

// Finder finds fresh available drivers near a point (driver.Service).
type Finder interface {
	Nearby(ctx context.Context, q driver.NearbyQuery) ([]driver.Nearby, error)
}

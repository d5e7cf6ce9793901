package trip

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Trip statuses.
const (
	StatusAwaitingPayment = "awaiting_payment"
	StatusRequested       = "requested"
	StatusAssigned        = "driver_assigned"
	StatusArrived         = "driver_arrived"
	StatusInProgress      = "in_progress"
	StatusCompleted       = "completed"
	StatusCancelled       = "cancelled"
	StatusExpired         = "expired"
)

// Terminal reports whether no transition leaves status.
func Terminal(status string) bool {
	return status == StatusCompleted || status == StatusCancelled || status == StatusExpired
}

// Trip kinds and payment methods.
const (
	KindRide     = "ride"
	KindDelivery = "delivery"

	PaymentCash   = "cash"
	PaymentOnline = "online"
)

// Event types this package appends to a trip's feed (durable) or publishes
// live (trip.location).
const (
	EventCreated        = "trip.created"
	EventStatus         = "trip.status"
	EventAssigned       = "trip.assigned"
	EventCancelled      = "trip.cancelled"
	EventAddressChanged = "trip.address_changed"
	EventMessage        = "trip.message"
	EventLocation       = "trip.location"
)

// Topic returns the feed topic of a trip.
func Topic(tripID string) string { return "trip:" + tripID }

// Place is a pickup or dropoff point.
type Place struct {
	Lat     float64 `json:"lat"`
	Lng     float64 `json:"lng"`
	Address string  `json:"address,omitempty"`
}

// MaxAddressLen bounds a place's address, in runes.
const MaxAddressLen = 300

// Validate checks a place named name ("pickup", "dropoff"): lat and lng
// within range and not both zero, an address of valid UTF-8 of at most
// MaxAddressLen runes. It returns ErrInvalid otherwise.
func (p Place) Validate(name string) error {
	if math.IsNaN(p.Lat) || math.IsNaN(p.Lng) || p.Lat < -90 || p.Lat > 90 || p.Lng < -180 || p.Lng > 180 {
		return fmt.Errorf("%w: %s lat must be within [-90,90] and lng within [-180,180]", ErrInvalid, name)
	}
	if p.Lat == 0 && p.Lng == 0 {
		return fmt.Errorf("%w: %s lat and lng are required", ErrInvalid, name)
	}
	if !utf8.ValidString(p.Address) || utf8.RuneCountInString(p.Address) > MaxAddressLen {
		return fmt.Errorf("%w: %s address must be valid UTF-8 of at most %d characters", ErrInvalid, name, MaxAddressLen)
	}
	return nil
}

// Trip is a ride or a delivery.
type Trip struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Status   string `json:"status"`
	RiderID  string `json:"rider_id"`
	DriverID string `json:"driver_id,omitempty"`
	Pickup   Place  `json:"pickup"`
	Dropoff  Place  `json:"dropoff"`
	// Stops are the trip's stops in order (a ride: its pickup and its
	// dropoff); Pickup is the first pickup, Dropoff the last drop.
	Stops        []Stop    `json:"stops"`
	Payment      string    `json:"payment"`
	CancelReason string    `json:"cancel_reason,omitempty"`
	CancelledBy  string    `json:"cancelled_by,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	// Version increases by one with every transition or address change.
	Version int64 `json:"version"`
}

// Location is the latest fix of a trip's driver. Seq increases by one with
// every stored fix of the trip (whoever drives it): a client keeps the fix
// with the highest Seq and drops older ones.
type Location struct {
	Seq      int64     `json:"seq"`
	DriverID string    `json:"driver_id"`
	Lat      float64   `json:"lat"`
	Lng      float64   `json:"lng"`
	TS       time.Time `json:"ts"`
	Heading  *float64  `json:"heading,omitempty"`
	Speed    *float64  `json:"speed,omitempty"`
}

// DriverRef names a trip's driver in a snapshot.
type DriverRef struct {
	ID string `json:"id"`
}

// Snapshot is the full state of a trip as clients see it: everything up to
// and including the event FeedPosition; events after it follow on the feed.
type Snapshot struct {
	Trip         Trip            `json:"trip"`
	Driver       *DriverRef      `json:"driver"`
	Location     *Location       `json:"location"`
	ETA          json.RawMessage `json:"eta"`
	Version      int64           `json:"version"`
	FeedPosition string          `json:"feed_position"`
	// TrackingLost: the trip's live state is gone while it was under way
	// (its Redis lost it: make run's embedded Redis restarted, or its keys
	// were deleted), so this is its last archived state, which nothing
	// moves on any more. Never set for a trip the live store holds.
	TrackingLost bool `json:"tracking_lost,omitempty"`

	etaRV int64 // route version of ETA (0: none), for the ETag
}

// SetETA sets the snapshot's ETA and its route version (0: none), which
// the ETag carries.
func (s *Snapshot) SetETA(eta json.RawMessage, routeVersion int64) {
	s.ETA, s.etaRV = eta, routeVersion
}

// ETag is a strong validator of the snapshot's content apart from
// FeedPosition: it changes with the version, the location sequence and the
// ETA's route version. Its form is "<version>.<location seq>" (quoted),
// with ".<route version>" appended when the snapshot has an ETA; If-Match
// parsing accepts it as well as a bare version.
func (s Snapshot) ETag() string {
	var seq int64
	if s.Location != nil {
		seq = s.Location.Seq
	}
	tag := `"` + strconv.FormatInt(s.Version, 10) + "." + strconv.FormatInt(seq, 10)
	if s.etaRV > 0 {
		tag += "." + strconv.FormatInt(s.etaRV, 10)
	}
	return tag + `"`
}

// ParseVersion parses an If-Match value: a version ("3"), quoted or weak
// (W/"3"), or an ETag of a snapshot ("3.17"); "*" matches any version (ok
// with any false). Anything else is ErrInvalid.
func ParseVersion(s string) (v int64, any bool, err error) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return 0, true, nil
	}
	s = strings.TrimPrefix(s, "W/")
	s = strings.Trim(s, `"`)
	s, _, _ = strings.Cut(s, ".")
	v, err = strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 || len(s) > 19 {
		return 0, false, fmt.Errorf("%w: If-Match must be the trip version", ErrInvalid)
	}
	return v, false, nil
}

// CreateRequest is the body of a new trip: a pickup and a dropoff (a
// ride's two stops), or Stops (1 to MaxStops pickups and drops, the first a
// pickup).
type CreateRequest struct {
	Kind    string      `json:"kind"`
	Pickup  Place       `json:"pickup"`
	Dropoff Place       `json:"dropoff"`
	Stops   []StopInput `json:"stops,omitempty"`
	Payment string      `json:"payment"`
}

// Normalize fills defaults (a cash ride) and validates the request
// (ErrInvalid).
func (r *CreateRequest) Normalize() error {
	if r.Kind == "" {
		r.Kind = KindRide
	}
	if r.Payment == "" {
		r.Payment = PaymentCash
	}
	if r.Kind != KindRide && r.Kind != KindDelivery {
		return fmt.Errorf("%w: kind must be %q or %q", ErrInvalid, KindRide, KindDelivery)
	}
	if r.Payment != PaymentCash && r.Payment != PaymentOnline {
		return fmt.Errorf("%w: payment must be %q or %q", ErrInvalid, PaymentCash, PaymentOnline)
	}
	if len(r.Stops) > 0 {
		return r.normalizeStops()
	}
	if err := r.Pickup.Validate("pickup"); err != nil {
		return err
	}
	return r.Dropoff.Validate("dropoff")
}

// InitialStatus is a new trip's status: online-paid deliveries wait for
// the payment first.
func (r CreateRequest) InitialStatus() string {
	if r.Kind == KindDelivery && r.Payment == PaymentOnline {
		return StatusAwaitingPayment
	}
	return StatusRequested
}

// ActCreate is the action of a new trip (Change.Action, metrics).
const ActCreate = "create"

// MaxIdempotencyKey bounds an Idempotency-Key's length.
const MaxIdempotencyKey = 255

// ValidID reports whether id can be a trip ID (also used for rider, driver
// and message IDs: 1-64 of [A-Za-z0-9_-]). Every request naming a trip
// checks one: spelled out, no regexp.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !idByte(id[i]) {
			return false
		}
	}
	return true
}

// idByte: c is one of [A-Za-z0-9_-].
func idByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-'
}

// CheckID returns ErrInvalid unless id is a valid trip ID (ValidID).
func CheckID(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: trip id must be 1-64 characters of [A-Za-z0-9_-]", ErrInvalid)
	}
	return nil
}

// Crumb is one breadcrumb of a trip's path.
type Crumb struct {
	Lat float64   `json:"lat"`
	Lng float64   `json:"lng"`
	TS  time.Time `json:"ts"`
}

// Share is a share link: a viewer token (minted by the api with ID as its
// jti and Trip as its scope) that opens one trip until ExpiresAt or until
// revoked.
type Share struct {
	ID        string    `json:"id"`
	Trip      string    `json:"trip_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

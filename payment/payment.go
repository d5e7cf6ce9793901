package payment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/trip"
)

// Payment statuses. Succeeded and failed are final: no event moves a
// payment out of them.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// EventStatus is the durable event appended to the trip's feed on every
// change of its payment (created pending, succeeded, failed).
const EventStatus = "payment.status"

// Errors of payments (see error.go for the trip errors they sit beside).
var (
	// ErrNotFound: no such payment (404).
	ErrNotFound = errors.New("payment not found")
	// ErrSignature: a webhook whose Hextrack-Signature is missing, garbled,
	// stale or made with none of the configured secrets (401).
	ErrSignature = errors.New("invalid webhook signature")
	// ErrInvalidEvent: a correctly signed webhook whose body is not a
	// payment event (400).
	ErrInvalidEvent = errors.New("invalid webhook event")
)

// Payment is the online payment of a delivery. Amount is in minor units of
// Currency (cents).
type Payment struct {
	ID          string    `json:"id"`
	TripID      string    `json:"trip_id"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Status      string    `json:"status"`
	CheckoutURL string    `json:"checkout_url"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// EventID is the webhook event that made the payment final.
	EventID string `json:"event_id,omitempty"`
	// Version increases by one with every status change (1 when created).
	Version int64 `json:"version"`
	// RiderID is the trip's rider, who alone (with ops and the system)
	// may see the payment; never sent.
	RiderID string `json:"-"`
}

// Final reports whether the payment's status can no longer change.
func (p Payment) Final() bool { return p.Status == StatusSucceeded || p.Status == StatusFailed }

// ETag is a strong validator of the payment: "p<version>" (quoted).
func (p Payment) ETag() string { return `"p` + strconv.FormatInt(p.Version, 10) + `"` }

// Trips is what payments need of the trip service (tripredis.Service): the
// trip, its hash key (a payment and its trip change in one script on the
// trip's slot) and the report of a trip change that script made.
type Trips interface {
	Get(ctx context.Context, id string) (trip.Trip, error)
	Key(id string) string
	Changed(ctx context.Context, c trip.Change)
}

// paymentID: "pay_<16 hex>_<trip id>". The trip ID inside lets every
// lookup go straight to the keys of the trip's slot (one read to poll).
var paymentIDPattern = regexp.MustCompile(`^pay_[0-9a-f]{16}_([A-Za-z0-9_-]{1,64})$`)

// NewID returns a new payment ID of trip tripID.
func NewID(tripID string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "pay_" + hex.EncodeToString(b[:]) + "_" + tripID
}

// TripOf returns the trip ID inside a payment ID; ok is false for a
// malformed ID.
// It is paymentIDPattern spelled out (every poll of a payment calls it).
func TripOf(id string) (tripID string, ok bool) {
	const head = len("pay_") + 16 + len("_")
	if len(id) <= head || len(id) > head+64 || id[:4] != "pay_" || id[head-1] != '_' {
		return "", false
	}
	for i := 4; i < head-1; i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	if !trip.ValidID(id[head:]) {
		return "", false
	}
	return id[head:], true
}

// Price returns the amount (minor units) of a delivery from pickup to
// dropoff: baseFare + perKm per straight-line km, rounded to the unit.
func Price(pickup, dropoff trip.Place, baseFare, perKm int64) int64 {
	km := geo.Distance(geo.Point{Lat: pickup.Lat, Lng: pickup.Lng}, geo.Point{Lat: dropoff.Lat, Lng: dropoff.Lng}) / 1000
	return baseFare + int64(math.Round(float64(perKm)*km))
}

// CheckAccess: a payment is seen by its trip's rider, ops and the system;
// anyone else gets trip.ErrForbidden.
func (p Payment) CheckAccess(a trip.Actor) error {
	switch {
	case a.Role == trip.RoleOps || a.Role == trip.RoleSystem:
	case a.Role == trip.RoleRider && a.ID != "" && a.ID == p.RiderID:
	default:
		return fmt.Errorf("%w: %s may not see payment %s", trip.ErrForbidden, a.Role, clip(p.ID))
	}
	return nil
}

// clip shortens an ID quoted in an error.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

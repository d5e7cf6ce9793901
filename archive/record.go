package archive

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Status values the archive itself reads: the driver statuses that end a
// shift (driver.StatusOffline, driver.StatusSuspended: ops suspended the
// driver) and the trip status counted as completed in a driver's days
// (trip.StatusCompleted). Every other status is stored as given.
const (
	StatusOffline   = "offline"
	StatusSuspended = "suspended"
	StatusCompleted = "completed"
)

// Online reports whether a driver of this status is on a shift: any
// status but offline and suspended ("": nothing known, not online).
func Online(status string) bool {
	return status != "" && status != StatusOffline && status != StatusSuspended
}

// Event is one durable feed event as archived: the envelope every transport
// sends, keyed by (Topic, ID). Archiving the same event twice (a
// redelivery) keeps the first copy.
type Event struct {
	// Topic is the feed topic ("trip:<id>", "driver:<id>", "ops").
	Topic string
	// ID is the event's stream ID as feed hands it out ("1700000000000-0");
	// within a topic IDs order events.
	ID string
	// Type is the event type ("trip.status", "payment.status", …).
	Type string
	// TripID is the trip the event is about ("" if none), also for events
	// of other topics (e.g. a driver command about the trip).
	TripID string
	// Data is the event's data JSON, served back byte for byte. Nil is
	// stored as null.
	Data json.RawMessage
	// TS is when the publisher created the event (the envelope's ts).
	TS time.Time
}

// Validate checks what the store needs of an event: a topic, an ID in the
// feed's form, a type, valid JSON data and a time.
func (e Event) Validate() error {
	switch {
	case !validText(e.Topic, 200):
		return fmt.Errorf("%w: event topic must be 1-200 bytes of UTF-8", ErrInvalid)
	case !validText(e.Type, 100):
		return fmt.Errorf("%w: event %s %s: type must be 1-100 bytes of UTF-8", ErrInvalid, e.Topic, e.ID)
	case e.TripID != "" && !ValidID(e.TripID):
		return fmt.Errorf("%w: event %s %s: trip id must be 1-64 of [A-Za-z0-9_-]", ErrInvalid, e.Topic, e.ID)
	case e.Data != nil && !json.Valid(e.Data):
		return fmt.Errorf("%w: event %s %s: data is not valid JSON", ErrInvalid, e.Topic, e.ID)
	case e.TS.IsZero():
		return fmt.Errorf("%w: event %s %s: ts is required", ErrInvalid, e.Topic, e.ID)
	}
	if _, err := ParseEventID(e.ID); err != nil || !strings.Contains(e.ID, "-") {
		return fmt.Errorf("%w: event %s: id %q is not <ms>-<seq>", ErrInvalid, e.Topic, clip(e.ID))
	}
	return nil
}

// Trip is a trip's record: what lists, receipts and a trip read after its
// Redis keys expired are served from. It is upserted at every state change;
// a copy with a lower Version than the stored one is ignored, so a late
// redelivery never rolls a trip back. CreatedAt is set by the first copy
// stored and never changes: it orders trip lists, so a cursor stays valid
// while trips change.
type Trip struct {
	ID       string
	Kind     string
	RiderID  string
	DriverID string // the latest driver; "" while none
	Status   string
	// Version is the trip's version (trip.Trip.Version).
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// EndedAt is when the trip reached a terminal status; zero while it runs.
	EndedAt time.Time
	// Fare is the price in minor units of Currency (0 and "" while unknown).
	Fare     int64
	Currency string
	// DistanceM is the distance driven along the trail, in metres, as the
	// writer computed it (0 while unknown).
	DistanceM float64
	// Snapshot is the trip as the API shows it at Version (a trip.Snapshot
	// JSON): the final record once the trip ended. Served back byte for byte.
	Snapshot json.RawMessage
}

// Validate checks a trip record.
func (t Trip) Validate() error {
	switch {
	case !ValidID(t.ID):
		return fmt.Errorf("%w: trip id must be 1-64 of [A-Za-z0-9_-]", ErrInvalid)
	case !ValidID(t.RiderID):
		return fmt.Errorf("%w: trip %s: rider id must be 1-64 of [A-Za-z0-9_-]", ErrInvalid, t.ID)
	case t.DriverID != "" && !ValidID(t.DriverID):
		return fmt.Errorf("%w: trip %s: driver id must be 1-64 of [A-Za-z0-9_-]", ErrInvalid, t.ID)
	case !validToken(t.Status) || len(t.Kind) > 32:
		return fmt.Errorf("%w: trip %s: status must be 1-32 of [a-z_]", ErrInvalid, t.ID)
	case t.Version < 0 || t.Fare < 0 || math.IsNaN(t.DistanceM) || t.DistanceM < 0:
		return fmt.Errorf("%w: trip %s: version, fare and distance must not be negative", ErrInvalid, t.ID)
	case t.CreatedAt.IsZero() || t.UpdatedAt.IsZero():
		return fmt.Errorf("%w: trip %s: created and updated times are required", ErrInvalid, t.ID)
	case len(t.Currency) > 3:
		return fmt.Errorf("%w: trip %s: currency must be an ISO 4217 code", ErrInvalid, t.ID)
	case t.Snapshot != nil && !json.Valid(t.Snapshot):
		return fmt.Errorf("%w: trip %s: snapshot is not valid JSON", ErrInvalid, t.ID)
	}
	return nil
}

// Point is one accepted GPS fix of a trip's driver: the trail (every fix
// the ingest accepted while the driver drove the trip, raw; simplified
// only on read). Seq numbers the trip's trail points in the order they
// were stored (1, 2, …: the tracker's per-trip trail counter, not
// trip.Location.Seq, which counts only the fixes that became the
// location), unique within the trip, so archiving a fix twice keeps one.
// Order a trail by Seq (arrival) or TS (when measured): a fix that arrived
// late has a higher Seq than fixes measured after it.
type Point struct {
	TripID   string
	Seq      int64
	DriverID string
	Lat, Lng float64
	TS       time.Time
	// Optional readings; nil when the driver's app did not send them.
	Accuracy, Speed, Heading *float64
}

// Validate checks a trail point.
func (p Point) Validate() error {
	switch {
	case !ValidID(p.TripID) || !ValidID(p.DriverID):
		return fmt.Errorf("%w: point: trip and driver ids must be 1-64 of [A-Za-z0-9_-]", ErrInvalid)
	case p.Seq < 1:
		return fmt.Errorf("%w: point %s/%d: seq must be positive", ErrInvalid, p.TripID, p.Seq)
	case math.IsNaN(p.Lat) || math.IsNaN(p.Lng) || p.Lat < -90 || p.Lat > 90 || p.Lng < -180 || p.Lng > 180:
		return fmt.Errorf("%w: point %s/%d: lat/lng out of range", ErrInvalid, p.TripID, p.Seq)
	case p.TS.IsZero():
		return fmt.Errorf("%w: point %s/%d: ts is required", ErrInvalid, p.TripID, p.Seq)
	}
	for _, v := range []*float64{p.Accuracy, p.Speed, p.Heading} {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
			return fmt.Errorf("%w: point %s/%d: readings must be finite", ErrInvalid, p.TripID, p.Seq)
		}
	}
	return nil
}

// Entry is one line of the payments ledger: a payment's state as it was
// recorded (created, succeeded, failed…) or a webhook event as it was
// received, with its outcome. Entries are never updated in place: a change
// is a new entry, and an entry whose ID is already in the ledger is a
// redelivery and is dropped.
type Entry struct {
	// ID is the entry's idempotency key, chosen by the writer and unique
	// over the ledger: "<payment id>:v<version>" for a payment state (a
	// payment.status event), "<payment id>:w<seq>" for a webhook event
	// stored (seq numbers the payment's stored webhook events; a gateway's
	// redelivery of an event ID is not stored again, so it is no entry).
	ID string
	// Kind is what the entry records: EntryPayment or EntryWebhook.
	Kind      string
	PaymentID string
	TripID    string
	// Amount in minor units of Currency.
	Amount   int64
	Currency string
	// Status is the payment's status after this entry.
	Status string
	// Outcome is a webhook's outcome (applied, ignored, conflict,
	// mismatch); "" for a payment entry. Amount and Currency of a webhook
	// entry are what the event claimed.
	Outcome string
	At      time.Time
	// Body is the raw webhook body, or the payment's JSON; byte for byte.
	Body json.RawMessage
}

// Ledger entry kinds.
const (
	EntryPayment = "payment"
	EntryWebhook = "webhook"
)

// Validate checks a ledger entry.
func (e Entry) Validate() error {
	switch {
	case !validText(e.ID, 200):
		return fmt.Errorf("%w: ledger entry id must be 1-200 bytes of UTF-8", ErrInvalid)
	case e.Kind != EntryPayment && e.Kind != EntryWebhook:
		return fmt.Errorf("%w: ledger entry %s: kind must be %q or %q", ErrInvalid, e.ID, EntryPayment, EntryWebhook)
	case !validText(e.PaymentID, 200) || (e.TripID != "" && !ValidID(e.TripID)):
		return fmt.Errorf("%w: ledger entry %s: payment id required, trip id 1-64 of [A-Za-z0-9_-]", ErrInvalid, e.ID)
	case len(e.Currency) > 3 || len(e.Status) > 32 || len(e.Outcome) > 32:
		return fmt.Errorf("%w: ledger entry %s: currency, status or outcome too long", ErrInvalid, e.ID)
	case e.At.IsZero():
		return fmt.Errorf("%w: ledger entry %s: time is required", ErrInvalid, e.ID)
	case e.Body != nil && !json.Valid(e.Body):
		return fmt.Errorf("%w: ledger entry %s: body is not valid JSON", ErrInvalid, e.ID)
	}
	return nil
}

// StatusChange is a driver's status as it changed (available, on_trip,
// offline…): the status history, from which shifts are derived. A change
// archived twice (same driver, time and status) is kept once.
type StatusChange struct {
	DriverID string
	Status   string
	// TripID is the trip that made the driver busy (on_trip), else "".
	TripID string
	// At is when Redis made the change, in microseconds whose last three
	// digits order changes within one millisecond.
	At time.Time
}

// Validate checks a status change.
func (c StatusChange) Validate() error {
	switch {
	case !ValidID(c.DriverID):
		return fmt.Errorf("%w: status change: driver id must be 1-64 of [A-Za-z0-9_-]", ErrInvalid)
	case !validToken(c.Status):
		return fmt.Errorf("%w: status change of %s: status must be 1-32 of [a-z_]", ErrInvalid, c.DriverID)
	case c.TripID != "" && !ValidID(c.TripID):
		return fmt.Errorf("%w: status change of %s: trip id must be 1-64 of [A-Za-z0-9_-]", ErrInvalid, c.DriverID)
	case c.At.IsZero():
		return fmt.Errorf("%w: status change of %s: time is required", ErrInvalid, c.DriverID)
	}
	return nil
}

// Shift is a span a driver was online (any status but offline). End is zero
// while the shift is still open as far as the archive knows.
type Shift struct {
	DriverID   string
	Start, End time.Time
}

// Day is a driver's trips on one UTC day: how many were created, how many
// completed, and the distance archived for them.
type Day struct {
	Date      time.Time // 00:00 UTC
	Trips     int64
	Completed int64
	DistanceM float64
}

// PruneResult counts what a prune removed.
type PruneResult struct {
	Events, Points, StatusChanges int64
}

// Micros returns t as the archive stores it: unix microseconds. Every time
// is truncated to the microsecond on the way in (PostgreSQL's precision),
// so a time read back equals Time(Micros(t)).
func Micros(t time.Time) int64 { return t.UnixMicro() }

// Time is the inverse of Micros, in UTC.
func Time(us int64) time.Time { return time.UnixMicro(us).UTC() }

// ValidID reports whether id can be a trip, rider, driver or payment ID:
// 1-64 of [A-Za-z0-9_-] (the rule of trip.ValidID, kept here so archive
// imports no other hextrack package).
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validToken: a status word, 1-32 of [a-z_].
func validToken(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('a' <= s[i] && s[i] <= 'z' || s[i] == '_') {
			return false
		}
	}
	return true
}

func validText(s string, max int) bool {
	return s != "" && len(s) <= max && utf8.ValidString(s)
}

package archive

import (
	"fmt"
	"time"
)

// Page sizes and windows of the queries. A limit of 0 means the default; a
// limit above the maximum is ErrInvalidLimit, never silently clipped, so a
// client learns the bound.
const (
	DefaultLimit = 50
	MaxLimit     = 200

	DefaultEventLimit = 100
	MaxEventLimit     = 1000 // the feed's long-poll bound

	DefaultTrailLimit = 1000
	MaxTrailLimit     = 10000

	// MaxLedgerEntries bounds the ledger of one trip that a read returns.
	MaxLedgerEntries = 1000

	// MaxWindow bounds a driver query's time range (shifts, days).
	MaxWindow = 93 * 24 * time.Hour
)

// TripQuery selects trips, newest first (by CreatedAt, then ID). Empty
// fields do not filter. From is inclusive and To exclusive; either may be
// zero (unbounded).
type TripQuery struct {
	RiderID  string
	DriverID string
	Status   string
	From, To time.Time
	Limit    int
	// Cursor is the previous page's Next ("" for the first page).
	Cursor string
}

// TripPage is one page of trips; Next is the cursor of the following page,
// "" when this is the last.
type TripPage struct {
	Trips []Trip
	Next  string
}

// Normalize checks q, fills its default limit and returns its decoded
// cursor (the zero Cursor for the first page). A bad field is ErrInvalid,
// a bad cursor ErrInvalidCursor, To before From ErrInvalidRange, a limit
// out of [0, MaxLimit] ErrInvalidLimit.
func (q *TripQuery) Normalize() (Cursor, error) {
	switch {
	case q.RiderID != "" && !ValidID(q.RiderID):
		return Cursor{}, fmt.Errorf("%w: rider must be 1-64 of [A-Za-z0-9_-]", ErrInvalid)
	case q.DriverID != "" && !ValidID(q.DriverID):
		return Cursor{}, fmt.Errorf("%w: driver must be 1-64 of [A-Za-z0-9_-]", ErrInvalid)
	case q.Status != "" && !validToken(q.Status):
		return Cursor{}, fmt.Errorf("%w: status must be 1-32 of [a-z_]", ErrInvalid)
	case !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From):
		return Cursor{}, fmt.Errorf("%w: to (%s) is before from (%s)", ErrInvalidRange,
			q.To.UTC().Format(time.RFC3339), q.From.UTC().Format(time.RFC3339))
	}
	var err error
	if q.Limit, err = limit(q.Limit, DefaultLimit, MaxLimit); err != nil {
		return Cursor{}, err
	}
	return DecodeCursor(q.Cursor)
}

// EventQuery selects a topic's events after a position, oldest first (the
// feed's order), as the long-poll JSON route reads them.
type EventQuery struct {
	Topic string
	// After is the last event ID the caller has ("" or "0": from the start).
	After string
	Limit int
}

// Normalize checks q, fills its default limit and returns After parsed.
func (q *EventQuery) Normalize() (EventID, error) {
	if !validText(q.Topic, 200) {
		return EventID{}, fmt.Errorf("%w: topic must be 1-200 bytes of UTF-8", ErrInvalid)
	}
	var err error
	if q.Limit, err = limit(q.Limit, DefaultEventLimit, MaxEventLimit); err != nil {
		return EventID{}, err
	}
	if q.After == "" {
		return EventID{}, nil
	}
	return ParseEventID(q.After)
}

// TrailQuery selects a trip's trail points after a trail sequence (the
// trip's counter of accepted fixes, in arrival order), in sequence order.
type TrailQuery struct {
	TripID string
	After  int64 // last seq the caller has (0: from the start)
	Limit  int
}

// Normalize checks q and fills its default limit.
func (q *TrailQuery) Normalize() error {
	if !ValidID(q.TripID) {
		return fmt.Errorf("%w: trip id must be 1-64 of [A-Za-z0-9_-]", ErrInvalid)
	}
	if q.After < 0 {
		return fmt.Errorf("%w: after must not be negative", ErrInvalidCursor)
	}
	var err error
	q.Limit, err = limit(q.Limit, DefaultTrailLimit, MaxTrailLimit)
	return err
}

// DriverQuery selects a driver's shifts or days within [From, To); both are
// required and the window is at most MaxWindow.
type DriverQuery struct {
	DriverID string
	From, To time.Time
}

// Normalize checks q.
func (q *DriverQuery) Normalize() error {
	switch {
	case !ValidID(q.DriverID):
		return fmt.Errorf("%w: driver id must be 1-64 of [A-Za-z0-9_-]", ErrInvalid)
	case q.From.IsZero() || q.To.IsZero():
		return fmt.Errorf("%w: from and to are required", ErrInvalidRange)
	case q.To.Before(q.From):
		return fmt.Errorf("%w: to (%s) is before from (%s)", ErrInvalidRange,
			q.To.UTC().Format(time.RFC3339), q.From.UTC().Format(time.RFC3339))
	case q.To.Sub(q.From) > MaxWindow:
		return fmt.Errorf("%w: at most %d days", ErrInvalidRange, MaxWindow/(24*time.Hour))
	}
	return nil
}

func limit(n, def, max int) (int, error) {
	switch {
	case n == 0:
		return def, nil
	case n < 0 || n > max:
		return 0, fmt.Errorf("%w: %d is not within [1, %d]", ErrInvalidLimit, n, max)
	}
	return n, nil
}

package driver

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// Driver statuses.
const (
	StatusOffline   = "offline"
	StatusAvailable = "available"
	StatusOnTrip    = "on_trip"
	// StatusSuspended: ops suspended the driver (Suspension says who, when
	// and why); it cannot go available nor be claimed by a trip until ops
	// reinstate it, and it is left out of nearby search and dispatch.
	StatusSuspended = "suspended"
)

// Suspension is a driver's suspension by ops, current or past.
type Suspension struct {
	Reason string    `json:"reason"`
	By     string    `json:"by"` // the ops caller's subject
	At     time.Time `json:"at"`
}

// SuspensionChange is one entry of a driver's suspension audit log.
type SuspensionChange struct {
	Action string    `json:"action"` // "suspend" or "reinstate"
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// SuspendedDriver is one entry of the list of suspended drivers.
type SuspendedDriver struct {
	ID string `json:"id"`
	Suspension
}

// MaxSuspensionReason bounds a suspension's reason, in bytes.
const MaxSuspensionReason = 500

// CheckReason is ErrInvalid unless reason is a suspension's reason: not
// blank, at most MaxSuspensionReason bytes (required says whether it may
// be empty, as a reinstatement's may).
func CheckReason(reason string, required bool) error {
	if required && strings.TrimSpace(reason) == "" {
		return fmt.Errorf("%w: reason is required", ErrInvalid)
	}
	if len(reason) > MaxSuspensionReason {
		return fmt.Errorf("%w: reason must be at most %d bytes", ErrInvalid, MaxSuspensionReason)
	}
	return nil
}

// State is a driver's current state as stored in Redis.
type State struct {
	ID       string     `json:"id"`
	Status   string     `json:"status"`
	TripID   string     `json:"trip_id,omitempty"`
	Location *Location  `json:"location"`
	LastSeq  int64      `json:"last_seq"`
	Cell     string     `json:"cell,omitempty"`
	Fresh    bool       `json:"fresh"`
	Seen     *time.Time `json:"last_seen,omitempty"`
	// Suspension is set while ops keep the driver suspended.
	Suspension *Suspension `json:"suspension,omitempty"`
}

// Location is a driver's latest accepted fix.
type Location struct {
	Lat      float64   `json:"lat"`
	Lng      float64   `json:"lng"`
	TS       time.Time `json:"ts"`
	Accuracy *float64  `json:"accuracy,omitempty"`
	Speed    *float64  `json:"speed,omitempty"`
	Heading  *float64  `json:"heading,omitempty"`
}

// Rejection is one ping that was not accepted.
type Rejection struct {
	Index  int    `json:"index"`
	Reason string `json:"reason"`
}

// IngestResult is the reply to a batch of pings.
type IngestResult struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   []Rejection `json:"rejected"`
	LastSeq    int64       `json:"last_seq"`
}

// Move tells listeners that a driver's position changed.
type Move struct {
	DriverID string
	TripID   string
	Status   string
	From     geo.Cell
	Pos      geo.Point
	TS       time.Time
	Seq      int64
	Heading  float64 // NaN when unknown
	Speed    float64 // NaN when unknown
	// Accepted holds every accepted ping of the batch in ts order, applied or
	// not (older fixes are still observations, e.g. for speed learning).
	Accepted []Ping
}

// Listener is told about every applied move. It must return quickly (queue
// work, never block on I/O): it runs on the ingest path.
type Listener interface {
	DriverMoved(ctx context.Context, m Move)
}

// Estimator gives a driving time between two points (the ETA engine).
type Estimator interface {
	EstimateSeconds(ctx context.Context, from, to geo.Point) (float64, error)
}

// Config configures the driver service (driverredis.Service). Zero values
// are documented per field.
type Config struct {
	// Prefix is prepended to every Redis key. Zero: "".
	Prefix string
	// Limits bounds accepted pings (see Limits for its zero values).
	Limits Limits
	// SeqWindow is how many recent seqs per driver are remembered for
	// duplicate detection; older seqs count as duplicates. Zero: 4096.
	SeqWindow int
	// StateTTL is how long an idle driver's state is kept. Zero: 7 days.
	StateTTL time.Duration
	// CitySpeed is the straight-line speed (m/s) used for eta_s when no
	// Estimator is set. Zero: 8.3 (30 km/h).
	CitySpeed float64
	// Now returns the current time. Zero: time.Now.
	Now func() time.Time
	// PingRate is each driver's sustained ping rate (pings/s, a token
	// bucket kept in Redis beside the driver's state, so it holds across
	// nodes); a batch costs its size. Zero: 10; negative: no limit.
	PingRate float64
	// PingBurst is the bucket size; it is raised to Limits.MaxBatch so a
	// full offline batch always fits an idle bucket. Zero: 2×MaxBatch.
	PingBurst int
	// MaxInflight bounds the ingest scripts in flight at once (and so the
	// index updates). Batches beyond it wait here instead of in the Redis
	// connection pool, where thousands of drivers sending at once would
	// delay every other command of the node behind them (feed liveness
	// probes, catch-up reads) for seconds; a few dozen in flight keep Redis
	// busy. They go in two pipelines of at most MaxInflight/2 (internal/autopipe).
	// Zero: 64.
	MaxInflight int
}

// Metrics receives ingest figures; a nil func is skipped.
type Metrics struct {
	Accepted func(n int)
	Rejected func(reason string)
	Ingest   func(d time.Duration)
	Nearby   func(d time.Duration)
}

// ValidID reports whether id is an acceptable driver (or trip) identifier.
// It is 1–64 bytes of [A-Za-z0-9_.:-], checked byte by byte (it runs on
// every driver request).
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// CheckID is ValidID as an error: ErrInvalid, saying what an id may be.
func CheckID(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: driver id must be 1-64 characters of [A-Za-z0-9_.:-]", ErrInvalid)
	}
	return nil
}

// Nearby is one driver found near a point.
type Nearby struct {
	ID        string    `json:"id"`
	Lat       float64   `json:"lat"`
	Lng       float64   `json:"lng"`
	DistanceM float64   `json:"distance_m"`
	ETAS      float64   `json:"eta_s"`
	Seen      time.Time `json:"last_seen"`
}

// NearbyQuery asks for fresh available drivers around a point.
type NearbyQuery struct {
	Center  geo.Point
	RadiusM float64 // zero: 3000; at most 50,000
	Limit   int     // zero: 10; at most 100
	Exclude map[string]bool
}

// WithDefaults is q with its zero radius and limit set to their defaults,
// or ErrInvalid when the center, radius or limit is out of range.
func (q NearbyQuery) WithDefaults() (NearbyQuery, error) {
	if !q.Center.Valid() {
		return NearbyQuery{}, fmt.Errorf("%w: lat must be within [-90,90] and lng within [-180,180]", ErrInvalid)
	}
	if q.RadiusM == 0 {
		q.RadiusM = 3000
	}
	if q.Limit == 0 {
		q.Limit = 10
	}
	if q.RadiusM < 0 || q.RadiusM > 50000 || math.IsNaN(q.RadiusM) {
		return NearbyQuery{}, fmt.Errorf("%w: radius_m must be within (0, 50000]", ErrInvalid)
	}
	if q.Limit < 0 || q.Limit > 100 {
		return NearbyQuery{}, fmt.Errorf("%w: limit must be within [1, 100]", ErrInvalid)
	}
	return q, nil
}

package dispatchredis

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"
)

// Config configures a Dispatcher. Zero values are documented per
// field.
type Config struct {
	// Prefix is prepended to every Redis key; it must be the trip
	// Service's. Zero: "".
	Prefix string
	// NodeID names this node in leases. Zero: random.
	NodeID string
	// OfferTimeout is how long a driver has to answer an offer. Zero: 15s.
	OfferTimeout time.Duration
	// Timeout is how long a trip may stay requested before it expires.
	// Zero: 2m. It restarts when a trip returns to requested.
	Timeout time.Duration
	// Radii are the search radii in meters, smallest first: each search
	// widens until one radius yields a candidate, up to a limit that grows
	// with time (dispatch.Radii: the two smallest at first, all of them by
	// half the Timeout). Zero: 1500, 3000, 6000, 12000, 25000.
	Radii []float64
	// Candidates bounds each search. Zero: 10.
	Candidates int
	// Poll is how often an owned trip is re-checked (answers, cancels).
	// Zero: 250ms.
	Poll time.Duration
	// Retry is the pause when no candidate could be offered. Zero: 1s.
	Retry time.Duration
	// LeaseTTL is how long a node owns a trip's dispatch without renewing;
	// another node takes a trip over at most this long after its owner
	// died. Zero: 5s.
	LeaseTTL time.Duration
	// Scan is how often the queue of trips to dispatch is read. Zero: 500ms.
	Scan time.Duration
	// MaxActive bounds the trips one node dispatches at once. Zero: 2000.
	MaxActive int
	// Arrival detection: within ArriveM of the pickup for Dwell (by ping
	// time) → driver_arrived; leaving LeaveM resets the dwell (hysteresis).
	// trip.arriving is sent once when the ETA to pickup falls under
	// ArrivingETA. Zero: 50 m, 80 m, 10s, 60s.
	ArriveM, LeaveM float64
	Dwell           time.Duration
	ArrivingETA     time.Duration
	// CitySpeed (m/s) gives the ETA to pickup without an Estimator. Zero: 8.3.
	CitySpeed float64
	// Now returns the current time. Zero: time.Now.
	Now func() time.Time
	// Logger. Zero: slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.NodeID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.NodeID = hex.EncodeToString(b[:])
	}
	if c.OfferTimeout <= 0 {
		c.OfferTimeout = 15 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	if len(c.Radii) == 0 {
		c.Radii = []float64{1500, 3000, 6000, 12000, 25000}
	}
	if c.Candidates <= 0 {
		c.Candidates = 10
	}
	if c.Poll <= 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.Retry <= 0 {
		c.Retry = time.Second
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 5 * time.Second
	}
	if c.Scan <= 0 {
		c.Scan = 500 * time.Millisecond
	}
	if c.MaxActive <= 0 {
		c.MaxActive = 2000
	}
	if c.ArriveM <= 0 {
		c.ArriveM = 50
	}
	if c.LeaveM <= c.ArriveM {
		c.LeaveM = c.ArriveM + 30
	}
	if c.Dwell <= 0 {
		c.Dwell = 10 * time.Second
	}
	if c.ArrivingETA <= 0 {
		c.ArrivingETA = 60 * time.Second
	}
	if c.CitySpeed <= 0 {
		c.CitySpeed = 8.3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

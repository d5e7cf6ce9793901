package opsredis

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/ops"
	"github.com/hextrack/hextrack/trip"
)

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// View answers the ops dashboard's questions from Redis, so every figure is
// cluster-wide whichever node asks: the fleet (every fresh driver of the
// position index, with its status), drivers by status, trips by status,
// the most recently changed trips, and available supply against open
// demand per H3 cell.
//
// Trips come from the ops trip index (index.go), which Index keeps after
// every trip change (create, transition, address change, payment) as a
// trip.Observer.
// The fleet is one read of the position index, O(fleet), reused by every
// caller on this node for OpsConfig.FleetEvery: a node serving any number of
// dashboards reads the fleet at most once per period.
type View struct {
	rdb   redis.UniversalClient
	trips Trips
	cfg   Config

	mu      sync.Mutex // serializes fleet reads: callers share one
	fleet   ops.Fleet
	fleetOK bool

	sum summaryCache // summary.go
}

// Trips loads trips by ID (tripredis.Store); trips that are gone are left out.
type Trips interface {
	GetMany(ctx context.Context, ids []string) ([]trip.Trip, error)
}

// Config configures a View, an Index and a Reporter. Zero values are documented per field.
type Config struct {
	// Prefix is the key prefix of the trip service and the position index.
	// Zero: "".
	Prefix string
	// Stale is how long after its last fix a driver still counts (the
	// position index's staleness). Zero: 30s.
	Stale time.Duration
	// FleetEvery is how long one fleet read is reused. Zero: 1s.
	FleetEvery time.Duration
	// TerminalWindow: completed, cancelled and expired trips are counted
	// when they changed within this window. Zero: 24h.
	TerminalWindow time.Duration
	// MaxDemand bounds the requested trips read for the supply map. Zero: 10000.
	MaxDemand int
	// TripTTL is the trips' TTL (tripredis.Config.TripTTL): index entries older
	// than it are trimmed. Zero: 7 days.
	TripTTL time.Duration
	// Logger. Zero: slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Zero: time.Now.
	Now func() time.Time
}

func (cfg Config) withDefaults() Config {
	if cfg.Stale <= 0 {
		cfg.Stale = 30 * time.Second
	}
	if cfg.FleetEvery <= 0 {
		cfg.FleetEvery = time.Second
	}
	if cfg.TerminalWindow <= 0 {
		cfg.TerminalWindow = 24 * time.Hour
	}
	if cfg.MaxDemand <= 0 {
		cfg.MaxDemand = 10000
	}
	if cfg.TripTTL <= 0 {
		cfg.TripTTL = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// New returns the ops view over rdb, loading listed trips through trips.
func New(rdb redis.UniversalClient, trips Trips, cfg Config) *View {
	return &View{rdb: rdb, trips: trips, cfg: cfg.withDefaults()}
}

// Fleet returns every fresh driver, from a read at most FleetEvery old.
// The drivers are sorted by ID; callers must not modify them.
func (o *View) Fleet(ctx context.Context) (ops.Fleet, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.cfg.Now()
	if o.fleetOK && now.Sub(o.fleet.At) < o.cfg.FleetEvery && !now.Before(o.fleet.At) {
		return o.fleet, nil
	}
	ds, err := readFleet(ctx, o.rdb, o.cfg.Prefix, now.Add(-o.cfg.Stale))
	if err != nil {
		return ops.Fleet{}, err
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	o.fleet, o.fleetOK = ops.Fleet{At: now, Drivers: ds}, true
	return o.fleet, nil
}

// DriverCounts counts the fleet by status.
func (o *View) DriverCounts(ctx context.Context) (ops.DriverCounts, error) {
	f, err := o.Fleet(ctx)
	if err != nil {
		return ops.DriverCounts{}, err
	}
	var c ops.DriverCounts
	for _, d := range f.Drivers {
		switch d.Status {
		case "available":
			c.Available++
		case "on_trip":
			c.OnTrip++
		default:
			c.Offline++
		}
	}
	c.Online = c.Available + c.OnTrip
	return c, nil
}

// Drivers returns the online drivers (available or on a trip) inside the
// cells, at most max (sorted by ID); truncated says some were left out. A
// driver who went offline leaves the map at once, though its fix is fresh.
func (o *View) Drivers(ctx context.Context, within ops.CellSet, max int) (ds []ops.FleetDriver, truncated bool, err error) {
	f, err := o.Fleet(ctx)
	if err != nil {
		return nil, false, err
	}
	ds = []ops.FleetDriver{}
	for _, d := range f.Drivers {
		if (d.Status != "available" && d.Status != "on_trip") || !within.Contains(d.Cell) {
			continue
		}
		if len(ds) == max {
			return ds, true, nil
		}
		ds = append(ds, d)
	}
	return ds, false, nil
}

// TripCounts returns the number of trips per status (every status is a
// key): open trips in full, terminal ones changed within TerminalWindow.
func (o *View) TripCounts(ctx context.Context) (map[string]int64, error) {
	return tripCounts(ctx, o.rdb, o.cfg.Prefix, o.cfg.Now().Add(-o.cfg.TerminalWindow))
}

// Trips returns up to limit (≤ MaxTripList) trips, most recently changed
// first, of one status or of any ("").
func (o *View) Trips(ctx context.Context, status string, limit int) ([]trip.Trip, error) {
	if status != "" && !validStatus(status) {
		return nil, fmt.Errorf("%w: unknown status %q", ops.ErrInvalid, clip(status))
	}
	if limit < 1 || limit > ops.MaxTripList {
		return nil, fmt.Errorf("%w: limit must be within [1, %d]", ops.ErrInvalid, ops.MaxTripList)
	}
	ids, err := recentTripIDs(ctx, o.rdb, o.cfg.Prefix, status, limit)
	if err != nil {
		return nil, err
	}
	ts, err := o.trips.GetMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	if ts == nil {
		ts = []trip.Trip{}
	}
	return ts, nil
}

func validStatus(s string) bool {
	for _, st := range trip.Statuses {
		if st == s {
			return true
		}
	}
	return false
}

// Supply returns, per H3 cell of resolution res (0..9) that has any, the
// fresh available drivers, the drivers on a trip and the open demand
// (requested trips by pickup), limited to the cells within (nil: all),
// sorted by cell.
func (o *View) Supply(ctx context.Context, res int, within ops.CellSet) ([]ops.SupplyCell, error) {
	if res < 0 || res > geo.ResIndex {
		return nil, fmt.Errorf("%w: res must be within [0, %d]", ops.ErrInvalid, geo.ResIndex)
	}
	f, err := o.Fleet(ctx)
	if err != nil {
		return nil, err
	}
	demand, err := demandCells(ctx, o.rdb, o.cfg.Prefix, o.cfg.MaxDemand)
	if err != nil {
		return nil, err
	}
	by := map[geo.Cell]*ops.SupplyCell{}
	at := func(c geo.Cell) *ops.SupplyCell {
		p := c.Parent(res)
		sc := by[p]
		if sc == nil {
			sc = &ops.SupplyCell{Cell: p.String()}
			by[p] = sc
		}
		return sc
	}
	for _, d := range f.Drivers {
		if !within.Contains(d.Cell) {
			continue
		}
		switch d.Status {
		case "available":
			at(d.Cell).Available++
		case "on_trip":
			at(d.Cell).OnTrip++
		}
	}
	for _, c := range demand {
		if within.Contains(c) {
			at(c).Demand++
		}
	}
	out := make([]ops.SupplyCell, 0, len(by))
	for _, sc := range by {
		out = append(out, *sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cell < out[j].Cell })
	return out, nil
}

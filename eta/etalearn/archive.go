package etalearn

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/geo"
)

// Archive is what the trainer reads of the archive: completed trips,
// newest first, and their GPS trails. archive/sqlstore's Store has these
// methods (cmd/hextrack hands it over through its archiveReads).
type Archive interface {
	ListTrips(ctx context.Context, q archive.TripQuery) (archive.TripPage, error)
	Trail(ctx context.Context, q archive.TrailQuery) ([]archive.Point, error)
}

// Trail reading rules.
const (
	// pickupRadiusM: a trail is the driver's whole time on the trip, the
	// drive to the pickup and the wait there included; the ride starts at
	// the last fix within this of the trip's pickup.
	pickupRadiusM = 300
	// thinS: trails are thinned to one fix per this many seconds (the
	// first and the last kept), the spacing of the Porto traces the model
	// was tuned on; phones may ping every second.
	thinS = 15
)

// ReadOptions select the trips ReadTrips reads.
type ReadOptions struct {
	// Since: trips created at or after it (zero: all).
	Since time.Time
	// MaxTrips bounds the trips read, newest first (and so the memory of
	// a training round). Zero: DefaultMaxTrips.
	MaxTrips int
	// Loc is the time zone fix times are given in (time-of-day features
	// and speed buckets are local times). Nil: UTC.
	Loc *time.Location
}

// DefaultMaxTrips is ReadOptions.MaxTrips's default.
const DefaultMaxTrips = 100_000

// ReadStats count what ReadTrips read and why trips were left out.
type ReadStats struct {
	Completed int // completed trips listed
	Used      int // turned into training trips
	NoTrail   int // fewer than two fixes in the ride
	NoPickup  int // no trail fix within pickupRadiusM of the pickup
}

// ReadTrips reads completed trips (newest first, at most opt.MaxTrips)
// and their trails from a, and turns each into an eta.Trip: its ride from
// the last fix near the pickup to the last fix, thinned to a fix per 15 s,
// times in opt.Loc. Memory is bounded by MaxTrips × the fixes of a
// thinned trail.
func ReadTrips(ctx context.Context, a Archive, opt ReadOptions) ([]eta.Trip, ReadStats, error) {
	if opt.MaxTrips <= 0 {
		opt.MaxTrips = DefaultMaxTrips
	}
	if opt.Loc == nil {
		opt.Loc = time.UTC
	}
	var (
		out   []eta.Trip
		st    ReadStats
		query = archive.TripQuery{Status: archive.StatusCompleted, From: opt.Since, Limit: archive.MaxLimit}
	)
	for st.Completed < opt.MaxTrips {
		page, err := a.ListTrips(ctx, query)
		if err != nil {
			return nil, st, fmt.Errorf("etalearn: list trips: %w", err)
		}
		for _, rec := range page.Trips {
			if st.Completed == opt.MaxTrips {
				break
			}
			st.Completed++
			t, why, err := readTrip(ctx, a, rec, opt.Loc)
			if err != nil {
				return nil, st, err
			}
			switch why {
			case "":
				st.Used++
				out = append(out, t)
			case noTrail:
				st.NoTrail++
			case noPickup:
				st.NoPickup++
			}
		}
		if page.Next == "" {
			break
		}
		query.Cursor = page.Next
	}
	return out, st, nil
}

const (
	noTrail  = "no trail"
	noPickup = "no pickup"
)

// snapshotPlaces is what readTrip needs of an archived trip snapshot.
type snapshotPlaces struct {
	Trip struct {
		Pickup *struct{ Lat, Lng float64 } `json:"pickup"`
	} `json:"trip"`
}

// readTrip reads one trip's trail and cuts it to the ride; why says why
// there is none ("": there is).
func readTrip(ctx context.Context, a Archive, rec archive.Trip, loc *time.Location) (eta.Trip, string, error) {
	var fixes []eta.Fix
	q := archive.TrailQuery{TripID: rec.ID, Limit: archive.MaxTrailLimit}
	for {
		pts, err := a.Trail(ctx, q)
		if err != nil {
			return eta.Trip{}, "", fmt.Errorf("etalearn: trail of %s: %w", rec.ID, err)
		}
		for _, p := range pts {
			fixes = append(fixes, eta.Fix{Point: geo.Point{Lat: p.Lat, Lng: p.Lng}, Time: p.TS.In(loc)})
		}
		if len(pts) < q.Limit {
			break
		}
		q.After = pts[len(pts)-1].Seq
	}
	// Seq is arrival order; fixes of one driver arrive in time order, but
	// a trip reassigned mid-way may interleave: sort, drop repeats.
	slices.SortStableFunc(fixes, func(x, y eta.Fix) int { return x.Time.Compare(y.Time) })
	fixes = slices.CompactFunc(fixes, func(x, y eta.Fix) bool { return x.Time.Equal(y.Time) })
	var snap snapshotPlaces
	if len(rec.Snapshot) > 0 && json.Unmarshal(rec.Snapshot, &snap) == nil && snap.Trip.Pickup != nil {
		pickup := geo.Point{Lat: snap.Trip.Pickup.Lat, Lng: snap.Trip.Pickup.Lng}
		start := -1
		for i, f := range fixes {
			if geo.Distance(f.Point, pickup) <= pickupRadiusM {
				start = i
			}
		}
		if start < 0 {
			return eta.Trip{}, noPickup, nil
		}
		fixes = fixes[start:]
	}
	fixes = thin(fixes)
	if len(fixes) < 2 {
		return eta.Trip{}, noTrail, nil
	}
	return eta.Trip{ID: rec.ID, Fixes: fixes}, "", nil
}

// thin keeps the first fix, then each fix at least thinS after the last
// kept, and the last fix (in place of a kept one closer than thinS). The
// result is a copy: the full trail's array is not kept alive.
func thin(fixes []eta.Fix) []eta.Fix {
	if len(fixes) < 3 {
		return slices.Clone(fixes)
	}
	out := fixes[:1]
	for _, f := range fixes[1 : len(fixes)-1] {
		if f.Time.Sub(out[len(out)-1].Time) >= thinS*time.Second {
			out = append(out, f)
		}
	}
	last := fixes[len(fixes)-1]
	if len(out) > 1 && last.Time.Sub(out[len(out)-1].Time) < thinS*time.Second {
		out[len(out)-1] = last
	} else {
		out = append(out, last)
	}
	return slices.Clone(out)
}

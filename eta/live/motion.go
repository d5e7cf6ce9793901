package live

import (
	"context"
	"sync"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
)

// Fix is a position of a trip's driver at a time.
type Fix struct {
	Pos geo.Point
	TS  time.Time
}

// MovingEstimator is a RouteEstimator that also uses the vehicle's latest
// fixes (oldest first; the last is the point estimated from): the learned
// correction's features of a vehicle under way, as eta-eval scores it.
// Service uses it, when its router implements it, whenever it has at
// least two fixes of the trip's driver up to the one estimated from.
type MovingEstimator interface {
	EstimateMoving(ctx context.Context, fixes []Fix, to geo.Point) (seconds, meters float64, err error)
}

// Fixes kept per trip: those of its driver within trackKeep of the newest,
// at most trackMax (the correction looks at about the last minute).
const (
	trackKeep = 2 * time.Minute
	trackMax  = 32
	// trackIdle: a track whose newest fix is older than this (by the
	// Service clock) is dropped by the sweep (its trip ended elsewhere).
	trackIdle = 10 * time.Minute
)

// tracks are the recent fixes of trips' drivers, learned from the moves
// this node ingests (a driver's pings usually reach one node; without two
// fixes an estimate is made as for a vehicle not yet moving).
type tracks struct {
	mu      sync.Mutex
	byTrip  map[string]*track
	sweepAt int
}

type track struct {
	driver string
	fixes  []Fix
}

func newTracks() *tracks { return &tracks{byTrip: map[string]*track{}, sweepAt: 1024} }

// add records the fixes of m (its accepted pings, or its position) on its
// trip's track; now is the Service clock.
func (ts *tracks) add(m *driver.Move, now time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.byTrip[m.TripID]
	if t == nil || t.driver != m.DriverID {
		t = &track{driver: m.DriverID}
		ts.byTrip[m.TripID] = t
	}
	put := func(p geo.Point, at time.Time) {
		if n := len(t.fixes); n > 0 && !at.After(t.fixes[n-1].TS) {
			return // not newer (replays, older pings of a batch)
		}
		t.fixes = append(t.fixes, Fix{p, at})
	}
	if len(m.Accepted) > 0 {
		for _, p := range m.Accepted {
			put(p.Pos, p.TS)
		}
	} else {
		put(m.Pos, m.TS)
	}
	if n := len(t.fixes); n > 0 {
		newest, drop := t.fixes[n-1].TS, 0
		for drop < n-1 && (n-drop > trackMax || newest.Sub(t.fixes[drop].TS) > trackKeep) {
			drop++
		}
		t.fixes = append(t.fixes[:0], t.fixes[drop:]...)
	}
	if len(ts.byTrip) >= ts.sweepAt {
		for id, t := range ts.byTrip {
			if n := len(t.fixes); n == 0 || now.Sub(t.fixes[n-1].TS) > trackIdle {
				delete(ts.byTrip, id)
			}
		}
		ts.sweepAt = max(1024, 2*len(ts.byTrip))
	}
}

// upTo returns a copy of the trip's fixes of driver up to at, ending with
// from at `at` (nil when fewer than two).
func (ts *tracks) upTo(trip, driver string, from geo.Point, at time.Time) []Fix {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.byTrip[trip]
	if t == nil || t.driver != driver {
		return nil
	}
	var out []Fix
	for _, f := range t.fixes {
		if f.TS.Before(at) {
			out = append(out, f)
		}
	}
	out = append(out, Fix{from, at})
	if len(out) < 2 {
		return nil
	}
	return out
}

// drop forgets a trip's track.
func (ts *tracks) drop(trip string) {
	ts.mu.Lock()
	delete(ts.byTrip, trip)
	ts.mu.Unlock()
}

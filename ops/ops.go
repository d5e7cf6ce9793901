package ops

import (
	"errors"
	"fmt"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/trip"
)

// ErrInvalid: a malformed ops query (bad cells, status, limit or
// resolution): 400.
var ErrInvalid = errors.New("invalid ops query")

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// FleetDriver is one fresh driver of the position index.
type FleetDriver struct {
	ID     string    `json:"id"`
	Lat    float64   `json:"lat"`
	Lng    float64   `json:"lng"`
	Status string    `json:"status"`
	Seen   time.Time `json:"last_seen"`
	Cell   geo.Cell  `json:"-"`
}

// Fleet is every fresh driver at one moment.
type Fleet struct {
	At      time.Time
	Drivers []FleetDriver
}

// DriverCounts are fresh drivers by status. Online is available + on trip;
// Offline counts drivers whose last fix is fresh but who went offline.
type DriverCounts struct {
	Online    int `json:"online"`
	Available int `json:"available"`
	OnTrip    int `json:"on_trip"`
	Offline   int `json:"offline"`
}

// SupplyCell is one H3 cell of the supply map: fresh available drivers,
// drivers on a trip, and open demand (requested trips picking up there).
type SupplyCell struct {
	Cell      string `json:"cell"`
	Available int    `json:"available"`
	OnTrip    int    `json:"on_trip"`
	Demand    int    `json:"demand"`
}

// CellSet is a set of H3 cells of any resolutions up to the index's (r9):
// a viewport. The zero value (nil) contains everything.
type CellSet map[int]map[geo.Cell]bool

// ParseCells parses H3 cells (hex strings) into a CellSet; at most max
// cells, each of resolution at most 9.
func ParseCells(ss []string, max int) (CellSet, error) {
	if len(ss) == 0 {
		return nil, fmt.Errorf("%w: cells is required (H3 cells covering the viewport)", ErrInvalid)
	}
	if len(ss) > max {
		return nil, fmt.Errorf("%w: at most %d cells (use coarser cells)", ErrInvalid, max)
	}
	set := CellSet{}
	for _, s := range ss {
		c, err := geo.ParseCell(s)
		if err != nil || !c.Valid() {
			return nil, fmt.Errorf("%w: %q is not an H3 cell", ErrInvalid, clip(s))
		}
		if c.Res() > geo.ResIndex {
			return nil, fmt.Errorf("%w: cell %s is finer than r%d", ErrInvalid, s, geo.ResIndex)
		}
		if set[c.Res()] == nil {
			set[c.Res()] = map[geo.Cell]bool{}
		}
		set[c.Res()][c] = true
	}
	return set, nil
}

// Contains reports whether the r9 cell c lies in the set.
func (s CellSet) Contains(c geo.Cell) bool {
	if s == nil {
		return true
	}
	for res, cells := range s {
		if cells[c.Parent(res)] {
			return true
		}
	}
	return false
}

// MaxTripList bounds the trips one list of the ops view holds.
const MaxTripList = 200

// Summary is GET /v1/ops/summary. Every trip status is a key of Trips
// (terminal statuses count the last Config.TerminalWindow of the view);
// Connections are added up over the Nodes that reported recently;
// IngestRate is pings accepted per second and DeliveryLatencyMS the mean feed delivery
// lag (publish → node) over the nodes' last report period (0 without
// events).
type Summary struct {
	TS                time.Time        `json:"ts"`
	Drivers           DriverCounts     `json:"drivers"`
	Trips             map[string]int64 `json:"trips"`
	OpenTrips         int64            `json:"open_trips"`
	Connections       map[string]int64 `json:"connections"`
	Nodes             int              `json:"nodes"`
	IngestRate        float64          `json:"ingest_rate"`
	DeliveryLatencyMS float64          `json:"delivery_latency_ms"`
	RecentTrips       []trip.Trip      `json:"recent_trips"`
}

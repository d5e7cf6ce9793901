package georedis

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
)

// Index is the H3 index of driver positions in Redis.
//
// Layout (every key of one region shares the hash tag of the region's r6
// cell, so a Lua script touching them is single-slot under Redis Cluster):
//
//	<p>geo:{<r6>}:c:<r9>   sorted set per r9 cell: member = driver ID,
//	                       score = last-seen unix ms (never an H3 index)
//	<p>geo:{<r6>}:w        hash: driver ID → "r9|ms|status|lat|lng", the
//	                       driver's current record in that region, or a
//	                       tombstone "-|ms" once it moved away
//	<p>geo:{<r6>}:cells    set of r9 cells of the region that have members
//	<p>geo:{<r6>}:g        GEO set (GEOADD): member = driver ID, score = the
//	                       52-bit geohash of its record's position; holds
//	                       exactly the drivers with a live record in the
//	                       region, except those beyond ±85.05112878° lat
//	                       (outside Redis GEO's range)
//	<p>geo:regions         set of regions ever written (for the trim)
//
// Nearby searches the GEO sets server-side (see Nearby); the cell sets serve
// Scan, the trim and Nearby near the poles and the antimeridian.
//
// A move inside a region is one script. A move across regions adds the new
// record first and then tombstones the old region's record; both scripts
// compare timestamps, so concurrent or reordered updates of one driver always
// end with the driver in exactly one cell: the one of its newest fix. Readers
// check a member against its region record, and leftovers age out by score.
//
// Each job is its own type, and an Index is all of them over one client and
// key prefix: writer (Put, UpdateMany, SetStatus; write.go), search (Nearby
// over the GEO sets; nearby.go), cellSearch and cellReader (Nearby over the
// r9 cells, Scan; cells.go) and trimmer (Trim; trim.go).
type Index struct {
	*writer
	*search
	*cellReader
	*trimmer
	stale time.Duration
}

// store is what every part of an Index shares: the client, the key prefix
// and the clock.
type store struct {
	rdb    redis.UniversalClient
	prefix string
	stale  time.Duration
	now    func() time.Time
}

// IndexConfig configures an Index. Zero values are documented per field.
type IndexConfig struct {
	// Prefix is prepended to every key (tests use it to stay apart). Zero: "".
	Prefix string
	// Stale is how long after its last fix a driver stops being returned.
	// Zero: 30s.
	Stale time.Duration
	// Now returns the current time. Zero: time.Now.
	Now func() time.Time
}

// NewIndex returns an index over rdb.
func NewIndex(rdb redis.UniversalClient, cfg IndexConfig) *Index {
	if cfg.Stale <= 0 {
		cfg.Stale = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &store{rdb: rdb, prefix: cfg.Prefix, stale: cfg.Stale, now: cfg.Now}
	cr := &cellReader{s}
	return &Index{
		writer:     &writer{s},
		search:     &search{store: s, cells: &cellSearch{cr}},
		cellReader: cr,
		trimmer:    &trimmer{s},
		stale:      cfg.Stale,
	}
}

// Stale is the configured staleness.
func (x *Index) Stale() time.Duration { return x.stale }

func (x *store) regionPrefix(region geo.Cell) string {
	return x.prefix + "geo:{" + region.String() + "}:"
}

func (x *store) cellKey(c geo.Cell) string {
	return x.regionPrefix(c.Parent(geo.ResRegion)) + "c:" + c.String()
}

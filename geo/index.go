package geo

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
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
type Index struct {
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
	return &Index{rdb: rdb, prefix: cfg.Prefix, stale: cfg.Stale, now: cfg.Now}
}

// Stale is the configured staleness.
func (x *Index) Stale() time.Duration { return x.stale }

func (x *Index) regionPrefix(region Cell) string {
	return x.prefix + "geo:{" + region.String() + "}:"
}

func (x *Index) cellKey(c Cell) string {
	return x.regionPrefix(c.Parent(ResRegion)) + "c:" + c.String()
}

// Entry is one driver's indexed record.
type Entry struct {
	ID     string
	Pos    Point
	Cell   Cell
	Seen   time.Time
	Status string
}

// moveScript adds or moves a driver inside one region, unless the region
// already holds a newer record (or tombstone) for it.
// KEYS: where, new cell zset, cells set, GEO set. ARGV: id, cell, ms,
// status, lat, lng, cell-key prefix, "1" to put the position in the GEO set
// (its latitude is within Redis GEO's range).
var moveScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local ms = tonumber(ARGV[3])
if cur then
  local c, m = string.match(cur, '^([^|]*)|([^|]*)')
  if tonumber(m) > ms then return 0 end
  if c ~= '-' and c ~= ARGV[2] then redis.call('ZREM', ARGV[7] .. c, ARGV[1]) end
end
redis.call('ZADD', KEYS[2], ms, ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]..'|'..ARGV[3]..'|'..ARGV[4]..'|'..ARGV[5]..'|'..ARGV[6])
redis.call('SADD', KEYS[3], ARGV[2])
if ARGV[8] == '1' then
  redis.call('GEOADD', KEYS[4], ARGV[6], ARGV[5], ARGV[1])
else
  redis.call('ZREM', KEYS[4], ARGV[1])
end
return 1
`)

// leaveScript tombstones a driver's record in a region it left, unless the
// region holds a newer record. KEYS: where, GEO set. ARGV: id, ms, cell-key prefix.
var leaveScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local ms = tonumber(ARGV[2])
if cur then
  local c, m = string.match(cur, '^([^|]*)|([^|]*)')
  if tonumber(m) >= ms then return 0 end
  if c ~= '-' then redis.call('ZREM', ARGV[3] .. c, ARGV[1]) end
end
redis.call('HSET', KEYS[1], ARGV[1], '-|'..ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)

// statusScript changes the status of a live record. KEYS: where. ARGV: id, status.
var statusScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local c, m, s, la, ln = string.match(cur, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
if not c or c == '-' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], c..'|'..m..'|'..ARGV[2]..'|'..la..'|'..ln)
return 1
`)

// trimScript drops a region's stale records and their GEO set members.
// KEYS: where, GEO set. ARGV: cutoff ms, ids...
var trimScript = redis.NewScript(`
local n = 0
for i = 2, #ARGV do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur then
    local m = string.match(cur, '^[^|]*|([^|]*)')
    if tonumber(m) < tonumber(ARGV[1]) then
      redis.call('HDEL', KEYS[1], ARGV[i])
      redis.call('ZREM', KEYS[2], ARGV[i])
      n = n + 1
    end
  end
end
return n
`)

// Update is one driver's new position for UpdateMany.
type Update struct {
	ID     string
	Prev   Cell // the driver's previous index cell, 0 if unknown
	Pos    Point
	Seen   time.Time
	Status string
}

// Put records one driver's position (see UpdateMany).
func (x *Index) Put(ctx context.Context, u Update) error {
	return x.UpdateMany(ctx, []Update{u})
}

// UpdateMany records positions of many drivers with pipelined scripts: one
// round trip for the moves, a second only when some driver left a region.
func (x *Index) UpdateMany(ctx context.Context, us []Update) error {
	if len(us) == 0 {
		return nil
	}
	var leaves []Update
	var regions []Cell
	err := runScripts(ctx, x.rdb, func(pipe redis.Pipeliner) error {
		leaves, regions = leaves[:0], regions[:0]
		for _, u := range us {
			c := CellOf(u.Pos, ResIndex)
			if c == 0 {
				return fmt.Errorf("geo: index: invalid position %v", u.Pos)
			}
			region := c.Parent(ResRegion)
			rp := x.regionPrefix(region)
			inGeo := "0"
			if math.Abs(u.Pos.Lat) <= geoMaxLat {
				inGeo = "1"
			}
			moveScript.EvalSha(ctx, pipe, []string{rp + "w", rp + "c:" + c.String(), rp + "cells", rp + "g"},
				u.ID, c.String(), u.Seen.UnixMilli(), u.Status,
				strconv.FormatFloat(u.Pos.Lat, 'f', 7, 64), strconv.FormatFloat(u.Pos.Lng, 'f', 7, 64), rp+"c:", inGeo)
			if u.Prev != 0 && u.Prev.Parent(ResRegion) != region {
				leaves = append(leaves, u)
			}
			if !slices.Contains(regions, region) { // one SADD per region
				regions = append(regions, region)
				pipe.SAdd(ctx, x.prefix+"geo:regions", region.String())
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("geo: index update: %w", err)
	}
	if len(leaves) == 0 {
		return nil
	}
	err = runScripts(ctx, x.rdb, func(pipe redis.Pipeliner) error {
		for _, u := range leaves {
			rp := x.regionPrefix(u.Prev.Parent(ResRegion))
			leaveScript.EvalSha(ctx, pipe, []string{rp + "w", rp + "g"}, u.ID, u.Seen.UnixMilli(), rp+"c:")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("geo: index leave: %w", err)
	}
	return nil
}

// SetStatus changes the status stored with a driver's current record.
func (x *Index) SetStatus(ctx context.Context, id string, cell Cell, status string) error {
	if cell == 0 {
		return nil
	}
	rp := x.regionPrefix(cell.Parent(ResRegion))
	if err := statusScript.Run(ctx, x.rdb, []string{rp + "w"}, id, status).Err(); err != nil {
		return fmt.Errorf("geo: index status: %w", err)
	}
	return nil
}

// indexScripts are loaded into Redis when a pipeline meets NOSCRIPT.
var indexScripts = []*redis.Script{moveScript, leaveScript, statusScript, trimScript, nearbyScript}

// runScripts builds a pipeline of EvalSha calls with build and runs it. When
// Redis does not know a script yet (a fresh, restarted or flushed server) it
// loads them all and runs the pipeline once more: every index script compares
// timestamps, so running one twice is harmless.
func runScripts(ctx context.Context, rdb redis.UniversalClient, build func(redis.Pipeliner) error) error {
	for attempt := 0; ; attempt++ {
		pipe := rdb.Pipeline()
		if err := build(pipe); err != nil {
			return err
		}
		_, err := pipe.Exec(ctx)
		if err == nil || attempt > 0 || !IsNoScript(err) {
			return err
		}
		for _, s := range indexScripts {
			if err := s.Load(ctx, rdb).Err(); err != nil {
				return err
			}
		}
	}
}

// IsNoScript reports whether err is Redis' NOSCRIPT reply.
func IsNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// NearbyQuery asks for drivers around a point.
type NearbyQuery struct {
	Center  Point
	RadiusM float64
	Limit   int
	// Status, when set, keeps only drivers with that status.
	Status string
}

// Hit is a driver found by Nearby.
type Hit struct {
	Entry
	DistanceM float64
}

// maxCandidates bounds the candidate set one nearbyCells reads before sorting.
const maxCandidates = 20000

// nearbyCells is Nearby over the r9 cell sets. It reads the center's r9
// cell first, then ring by ring (one pipelined read per step) while fewer
// than Limit drivers were found; once Limit are kept it reads, in one last
// step, every unread cell that could still hold a nearer driver — a cell
// whose nearest possible point (distance to its center minus its
// circumradius) is closer than the worst kept driver — and stops.
func (x *Index) nearbyCells(ctx context.Context, q NearbyQuery) ([]Hit, error) {
	if q.Limit <= 0 {
		q.Limit = 10
	}
	c0 := CellOf(q.Center, ResIndex)
	if c0 == 0 {
		return nil, fmt.Errorf("geo: nearby: invalid center %v", q.Center)
	}
	// The local circumradius: ring distances scale with it.
	edge := circumradius(c0)
	maxK := int(q.RadiusM/(1.5*edge*0.9)) + 2
	// Cells within a few kilometers differ little in size: a cell's
	// nearest point is at least its center distance minus slack.
	slack := edge * 1.25
	best := &hitHeap{}
	minScore := x.now().Add(-x.stale).UnixMilli()
	read := 0
	add := func(cells []Cell) error {
		if len(cells) == 0 {
			return nil
		}
		entries, err := x.read(ctx, cells, minScore)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if q.Status != "" && e.Status != q.Status {
				continue
			}
			d := Distance(q.Center, e.Pos)
			if d > q.RadiusM {
				continue
			}
			read++
			if best.Len() < q.Limit {
				heap.Push(best, Hit{Entry: e, DistanceM: d})
			} else if d < (*best)[0].DistanceM {
				(*best)[0] = Hit{Entry: e, DistanceM: d}
				heap.Fix(best, 0)
			}
		}
		return nil
	}
	bound := func() float64 {
		if best.Len() >= q.Limit && (*best)[0].DistanceM < q.RadiusM {
			return (*best)[0].DistanceM
		}
		return q.RadiusM
	}
	// near keeps the cells of ring k that may hold a point within b.
	near := func(k int, b float64) []Cell {
		ring := c0.Ring(k)
		out := ring[:0]
		for _, c := range ring {
			if Distance(q.Center, c.Center())-slack <= b {
				out = append(out, c)
			}
		}
		return out
	}
	if err := add([]Cell{c0}); err != nil {
		return nil, err
	}
	// Rings grow as 6k cells; past denseRings, a search that is still not
	// full switches to the populated cells of the regions in range.
	if maxK > 2*denseRings {
		maxK = denseRings
	}
	for k := 1; k <= maxK && read <= maxCandidates; {
		b := bound()
		if ringMinDist(k, edge) > b {
			break
		}
		if best.Len() < q.Limit {
			if err := add(near(k, b)); err != nil {
				return nil, err
			}
			k++
			continue
		}
		// Full: one last read of every cell that may beat the worst kept.
		var cells []Cell
		for ; k <= maxK && ringMinDist(k, edge) <= b; k++ {
			cells = append(cells, near(k, b)...)
		}
		if err := add(cells); err != nil {
			return nil, err
		}
		break
	}
	if b := bound(); ringMinDist(maxK+1, edge) <= b && read <= maxCandidates {
		if err := x.nearbyPopulated(ctx, q, c0, maxK, edge, bound, add); err != nil {
			return nil, err
		}
	}
	out := make([]Hit, best.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(best).(Hit)
	}
	return out, nil
}

// denseRings is how far Nearby walks rings cell by cell (ring k has 6k
// cells; 12 rings ≈ 3 km at r9) when the radius would need more than twice
// as many; beyond it, it lists populated cells instead.
const denseRings = 12

// nearbyPopulated continues a search beyond ring done: it lists the
// populated r9 cells of every r6 region that may hold a point within the
// radius (one pipelined SMEMBERS), orders them by their lower-bound
// distance and reads them in batches until no unread cell can beat the
// bound. Sparse areas and large radii cost a read of the populated cells
// only, not of thousands of empty ones.
func (x *Index) nearbyPopulated(ctx context.Context, q NearbyQuery, c0 Cell, done int, edge float64,
	bound func() float64, add func([]Cell) error) error {
	r0 := c0.Parent(ResRegion)
	redge := circumradius(r0)
	kr := int(q.RadiusM/(1.5*redge*0.9)) + 2
	var regions []Cell
	for _, r := range r0.Disk(kr) {
		if Distance(q.Center, r.Center())-circumradius(r)*regionReach <= q.RadiusM {
			regions = append(regions, r)
		}
	}
	pipe := x.rdb.Pipeline()
	sets := make([]*redis.StringSliceCmd, len(regions))
	for i, r := range regions {
		sets[i] = pipe.SMembers(ctx, x.regionPrefix(r)+"cells")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return fmt.Errorf("geo: nearby regions: %w", err)
	}
	type cand struct {
		c  Cell
		lb float64
	}
	slack := edge * 1.25 // local cells differ little in size
	var cands []cand
	for _, sc := range sets {
		for _, s := range sc.Val() {
			c, err := ParseCell(s)
			if err != nil || c.Res() != ResIndex {
				continue
			}
			if gridWithin(c0, c, done) {
				continue // read by the ring walk
			}
			lb := Distance(q.Center, c.Center()) - slack
			if lb <= q.RadiusM {
				cands = append(cands, cand{c, lb})
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].lb < cands[j].lb })
	const batch = 64
	for i := 0; i < len(cands); {
		b := bound()
		if cands[i].lb > b {
			break
		}
		j := i
		var cells []Cell
		for j < len(cands) && cands[j].lb <= b && len(cells) < batch {
			cells = append(cells, cands[j].c)
			j++
		}
		if err := add(cells); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// gridWithin reports whether b is within k grid steps of a.
func gridWithin(a, b Cell, k int) bool {
	d, ok := a.GridDistance(b)
	return ok && d <= k
}

// circumradius is the largest distance from c's center to its vertices.
func circumradius(c Cell) float64 {
	ctr := c.Center()
	r := 0.0
	for _, v := range c.Boundary() {
		r = math.Max(r, Distance(ctr, v))
	}
	if r == 0 {
		r = EdgeLengthM(c.Res()) * 1.5
	}
	return r
}

// ringMinDist is a lower bound of the distance from a point in the center
// cell to any point in a cell of ring k: centers of ring-k cells are at
// least 1.5·k circumradii away (the hexagonal lattice), each point is within
// one circumradius of its center, and 0.9 absorbs the variation of cell size
// within a few rings.
func ringMinDist(k int, edge float64) float64 {
	return math.Max(0, 1.5*float64(k)-2) * edge * 0.9
}

// Scan calls fn for every fresh driver indexed in cells until fn returns false.
func (x *Index) Scan(ctx context.Context, cells []Cell, fn func(Entry) bool) error {
	const step = 64
	minScore := x.now().Add(-x.stale).UnixMilli()
	for i := 0; i < len(cells); i += step {
		j := min(i+step, len(cells))
		entries, err := x.read(ctx, cells[i:j], minScore)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !fn(e) {
				return nil
			}
		}
	}
	return nil
}

// read returns the fresh, consistent entries of the given cells: members whose
// region record names that cell.
func (x *Index) read(ctx context.Context, cells []Cell, minScore int64) ([]Entry, error) {
	pipe := x.rdb.Pipeline()
	zs := make([]*redis.StringSliceCmd, len(cells))
	min := strconv.FormatInt(minScore, 10)
	for i, c := range cells {
		zs[i] = pipe.ZRangeByScore(ctx, x.cellKey(c), &redis.ZRangeBy{Min: min, Max: "+inf"})
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("geo: nearby read cells: %w", err)
	}
	type regionIDs struct {
		ids   []string
		cells []Cell
	}
	byRegion := map[Cell]*regionIDs{}
	var order []Cell
	for i, z := range zs {
		ids := z.Val()
		if len(ids) == 0 {
			continue
		}
		r := cells[i].Parent(ResRegion)
		g := byRegion[r]
		if g == nil {
			g = &regionIDs{}
			byRegion[r] = g
			order = append(order, r)
		}
		for _, id := range ids {
			g.ids = append(g.ids, id)
			g.cells = append(g.cells, cells[i])
		}
	}
	if len(order) == 0 {
		return nil, nil
	}
	pipe = x.rdb.Pipeline()
	hs := make([]*redis.SliceCmd, len(order))
	for i, r := range order {
		hs[i] = pipe.HMGet(ctx, x.regionPrefix(r)+"w", byRegion[r].ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("geo: nearby read records: %w", err)
	}
	var out []Entry
	for i, r := range order {
		g := byRegion[r]
		for j, v := range hs[i].Val() {
			s, ok := v.(string)
			if !ok {
				continue
			}
			e, ok := parseRecord(g.ids[j], s)
			if !ok || e.Cell != g.cells[j] || e.Seen.UnixMilli() < minScore {
				continue
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// parseRecord reads a region record "cell|seen ms|status|lat|lng" of driver
// id, refusing a removed one ("-") or a malformed one. It allocates nothing
// (Nearby parses a few dozen records per query).
func parseRecord(id, s string) (Entry, bool) {
	var f [5]string
	for n := 0; n < 4; n++ {
		i := strings.IndexByte(s, '|')
		if i < 0 {
			return Entry{}, false
		}
		f[n], s = s[:i], s[i+1:]
	}
	f[4] = s
	if f[0] == "-" {
		return Entry{}, false
	}
	c, err := ParseCell(f[0])
	if err != nil {
		return Entry{}, false
	}
	ms, err1 := strconv.ParseInt(f[1], 10, 64)
	lat, err2 := strconv.ParseFloat(f[3], 64)
	lng, err3 := strconv.ParseFloat(f[4], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Entry{}, false
	}
	return Entry{ID: id, Pos: Point{Lat: lat, Lng: lng}, Cell: c, Seen: time.UnixMilli(ms), Status: f[2]}, true
}

// Trim removes index entries older than olderThan: sorted-set members by
// score, then region records (conditionally, so a concurrent update wins).
// It returns the number of records removed.
func (x *Index) Trim(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := x.now().Add(-olderThan).UnixMilli()
	regions, err := x.rdb.SMembers(ctx, x.prefix+"geo:regions").Result()
	if err != nil {
		return 0, fmt.Errorf("geo: trim: %w", err)
	}
	removed := 0
	for _, rs := range regions {
		r, err := ParseCell(rs)
		if err != nil {
			continue
		}
		rp := x.regionPrefix(r)
		cells, err := x.rdb.SMembers(ctx, rp+"cells").Result()
		if err != nil {
			return removed, fmt.Errorf("geo: trim: %w", err)
		}
		for _, c := range cells {
			key := rp + "c:" + c
			if err := x.rdb.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(cutoff, 10)).Err(); err != nil {
				return removed, fmt.Errorf("geo: trim: %w", err)
			}
			if n, err := x.rdb.ZCard(ctx, key).Result(); err == nil && n == 0 {
				x.rdb.SRem(ctx, rp+"cells", c)
			}
		}
		var cursor uint64
		for {
			kv, next, err := x.rdb.HScan(ctx, rp+"w", cursor, "", 500).Result()
			if err != nil {
				return removed, fmt.Errorf("geo: trim: %w", err)
			}
			args := []any{cutoff}
			for i := 0; i+1 < len(kv); i += 2 {
				parts := strings.SplitN(kv[i+1], "|", 3)
				if len(parts) < 2 {
					args = append(args, kv[i])
					continue
				}
				if ms, err := strconv.ParseInt(parts[1], 10, 64); err != nil || ms < cutoff {
					args = append(args, kv[i])
				}
			}
			if len(args) > 1 {
				n, err := trimScript.Run(ctx, x.rdb, []string{rp + "w", rp + "g"}, args...).Int()
				if err != nil {
					return removed, fmt.Errorf("geo: trim: %w", err)
				}
				removed += n
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return removed, nil
}

type hitHeap []Hit // max-heap by distance: the root is the worst kept hit

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return h[i].DistanceM > h[j].DistanceM }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(v any)        { *h = append(*h, v.(Hit)) }
func (h *hitHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

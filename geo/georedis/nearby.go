package georedis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
)

// geoMaxLat is the latitude up to which positions go into the GEO sets:
// Redis GEO refuses latitudes beyond ±85.05112878°, and the margin keeps a
// position rounded to 7 decimals inside.
const geoMaxLat = 85.05

// regionReach bounds, in circumradii of an r6 region, how far from its
// center the drivers of the region can be: they are in its r9 descendants,
// which reach ~1.039 circumradii out.
const regionReach = 1.06

// nearbyScript reads, in one region, the fresh drivers of a status nearest
// a point with their records: GEOSEARCH of the region's GEO set (ASC,
// COUNT), the records of the members it returns by HMGET, and a larger
// COUNT or radius until want of them match, and every member not farther
// than the want-th by slack was returned too (or the radius reached its
// maximum). Redis computes its distances from the members' geohash
// centers with its own Earth radius: Nearby turns the reply's reach into
// one of its own distances (fromRedisM).
//
// KEYS: GEO set, records hash, the r9 cell set of the query's center (a
// density estimate; any key when the start radius is set). ARGV: lng, lat,
// want, minimum ms, status ("" any), start radius (0: estimated from the
// cell's density), maximum radius, slack (meters, Redis' distances), the
// area of an r9 cell (m²).
// Reply: {reach, id, record, …}: every member whose Redis distance is below
// reach (less 0.0001 m: GEOSEARCH prints 4 decimals) and whose record
// matches is in the reply.
var nearbyScript = redis.NewScript(nearbyLua)

const nearbyLua = `
local want, minms, status = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local r, rmax, slack = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local count = want + 8
if r <= 0 then
  -- A radius that holds count members at the density of the center's
  -- r9 cell (its sorted set, fresh or not: an estimate).
  local n = redis.call('ZCARD', KEYS[3])
  r = math.min(math.max(math.sqrt(count * tonumber(ARGV[9]) / (math.pi * math.max(n, 1))), 10), 400)
end
local recs = {} -- id -> record, or false: no fresh record of the status
while true do
  if r > rmax then r = rmax end
  local res = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2], 'BYRADIUS', r, 'm', 'ASC', 'COUNT', count, 'WITHDIST')
  local ask = {}
  for i = 1, #res do
    if recs[res[i][1]] == nil then ask[#ask + 1] = res[i][1] end
  end
  for j = 1, #ask, 512 do
    local got = redis.call('HMGET', KEYS[2], unpack(ask, j, math.min(j + 511, #ask)))
    for m = 1, #got do
      local rec, ok = got[m], false
      if rec then
        local ms, s = string.match(rec, '^[^|]*|(%d+)|([^|]*)|')
        ok = ms ~= nil and tonumber(ms) >= minms and (status == '' or s == status)
      end
      recs[ask[j + m - 1]] = ok and rec
    end
  end
  local n, lim = 0, nil
  for i = 1, #res do
    if recs[res[i][1]] then
      n = n + 1
      if n == want then lim = tonumber(res[i][2]) + slack break end
    end
  end
  local full = #res >= count
  local reach
  if full then
    if lim and tonumber(res[#res][2]) > lim then reach = lim end
  elseif lim and r >= lim then
    reach = lim
  elseif r >= rmax then
    reach = r
  end
  if reach then
    local out = {tostring(reach)}
    for i = 1, #res do
      if tonumber(res[i][2]) > reach then break end
      local rec = recs[res[i][1]]
      if rec then
        out[#out + 1] = res[i][1]
        out[#out + 1] = rec
      end
    end
    return out
  end
  if full then
    count = count * 2
  elseif lim then
    r = lim
  else
    r = r * 2
  end
end
`

// Redis GEO's distances: haversine with its own Earth radius between the
// query point and the center of the member's 52-bit geohash cell (at most
// 0.34 m from the position GEOADD was given, at the equator; less
// elsewhere), printed with 4 decimals.
const (
	redisEarthRadiusM = 6372797.560856
	// redisScale turns one of our distances into Redis' of the same points.
	redisScale = redisEarthRadiusM / geo.EarthRadiusM
	// geoErrM bounds the difference between our distance to a driver's
	// recorded position and Redis' distance to its geohash cell's center,
	// scaled back by redisScale.
	geoErrM = 0.5
	// geoSlack is how far beyond the want-th matching member, in Redis
	// meters, nearbyScript reads: enough that the reply's reach, back in
	// our meters, is beyond our distance to that member.
	geoSlack = 2*geoErrM*redisScale + 0.01
)

// toRedisM is the Redis distance within which every driver nearer than m
// (our meters) is.
func toRedisM(m float64) float64 { return (m+geoErrM)*redisScale + 0.001 }

// fromRedisM is the distance (our meters) within which every driver is,
// whose Redis distance is below m.
func fromRedisM(m float64) float64 { return m/redisScale - geoErrM }

// nearbyMaxRounds bounds nearbyGeo's round trips: a query needs one, two
// near a region's edge, a few more where the radius holds fewer than Limit
// drivers.
const nearbyMaxRounds = 8

// nearbyStartM is the smallest radius (meters) nearbyScript's first
// GEOSEARCH starts from in a region other than the query's own (there it
// estimates one from the density of the query's r9 cell).
const nearbyStartM = 40.0

// r9AreaM2 is the average area of an r9 cell: with the count of the
// center's cell, nearbyScript's estimate of the radius that holds Limit
// drivers (GEOSEARCH reads every member of boxes a few times that radius
// wide: a radius too large costs as much as one more GEOSEARCH).
const r9AreaM2 = 105332.5

// search answers Nearby from the GEO sets, and hands the queries they can't
// answer to cells.
type search struct {
	*store
	cells *cellSearch
}

// Nearby returns fresh drivers within q.RadiusM of q.Center, nearest first,
// at most q.Limit, exactly (haversine on the recorded positions).
//
// It reads the GEO set of the query's region with nearbyScript: one round
// trip in which Redis finds, by GEOSEARCH, the Limit nearest members whose
// records are fresh and of the status, and returns them with every such
// member up to a meter beyond (a few dozen records, not the thousands of a
// hotspot's r9 cell). Redis' distances differ from ours by less than
// geoErrM (geohash cell centers, its Earth radius): the reply says up to
// which of our distances the region was read completely. While fewer than
// Limit drivers are known within the radius, or another region may hold a
// driver nearer than the Limit-th (one of the r9 cells that may is its
// child; see nearRegions and regionReach), the regions concerned are read,
// or read on, in one more round trip each time. Queries whose radius
// reaches beyond the GEO sets' latitudes or across the antimeridian walk
// the r9 cells instead (nearbyCells).
func (x *search) Nearby(ctx context.Context, q geo.NearbyQuery) ([]geo.Hit, error) {
	if q.Limit <= 0 {
		q.Limit = 10
	}
	if !q.Center.Valid() || geo.CellOf(q.Center, geo.ResIndex) == 0 {
		return nil, fmt.Errorf("georedis: nearby: invalid center %v", q.Center)
	}
	if nearbyUseCells || !inGeoRange(q.Center, q.RadiusM) {
		return x.cells.nearbyCells(ctx, q)
	}
	return x.nearbyGeo(ctx, q)
}

// nearbyUseCells makes Nearby always walk the cells (tests of that path).
var nearbyUseCells = false

// inGeoRange reports whether the disk of radius m around c is within the GEO
// sets' latitudes and does not cross the antimeridian.
func inGeoRange(c geo.Point, m float64) bool {
	dLat := m / (geo.EarthRadiusM * math.Pi / 180) * 1.01
	top := math.Abs(c.Lat) + dLat
	if top >= geoMaxLat {
		return false
	}
	dLng := dLat / math.Cos(top*math.Pi/180)
	return math.Abs(c.Lng)+dLng < 180
}

// regionBound is a region's center and reach (regionReach circumradii).
type regionBound struct {
	center geo.Point
	reach  float64
}

// regionBounds caches regionBound per region: a city's queries meet a few
// dozen regions, and computing one costs an H3 boundary.
var regionBounds struct {
	sync.RWMutex
	m map[geo.Cell]regionBound
}

func boundOf(r geo.Cell) regionBound {
	regionBounds.RLock()
	b, ok := regionBounds.m[r]
	regionBounds.RUnlock()
	if ok {
		return b
	}
	b = regionBound{center: r.Center(), reach: circumradius(r) * regionReach}
	regionBounds.Lock()
	if regionBounds.m == nil || len(regionBounds.m) >= 1<<16 {
		regionBounds.m = make(map[geo.Cell]regionBound)
	}
	regionBounds.m[r] = b
	regionBounds.Unlock()
	return b
}

// nearbyGeo is Nearby over the GEO sets.
func (x *search) nearbyGeo(ctx context.Context, q geo.NearbyQuery) ([]geo.Hit, error) {
	minMS := x.now().Add(-x.stale).UnixMilli()
	c0 := geo.CellOf(q.Center, geo.ResIndex)
	home := c0.Parent(geo.ResRegion)
	type region struct {
		cell     geo.Cell
		lb       float64 // no driver of the region is nearer than this
		complete float64 // every driver of the region nearer was read; <0: not searched
	}
	kr := int(q.RadiusM/(1.5*boundOf(home).reach/regionReach*0.9)) + 2
	var regions []region
	for _, r := range home.Disk(kr) {
		lb := 0.0
		if r != home {
			b := boundOf(r)
			lb = geo.Distance(q.Center, b.center) - b.reach
		}
		if lb <= q.RadiusM {
			regions = append(regions, region{cell: r, lb: lb, complete: -1})
		}
	}
	var hits []geo.Hit    // fresh matching drivers found, nearest first
	var at map[string]int // index in hits by ID, once two replies were merged
	merged := 0
	bound := q.RadiusM // every driver nearer than bound must be read
	lng := strconv.FormatFloat(q.Center.Lng, 'f', -1, 64)
	lat := strconv.FormatFloat(q.Center.Lat, 'f', -1, 64)
	want := strconv.Itoa(q.Limit)
	minArg := strconv.FormatInt(minMS, 10)
	var todo []int
	var cmds []*redis.Cmd
	for round := 0; ; round++ {
		if round == nearbyMaxRounds {
			// Replies that do not settle (records the script takes
			// and parseRecord refuses): the cells give the answer.
			return x.cells.nearbyCells(ctx, q)
		}
		todo = todo[:0]
		var near map[geo.Cell]bool // regions of the r9 cells that may hold a driver within bound
		for i, r := range regions {
			switch {
			case r.complete < 0 && r.lb <= bound && (round > 0 || r.cell == home):
				if r.cell != home {
					if near == nil {
						near = nearRegions(q.Center, c0, bound)
					}
					if len(near) > 0 && !near[r.cell] {
						continue
					}
				}
				todo = append(todo, i)
			case r.complete >= 0 && r.complete < bound:
				todo = append(todo, i)
			}
		}
		if len(todo) == 0 {
			break
		}
		rmax := toRedisM(bound)
		err := runScripts(ctx, x.rdb, func(pipe redis.Pipeliner) error {
			cmds = cmds[:0]
			for _, i := range todo {
				// A region read before goes on from where it was
				// complete; another starts at its lower bound.
				rp := x.regionPrefix(regions[i].cell)
				start := max(nearbyStartM, toRedisM(max(regions[i].lb, regions[i].complete)))
				cell := rp + "g"
				if regions[i].complete < 0 && regions[i].cell == home {
					start, cell = 0, rp+"c:"+c0.String()
				}
				cmds = append(cmds, nearbyScript.EvalSha(ctx, pipe, []string{rp + "g", rp + "w", cell},
					lng, lat, want, minArg, q.Status, start, rmax, geoSlack, r9AreaM2))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("georedis: nearby: %w", err)
		}
		n := len(hits)
		for _, c := range cmds {
			if vals, ok := c.Val().([]any); ok {
				n += len(vals) / 2
			}
		}
		hits = slices.Grow(hits, n-len(hits))
		for j, i := range todo {
			vals, err := cmds[j].Slice()
			if err != nil || len(vals) < 1 {
				return nil, fmt.Errorf("georedis: nearby: bad reply %v: %w", vals, err)
			}
			rs, _ := vals[0].(string)
			reach, err := strconv.ParseFloat(rs, 64)
			if err != nil {
				return nil, fmt.Errorf("georedis: nearby: bad reply reach %q", rs)
			}
			regions[i].complete = max(0, fromRedisM(reach))
			if reach >= rmax {
				regions[i].complete = math.Inf(1) // within bound
			}
			if merged++; merged == 2 {
				at = make(map[string]int, len(hits))
				for n, h := range hits {
					at[h.ID] = n
				}
			}
			for v := 1; v+1 < len(vals); v += 2 {
				id, _ := vals[v].(string)
				rec, _ := vals[v+1].(string)
				e, ok := parseRecord(id, rec)
				if !ok || e.Seen.UnixMilli() < minMS || (q.Status != "" && e.Status != q.Status) {
					continue
				}
				// Drivers beyond the radius stay until the end: the
				// newest of two records of one driver must win.
				h := geo.Hit{Entry: e, DistanceM: geo.Distance(q.Center, e.Pos)}
				if at == nil {
					hits = append(hits, h)
					continue
				}
				if n, ok := at[id]; ok {
					// In two regions for the instant of a move across
					// them, or read again: the newest record is the
					// driver's.
					if e.Seen.After(hits[n].Seen) {
						hits[n] = h
					}
					continue
				}
				at[id] = len(hits)
				hits = append(hits, h)
			}
		}
		slices.SortFunc(hits, func(a, b geo.Hit) int { return cmp.Compare(a.DistanceM, b.DistanceM) })
		if at != nil {
			for n, h := range hits {
				at[h.ID] = n
			}
		}
		if len(hits) >= q.Limit && hits[q.Limit-1].DistanceM < bound {
			bound = hits[q.Limit-1].DistanceM
		}
	}
	n := sort.Search(len(hits), func(i int) bool { return hits[i].DistanceM > q.RadiusM })
	return hits[:min(n, q.Limit)], nil
}

// nearRegions returns the regions of the r9 cells (near c0, the cell of p)
// that may hold a point within m of p, or nil when that would be many cells
// (the regions' reach then decides). A driver is in the region of its r9
// cell, so this is tighter than the reach near a region's edge.
func nearRegions(p geo.Point, c0 geo.Cell, m float64) map[geo.Cell]bool {
	edge := circumradius(c0)
	k := 0
	for ringMinDist(k+1, edge) <= m {
		if k++; k > 6 {
			return nil
		}
	}
	out := map[geo.Cell]bool{}
	for _, c := range c0.Disk(k) {
		// Cells within a few rings differ little in size (see slack in
		// nearbyCells).
		if geo.Distance(p, c.Center())-edge*1.25 <= m {
			out[c.Parent(geo.ResRegion)] = true
		}
	}
	return out
}

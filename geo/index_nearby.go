package geo

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
)

// geoMaxLat is the latitude up to which positions go into the GEO sets:
// Redis GEO refuses latitudes beyond ±85.05112878°, and the margin keeps a
// position rounded to 7 decimals inside.
const geoMaxLat = 85.05

// regionReach bounds, in circumradii of an r6 region, how far from its
// center the drivers of the region can be: they are in its r9 descendants,
// which reach ~1.039 circumradii out.
const regionReach = 1.06

// nearbyScript reads, in one region, the members of the GEO set in one of
// several covers of the query (smallest first), with their records: the
// first cover holding at least its need of members, found by binary search
// over the covers (a ZCOUNT is two rank lookups, whatever the count), or
// the last.
//
// KEYS: GEO set, records hash. ARGV: one per cover, "need lo hi lo hi …"
// (score ranges). Reply: {cover index (1-based), id, record or false, …}.
var nearbyScript = redis.NewScript(`
local parsed = {}
local function cover(c)
  if not parsed[c] then
    local t = {}
    for v in string.gmatch(ARGV[c], '%d+') do t[#t + 1] = v end
    parsed[c] = t
  end
  return parsed[c]
end
local function enough(c)
  local t = cover(c)
  local need, total = tonumber(t[1]), 0
  for r = 2, #t, 2 do
    total = total + redis.call('ZCOUNT', KEYS[1], t[r], t[r + 1])
    if total >= need then return true end
  end
  return false
end
local lo, hi = 1, #ARGV
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  if enough(mid) then hi = mid else lo = mid + 1 end
end
local out = {lo}
local t = cover(lo)
local ids = {}
for r = 2, #t, 2 do
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], t[r], t[r + 1])) do ids[#ids + 1] = id end
end
for j = 1, #ids, 512 do
  local recs = redis.call('HMGET', KEYS[2], unpack(ids, j, math.min(j + 511, #ids)))
  for m = 1, #recs do
    out[#out + 1] = ids[j + m - 1]
    out[#out + 1] = recs[m]
  end
end
return out
`)

// Nearby returns fresh drivers within q.RadiusM of q.Center, nearest first,
// at most q.Limit, exactly (haversine on the recorded positions).
//
// It reads the GEO set of the query's region with nearbyScript: one round
// trip that picks, server-side, the smallest of the covers of disks of
// radius 2 m, 2√2 m, 4 m … around the center (geohash boxes, see
// geoCovers) whose member count makes Limit drivers within its radius
// likely, and returns those members' records — at a hotspot's center a few
// dozen, not the thousands of its r9 cell. Every driver within the cover's
// radius has then been read. While fewer than Limit fresh matching drivers
// are known within the radius of some read cover, or another region may
// hold a driver nearer than the Limit-th (one of the r9 cells that may is
// its child; see nearRegions and regionReach), the regions concerned are
// read, or read again with larger covers, in one more round trip each time. Queries whose
// radius reaches beyond the GEO sets' latitudes or across the antimeridian
// walk the r9 cells instead (nearbyCells).
func (x *Index) Nearby(ctx context.Context, q NearbyQuery) ([]Hit, error) {
	if q.Limit <= 0 {
		q.Limit = 10
	}
	if !q.Center.Valid() || CellOf(q.Center, ResIndex) == 0 {
		return nil, fmt.Errorf("geo: nearby: invalid center %v", q.Center)
	}
	if nearbyUseCells || !inGeoRange(q.Center, q.RadiusM) {
		return x.nearbyCells(ctx, q)
	}
	return x.nearbyGeo(ctx, q)
}

// nearbyUseCells makes Nearby always walk the cells (tests of that path).
var nearbyUseCells = false

// inGeoRange reports whether the disk of radius m around c is within the GEO
// sets' latitudes and does not cross the antimeridian.
func inGeoRange(c Point, m float64) bool {
	dLat := m / (EarthRadiusM * math.Pi / 180) * 1.01
	top := math.Abs(c.Lat) + dLat
	if top >= geoMaxLat {
		return false
	}
	dLng := dLat / math.Cos(top*math.Pi/180)
	return math.Abs(c.Lng)+dLng < 180
}

// nearbyFirstM is the radius of the largest cover Nearby's first round trip
// sends.
const nearbyFirstM = 400.0

// regionBound is a region's center and reach (regionReach circumradii).
type regionBound struct {
	center Point
	reach  float64
}

// regionBounds caches regionBound per region: a city's queries meet a few
// dozen regions, and computing one costs an H3 boundary.
var regionBounds struct {
	sync.RWMutex
	m map[Cell]regionBound
}

func boundOf(r Cell) regionBound {
	regionBounds.RLock()
	b, ok := regionBounds.m[r]
	regionBounds.RUnlock()
	if ok {
		return b
	}
	b = regionBound{center: r.Center(), reach: circumradius(r) * regionReach}
	regionBounds.Lock()
	if regionBounds.m == nil || len(regionBounds.m) >= 1<<16 {
		regionBounds.m = make(map[Cell]regionBound)
	}
	regionBounds.m[r] = b
	regionBounds.Unlock()
	return b
}

// nearbyGeo is Nearby over the GEO sets.
func (x *Index) nearbyGeo(ctx context.Context, q NearbyQuery) ([]Hit, error) {
	minMS := x.now().Add(-x.stale).UnixMilli()
	c0 := CellOf(q.Center, ResIndex)
	home := c0.Parent(ResRegion)
	type region struct {
		cell     Cell
		lb       float64 // no driver of the region is nearer than this
		complete float64 // every driver of the region nearer was read; <0: not searched
	}
	kr := int(q.RadiusM/(1.5*boundOf(home).reach/regionReach*0.9)) + 2
	var regions []region
	for _, r := range home.Disk(kr) {
		lb := 0.0
		if r != home {
			b := boundOf(r)
			lb = Distance(q.Center, b.center) - b.reach
		}
		if lb <= q.RadiusM {
			regions = append(regions, region{cell: r, lb: lb, complete: -1})
		}
	}
	var hits []Hit        // fresh matching drivers found, nearest first
	var at map[string]int // index in hits by ID, once two replies were merged
	merged := 0
	bound := q.RadiusM // every driver nearer than bound must be read
	var covers []geoCover
	for round := 0; ; round++ {
		var todo []int
		var near map[Cell]bool // regions of the r9 cells that may hold a driver within bound
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
		// The first round trip sends covers up to nearbyFirstM only:
		// most queries need less, and a sparse place reads on.
		upTo := bound
		if round == 0 {
			upTo = nearbyFirstM
		}
		covers = geoCovers(covers[:0], q.Center, bound, upTo, q.Limit)
		args := coverArgs(covers)
		var cmds []*redis.Cmd
		err := runScripts(ctx, x.rdb, func(pipe redis.Pipeliner) error {
			cmds = cmds[:0]
			for _, i := range todo {
				from := 0 // the covers not read yet
				for from < len(covers)-1 && covers[from].radius <= regions[i].complete {
					from++
				}
				rp := x.regionPrefix(regions[i].cell)
				cmds = append(cmds, nearbyScript.EvalSha(ctx, pipe, []string{rp + "g", rp + "w"}, args[from:]...))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("geo: nearby: %w", err)
		}
		for j, i := range todo {
			vals, err := cmds[j].Slice()
			if err != nil || len(vals) < 1 {
				return nil, fmt.Errorf("geo: nearby: bad reply %v: %w", vals, err)
			}
			read, _ := vals[0].(int64)
			from := 0
			for from < len(covers)-1 && covers[from].radius <= regions[i].complete {
				from++
			}
			c := from + int(read) - 1
			if c < from || c >= len(covers) {
				return nil, fmt.Errorf("geo: nearby: bad reply cover %d", read)
			}
			regions[i].complete = covers[c].radius
			if covers[c].radius >= bound {
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
				h := Hit{Entry: e, DistanceM: Distance(q.Center, e.Pos)}
				if at == nil {
					hits = append(hits, h)
					continue
				}
				if n, ok := at[id]; ok {
					// In two regions for the instant of a move across
					// them: the newest record is the driver's.
					if e.Seen.After(hits[n].Seen) {
						hits[n] = h
					}
					continue
				}
				at[id] = len(hits)
				hits = append(hits, h)
			}
		}
		slices.SortFunc(hits, func(a, b Hit) int { return cmp.Compare(a.DistanceM, b.DistanceM) })
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
func nearRegions(p Point, c0 Cell, m float64) map[Cell]bool {
	edge := circumradius(c0)
	k := 0
	for ringMinDist(k+1, edge) <= m {
		if k++; k > 6 {
			return nil
		}
	}
	out := map[Cell]bool{}
	for _, c := range c0.Disk(k) {
		// Cells within a few rings differ little in size (see slack in
		// nearbyCells).
		if Distance(p, c.Center())-edge*1.25 <= m {
			out[c.Parent(ResRegion)] = true
		}
	}
	return out
}

// Redis GEO's geohash: the latitude in [-85.05112878, 85.05112878] and the
// longitude in [-180, 180] each scaled to 26 bits, interleaved (longitude
// bits odd, latitude bits even) into a 52-bit score.
const (
	geoLatLimit = 85.05112878
	geoStep     = 26
)

// geoBits is Redis' 26-bit fixed point of v in [min, max] (geohashEncode).
func geoBits(v, min, max float64) uint64 {
	off := (v - min) / (max - min)
	off *= 1 << geoStep
	if off < 0 {
		return 0
	}
	return min64(uint64(off), 1<<geoStep-1)
}

func min64(a, b uint64) uint64 {
	if a < b {
		return a
	}
	return b
}

// spread moves the low 32 bits of v to the even bit positions.
func spread(v uint64) uint64 {
	v &= 0xffffffff
	v = (v | v<<16) & 0x0000ffff0000ffff
	v = (v | v<<8) & 0x00ff00ff00ff00ff
	v = (v | v<<4) & 0x0f0f0f0f0f0f0f0f
	v = (v | v<<2) & 0x3333333333333333
	v = (v | v<<1) & 0x5555555555555555
	return v
}

// geohash is the score Redis GEOADD gives p.
func geohash(p Point) uint64 {
	return spread(geoBits(p.Lat, -geoLatLimit, geoLatLimit)) | spread(geoBits(p.Lng, -180, 180))<<1
}

// geoCover is a set of GEO score ranges holding every member within radius
// of the query, and how many members it must hold for want of them to be
// likely within radius.
type geoCover struct {
	radius float64
	need   int
	ranges [][2]uint64
}

// geoCovers returns covers of the disks of radius 2, 2√2, 4 … m around c up
// to the first reaching upTo, or to a last one of radius bound. Each is the geohash boxes of sides at most
// its radius (and, but far north or south, more than half of it) meeting the
// disk's bounding box.
func geoCovers(out []geoCover, c Point, bound, upTo float64, want int) []geoCover {
	cosLat := math.Cos(c.Lat * math.Pi / 180)
	const mPerDeg = EarthRadiusM * math.Pi / 180
	// One backing array for every cover's ranges.
	n := 2
	for r := 2.0; r < min(bound, upTo); r *= math.Sqrt2 {
		n++
	}
	ranges := make([][2]uint64, 0, 8*n)
	var scratch [][2]uint64
	for r := 2.0; ; r *= math.Sqrt2 {
		last := r >= bound
		if last {
			r = bound
		}
		// The bounding box of a spherical cap, with a margin for rounding.
		d := r / EarthRadiusM
		dLat := d*180/math.Pi + 1e-9
		dLng := math.Asin(math.Min(1, math.Sin(d)/cosLat))*180/math.Pi + 1e-9
		// Box sides (bits of latitude lt and of longitude lg, lg = lt or
		// lt+1 so the boxes are score ranges) at most r.
		lt, lg := 1, 1
		for lt < geoStep && 2*geoLatLimit/float64(uint64(1)<<lt)*mPerDeg > r {
			lt++
		}
		for lg < geoStep && 360/float64(uint64(1)<<lg)*mPerDeg*cosLat > r {
			lg++
		}
		lg = max(lg, lt)
		lt = max(lt, lg-1)
		i0 := geoBits(c.Lat-dLat, -geoLatLimit, geoLatLimit) >> (geoStep - lt)
		i1 := geoBits(c.Lat+dLat, -geoLatLimit, geoLatLimit) >> (geoStep - lt)
		j0 := geoBits(c.Lng-dLng, -180, 180) >> (geoStep - lg)
		j1 := geoBits(c.Lng+dLng, -180, 180) >> (geoStep - lg)
		span := uint64(1)<<(2*geoStep-lt-lg) - 1
		cv := geoCover{radius: r}
		scratch = scratch[:0]
		for i := i0; i <= i1; i++ {
			for j := j0; j <= j1; j++ {
				lo := spread(i<<(geoStep-lt)) | spread(j<<(geoStep-lg))<<1
				// Insert in order (a few boxes): adjacent ones merge.
				k := len(scratch)
				scratch = append(scratch, [2]uint64{})
				for k > 0 && scratch[k-1][0] > lo {
					scratch[k] = scratch[k-1]
					k--
				}
				scratch[k] = [2]uint64{lo, lo + span}
			}
		}
		merged := scratch[:1]
		for _, rg := range scratch[1:] {
			if l := &merged[len(merged)-1]; rg[0] == l[1]+1 {
				l[1] = rg[1]
			} else {
				merged = append(merged, rg)
			}
		}
		start := len(ranges)
		ranges = append(ranges, merged...)
		cv.ranges = ranges[start:len(ranges):len(ranges)]
		// Members needed for want within r if spread evenly over the
		// boxes, with a margin.
		boxes := float64((i1 - i0 + 1) * (j1 - j0 + 1))
		area := boxes * 2 * geoLatLimit / float64(uint64(1)<<lt) * mPerDeg * 360 / float64(uint64(1)<<lg) * mPerDeg * cosLat
		cv.need = int(math.Ceil(1.2 * float64(want) * area / (math.Pi * r * r)))
		out = append(out, cv)
		if last || r >= upTo {
			return out
		}
	}
}

// coverArgs is the ARGV of nearbyScript for covers.
func coverArgs(covers []geoCover) []any {
	n := 0
	for _, c := range covers {
		n += 8 + 34*len(c.ranges)
	}
	buf := make([]byte, 0, n)
	args := make([]any, len(covers))
	for i, c := range covers {
		start := len(buf)
		buf = strconv.AppendInt(buf, int64(c.need), 10)
		for _, r := range c.ranges {
			buf = append(buf, ' ')
			buf = strconv.AppendUint(buf, r[0], 10)
			buf = append(buf, ' ')
			buf = strconv.AppendUint(buf, r[1], 10)
		}
		args[i] = buf[start:len(buf):len(buf)]
	}
	return args
}

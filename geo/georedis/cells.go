package georedis

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
)

// cellReader reads drivers from the r9 cell sets: Scan, and the reads of
// cellSearch.
type cellReader struct{ *store }

// Scan calls fn for every fresh driver indexed in cells until fn returns false.
func (x *cellReader) Scan(ctx context.Context, cells []geo.Cell, fn func(geo.Entry) bool) error {
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
func (x *cellReader) read(ctx context.Context, cells []geo.Cell, minScore int64) ([]geo.Entry, error) {
	pipe := x.rdb.Pipeline()
	zs := make([]*redis.StringSliceCmd, len(cells))
	min := strconv.FormatInt(minScore, 10)
	for i, c := range cells {
		zs[i] = pipe.ZRangeByScore(ctx, x.cellKey(c), &redis.ZRangeBy{Min: min, Max: "+inf"})
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("georedis: nearby read cells: %w", err)
	}
	type regionIDs struct {
		ids   []string
		cells []geo.Cell
	}
	byRegion := map[geo.Cell]*regionIDs{}
	var order []geo.Cell
	for i, z := range zs {
		ids := z.Val()
		if len(ids) == 0 {
			continue
		}
		r := cells[i].Parent(geo.ResRegion)
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
		return nil, fmt.Errorf("georedis: nearby read records: %w", err)
	}
	var out []geo.Entry
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
// id, refusing a removed one ("-") or a malformed one.
func parseRecord(id, s string) (geo.Entry, bool) {
	f := strings.SplitN(s, "|", 5)
	if len(f) != 5 || f[0] == "-" {
		return geo.Entry{}, false
	}
	c, err := geo.ParseCell(f[0])
	if err != nil {
		return geo.Entry{}, false
	}
	ms, err1 := strconv.ParseInt(f[1], 10, 64)
	lat, err2 := strconv.ParseFloat(f[3], 64)
	lng, err3 := strconv.ParseFloat(f[4], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return geo.Entry{}, false
	}
	return geo.Entry{ID: id, Pos: geo.Point{Lat: lat, Lng: lng}, Cell: c, Seen: time.UnixMilli(ms), Status: f[2]}, true
}

// cellSearch answers Nearby by walking the r9 cell sets where the GEO sets
// don't reach (near the poles and the antimeridian), or when tests ask.
type cellSearch struct{ *cellReader }

// maxCandidates bounds the candidate set one nearbyCells reads before sorting.
const maxCandidates = 20000

// nearbyCells is Nearby over the r9 cell sets. It reads the center's r9
// cell first, then ring by ring (one pipelined read per step) while fewer
// than Limit drivers were found; once Limit are kept it reads, in one last
// step, every unread cell that could still hold a nearer driver — a cell
// whose nearest possible point (distance to its center minus its
// circumradius) is closer than the worst kept driver — and stops.
func (x *cellSearch) nearbyCells(ctx context.Context, q geo.NearbyQuery) ([]geo.Hit, error) {
	if q.Limit <= 0 {
		q.Limit = 10
	}
	c0 := geo.CellOf(q.Center, geo.ResIndex)
	if c0 == 0 {
		return nil, fmt.Errorf("georedis: nearby: invalid center %v", q.Center)
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
	add := func(cells []geo.Cell) error {
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
			d := geo.Distance(q.Center, e.Pos)
			if d > q.RadiusM {
				continue
			}
			read++
			if best.Len() < q.Limit {
				heap.Push(best, geo.Hit{Entry: e, DistanceM: d})
			} else if d < (*best)[0].DistanceM {
				(*best)[0] = geo.Hit{Entry: e, DistanceM: d}
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
	near := func(k int, b float64) []geo.Cell {
		ring := c0.Ring(k)
		out := ring[:0]
		for _, c := range ring {
			if geo.Distance(q.Center, c.Center())-slack <= b {
				out = append(out, c)
			}
		}
		return out
	}
	if err := add([]geo.Cell{c0}); err != nil {
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
		var cells []geo.Cell
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
	out := make([]geo.Hit, best.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(best).(geo.Hit)
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
func (x *cellSearch) nearbyPopulated(ctx context.Context, q geo.NearbyQuery, c0 geo.Cell, done int, edge float64,
	bound func() float64, add func([]geo.Cell) error) error {
	r0 := c0.Parent(geo.ResRegion)
	redge := circumradius(r0)
	kr := int(q.RadiusM/(1.5*redge*0.9)) + 2
	var regions []geo.Cell
	for _, r := range r0.Disk(kr) {
		if geo.Distance(q.Center, r.Center())-circumradius(r)*regionReach <= q.RadiusM {
			regions = append(regions, r)
		}
	}
	pipe := x.rdb.Pipeline()
	sets := make([]*redis.StringSliceCmd, len(regions))
	for i, r := range regions {
		sets[i] = pipe.SMembers(ctx, x.regionPrefix(r)+"cells")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return fmt.Errorf("georedis: nearby regions: %w", err)
	}
	type cand struct {
		c  geo.Cell
		lb float64
	}
	slack := edge * 1.25 // local cells differ little in size
	var cands []cand
	for _, sc := range sets {
		for _, s := range sc.Val() {
			c, err := geo.ParseCell(s)
			if err != nil || c.Res() != geo.ResIndex {
				continue
			}
			if gridWithin(c0, c, done) {
				continue // read by the ring walk
			}
			lb := geo.Distance(q.Center, c.Center()) - slack
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
		var cells []geo.Cell
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
func gridWithin(a, b geo.Cell, k int) bool {
	d, ok := a.GridDistance(b)
	return ok && d <= k
}

// circumradius is the largest distance from c's center to its vertices.
func circumradius(c geo.Cell) float64 {
	ctr := c.Center()
	r := 0.0
	for _, v := range c.Boundary() {
		r = math.Max(r, geo.Distance(ctr, v))
	}
	if r == 0 {
		r = geo.EdgeLengthM(c.Res()) * 1.5
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

type hitHeap []geo.Hit // max-heap by distance: the root is the worst kept hit

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return h[i].DistanceM > h[j].DistanceM }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(v any)        { *h = append(*h, v.(geo.Hit)) }
func (h *hitHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

package zone

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// Resolutions of the index.
const (
	// ResEdge is the resolution of the cells a zone is polyfilled at
	// (r9, edge ~174 m). Cells entirely inside a zone are compacted to
	// coarser parents; cells on its boundary stay at ResEdge and a point
	// there is checked against the polygon exactly, so the resolution only
	// trades memory for exact checks, never correctness: a zone thinner
	// than a cell is all boundary cells.
	ResEdge = 9
	// gridDeg is the size in degrees of the buckets of the zones'
	// bounding boxes (about 1.1 km of latitude), which find the zones a
	// segment may cross and filter the ingest path (Near) without cgo.
	gridDeg = 0.01
	// nearMarginDeg widens Near's box: the driver's previous position is
	// only known as a cell (r9 cells are within ~0.003° of their centre).
	nearMarginDeg = 0.004
	// maxGridBuckets: a box covering more buckets than this is checked
	// against every zone instead.
	maxGridBuckets = 64
)

// maxCellsPerZone bounds the polyfill of one zone (Config.MaxAreaKM2 keeps
// zones far below it: 2,500 km² is about 25,000 r9 cells).
const maxCellsPerZone = 2_000_000

// Index finds the zones at a point. It is immutable: build a new one when
// zones change and swap it in (zoneredis does). Safe for concurrent use.
type Index struct {
	zones []indexed
	byID  map[string]int32
	// cells maps a cell (ResEdge boundary cells, coarser compacted inside
	// cells) to the zones it belongs to.
	cells map[geo.Cell][]ref
	// res are the resolutions of the keys of cells, finest first.
	res []int
	// grid maps a gridDeg bucket to the zones whose box overlaps it.
	grid     map[bucket][]gridRef
	services []int32 // service_area zones
}

type indexed struct {
	Zone
	box   bbox
	cells *compiled
	// small: few enough vertices that a point is checked against the
	// polygon directly, cheaper than finding its cell (cgo).
	small bool
}

// smallVertices is the most vertices a zone checked directly may have.
const smallVertices = 64

// gridRef is a zone whose box overlaps a grid bucket; full: the bucket
// lies entirely inside the zone (no edge comes near it), so every point
// in it is inside without a check.
type gridRef struct {
	zone int32
	full bool
}

type ref struct {
	zone int32
	edge bool // boundary cell: check the polygon
}

// compiled is a zone's cells, kept across index rebuilds (NewIndexFrom).
type compiled struct {
	version int64
	updated time.Time
	edge    []geo.Cell // ResEdge boundary cells
	inside  []geo.Cell // compacted inside cells
}

// compile polyfills z.
func compile(z Zone) (*compiled, error) {
	var inside, edge []geo.Cell
	for _, p := range z.Polygons {
		in, ed, err := geo.PolygonCells(p, ResEdge, maxCellsPerZone)
		if err != nil {
			return nil, fmt.Errorf("zone: index %s: %w", z.ID, err)
		}
		inside, edge = append(inside, in...), append(edge, ed...)
	}
	// Parts of a MultiPolygon may share cells: a cell inside one part
	// and on the edge of another is inside; duplicates are dropped.
	slices.Sort(inside)
	inside = slices.Compact(inside)
	slices.Sort(edge)
	edge = slices.Compact(edge)
	edge = slices.DeleteFunc(edge, func(c geo.Cell) bool { _, found := slices.BinarySearch(inside, c); return found })
	return &compiled{version: z.Version, updated: z.UpdatedAt, edge: edge, inside: geo.Compact(inside)}, nil
}

// NewIndex indexes zones (each already validated).
func NewIndex(zones []Zone) (*Index, error) { return NewIndexFrom(nil, zones) }

// NewIndexFrom indexes zones, reusing prev's cells of the zones whose
// version and update time are unchanged (prev may be nil): a rebuild after
// one zone changed polyfills that zone only.
func NewIndexFrom(prev *Index, zones []Zone) (*Index, error) {
	x := &Index{byID: make(map[string]int32, len(zones)), cells: map[geo.Cell][]ref{}, grid: map[bucket][]gridRef{}}
	resSeen := map[int]bool{}
	for _, z := range zones {
		if _, dup := x.byID[z.ID]; dup {
			return nil, fmt.Errorf("zone: index: %s twice", z.ID)
		}
		if len(z.Polygons) == 0 {
			return nil, fmt.Errorf("zone: index: %s has no polygon", z.ID)
		}
		var cz *compiled
		if prev != nil {
			if j, ok := prev.byID[z.ID]; ok {
				if old := prev.zones[j].cells; old.version == z.Version && old.updated.Equal(z.UpdatedAt) {
					cz = old
				}
			}
		}
		if cz == nil {
			var err error
			if cz, err = compile(z); err != nil {
				return nil, err
			}
		}
		i := int32(len(x.zones))
		ix := indexed{Zone: z, box: boxOf(z.Polygons[0].Outer), cells: cz, small: vertices(z) <= smallVertices}
		for _, p := range z.Polygons {
			ix.box.union(boxOf(p.Outer))
		}
		for _, c := range cz.edge {
			x.cells[c] = append(x.cells[c], ref{zone: i, edge: true})
			resSeen[ResEdge] = true
		}
		for _, c := range cz.inside {
			x.cells[c] = append(x.cells[c], ref{zone: i})
			resSeen[c.Res()] = true
		}
		lo, hi := bucketOf(ix.box.minLat, ix.box.minLng), bucketOf(ix.box.maxLat, ix.box.maxLng)
		near := edgeBuckets(z)
		for la := lo.lat; la <= hi.lat; la++ {
			for ln := lo.lng; ln <= hi.lng; ln++ {
				b := bucket{la, ln}
				x.grid[b] = append(x.grid[b], gridRef{zone: i, full: !near[b] && z.Contains(b.center())})
			}
		}
		x.byID[z.ID] = i
		x.zones = append(x.zones, ix)
		if z.Kind == KindServiceArea {
			x.services = append(x.services, i)
		}
	}
	for r := range resSeen {
		x.res = append(x.res, r)
	}
	slices.SortFunc(x.res, func(a, b int) int { return b - a })
	return x, nil
}

// Len is the number of zones.
func (x *Index) Len() int {
	if x == nil {
		return 0
	}
	return len(x.zones)
}

// Zone returns the zone with id.
func (x *Index) Zone(id string) (Zone, bool) {
	if x == nil {
		return Zone{}, false
	}
	i, ok := x.byID[id]
	if !ok {
		return Zone{}, false
	}
	return x.zones[i].Zone, true
}

// Zones returns every zone, in index order.
func (x *Index) Zones() []Zone {
	if x == nil {
		return nil
	}
	out := make([]Zone, len(x.zones))
	for i := range x.zones {
		out[i] = x.zones[i].Zone
	}
	return out
}

// appendAt appends the positions of the zones containing p to dst, in
// index order. The zones whose box may hold p come from p's grid bucket:
// a bucket entirely inside a zone answers at once, a small zone is
// checked against its polygon, a large one through p's cell (r9 boundary
// cells checked exactly). So a point deep inside a big zone or near small
// ones costs no cgo call.
func (x *Index) appendAt(dst []int32, p geo.Point) []int32 {
	if x == nil || len(x.zones) == 0 || !p.Valid() {
		return dst
	}
	refs := x.grid[bucketOf(p.Lat, p.Lng)]
	n := len(dst)
	var c geo.Cell
	for _, r := range refs {
		z := &x.zones[r.zone]
		switch {
		case r.full:
			dst = append(dst, r.zone)
		case !z.box.contains(p):
		case z.small:
			if z.contains(p) {
				dst = append(dst, r.zone)
			}
		default:
			if c == 0 {
				if c = geo.CellOf(p, ResEdge); c == 0 {
					return dst[:n]
				}
			}
			if x.cellHolds(c, r.zone, p) {
				dst = append(dst, r.zone)
			}
		}
	}
	slices.Sort(dst[n:])
	return dst
}

// cellHolds reports whether zone i contains p, whose ResEdge cell is c,
// by the zone's cells: an inside cell holds p, a boundary cell is checked
// exactly.
func (x *Index) cellHolds(c geo.Cell, i int32, p geo.Point) bool {
	for _, r := range x.res {
		k := c
		if r != ResEdge {
			k = c.Parent(r)
		}
		for _, rf := range x.cells[k] {
			if rf.zone == i {
				return !rf.edge || x.zones[i].contains(p)
			}
		}
	}
	return false
}

// At returns the ids of the zones containing p, sorted.
func (x *Index) At(p geo.Point) []string {
	var buf [8]int32
	at := x.appendAt(buf[:0], p)
	out := make([]string, len(at))
	for i, z := range at {
		out[i] = x.zones[z].ID
	}
	slices.Sort(out)
	return out
}

// Near reports whether a driver whose previous position was in cell from
// (zero when unknown) and who sent the fixes pts may be in or cross a
// zone: whether their bounding box, widened by the size of a cell, meets
// a zone's bounding box. False means the move certainly touches no zone,
// given the driver was in no zone at from. It is the ingest path's filter:
// no cgo but from's centre, a few map lookups.
func (x *Index) Near(from geo.Cell, pts ...geo.Point) bool {
	if x == nil || len(x.zones) == 0 || len(pts) == 0 {
		return false
	}
	b := bbox{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	for _, p := range pts {
		b.add(p)
	}
	if from.Valid() {
		b.add(from.Center())
	}
	b.minLat, b.minLng, b.maxLat, b.maxLng = b.minLat-nearMarginDeg, b.minLng-nearMarginDeg, b.maxLat+nearMarginDeg, b.maxLng+nearMarginDeg
	found := false
	x.overlapping(b, func(int32) bool { found = true; return false })
	return found
}

// bucket is a gridDeg cell of latitude and longitude.
type bucket struct{ lat, lng int32 }

func bucketOf(lat, lng float64) bucket {
	return bucket{int32(math.Floor(lat / gridDeg)), int32(math.Floor(lng / gridDeg))}
}

func (b bucket) center() geo.Point {
	return geo.Point{Lat: (float64(b.lat) + 0.5) * gridDeg, Lng: (float64(b.lng) + 0.5) * gridDeg}
}

// edgeBuckets returns the buckets an edge of z may touch: those its
// edges' boxes (widened a little, against rounding at bucket borders)
// overlap. A bucket of z's box not among them has no edge in it, so it
// is all inside z or all outside, as its centre is.
func edgeBuckets(z Zone) map[bucket]bool {
	const pad = 1e-7
	out := map[bucket]bool{}
	mark := func(ring []geo.Point) {
		for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
			a, b := ring[j], ring[i]
			lo := bucketOf(math.Min(a.Lat, b.Lat)-pad, math.Min(a.Lng, b.Lng)-pad)
			hi := bucketOf(math.Max(a.Lat, b.Lat)+pad, math.Max(a.Lng, b.Lng)+pad)
			for la := lo.lat; la <= hi.lat; la++ {
				for ln := lo.lng; ln <= hi.lng; ln++ {
					out[bucket{la, ln}] = true
				}
			}
		}
	}
	for _, p := range z.Polygons {
		mark(p.Outer)
		for _, h := range p.Holes {
			mark(h)
		}
	}
	return out
}

// vertices counts z's vertices, holes included.
func vertices(z Zone) int {
	n := 0
	for _, p := range z.Polygons {
		n += len(p.Outer)
		for _, h := range p.Holes {
			n += len(h)
		}
	}
	return n
}

// overlapping calls yield with each zone whose box overlaps b (a zone may
// come more than once), until yield returns false.
func (x *Index) overlapping(b bbox, yield func(int32) bool) {
	lo, hi := bucketOf(b.minLat, b.minLng), bucketOf(b.maxLat, b.maxLng)
	if n := (int64(hi.lat) - int64(lo.lat) + 1) * (int64(hi.lng) - int64(lo.lng) + 1); n > maxGridBuckets || n <= 0 {
		for i := range x.zones {
			if x.zones[i].box.overlaps(b) && !yield(int32(i)) {
				return
			}
		}
		return
	}
	for la := lo.lat; la <= hi.lat; la++ {
		for ln := lo.lng; ln <= hi.lng; ln++ {
			for _, r := range x.grid[bucket{la, ln}] {
				if i := r.zone; x.zones[i].box.overlaps(b) && !yield(i) {
					return
				}
			}
		}
	}
}

// Serves reports whether p is inside a service_area zone, or no
// service_area zone exists.
func (x *Index) Serves(p geo.Point) bool {
	if x == nil || len(x.services) == 0 {
		return true
	}
	var buf [8]int32
	for _, i := range x.appendAt(buf[:0], p) {
		if x.zones[i].Kind == KindServiceArea {
			return true
		}
	}
	return false
}

// contains is the exact point-in-zone check.
func (z *indexed) contains(p geo.Point) bool {
	if !z.box.contains(p) {
		return false
	}
	for _, poly := range z.Polygons {
		if inPolygon(poly, p) {
			return true
		}
	}
	return false
}

// Contains reports whether zone z contains p (exact, without the index).
func (z Zone) Contains(p geo.Point) bool {
	for _, poly := range z.Polygons {
		if inPolygon(poly, p) {
			return true
		}
	}
	return false
}

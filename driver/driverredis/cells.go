package driverredis

import (
	"hash/maphash"
	"math"
	"sync/atomic"

	"github.com/hextrack/hextrack/geo"
)

// cellDisk is a disk around the center of an r9 cell that lies inside the
// cell: a point within it is in that cell without asking H3. Ingest sends
// ingestScript every ping's r9 cell, and the fixes of one batch are mostly
// meters apart, so one H3 lookup (a cgo call) plus the cell's geometry
// serves most of a batch instead of one lookup per ping.
//
// The disk's radius is 90% (less 1 m) of the distance from the center to
// the nearest edge of the cell's boundary polygon, measured in a local
// plane (at ~150 m the plane and the sphere differ by millimeters; the
// polygon is star-shaped around its center, so a disk free of its edges is
// inside it). Near the poles and across the antimeridian there is no disk
// (every point asks H3).
//
// A fix outside the disk but inside the boundary polygon, more than
// polyMargin from its edges, is in the cell too (the polygon test costs
// more than the disk's, far less than an H3 lookup); only a fix near the
// edges asks H3.
type cellDisk struct {
	cell   geo.Cell
	center geo.Point
	cosLat float64
	r2     float64 // squared radius, m²; 0: no disk (and no polygon)
	poly   [10][2]float64
	n      int // vertices in poly; 0: none
}

// polyMargin is how far inside its cell's boundary polygon a fix must be
// for the polygon test (the local plane differs from H3's geometry by
// millimeters over a cell).
const polyMargin = 2.0 // m

// metersPerDegree is the length of a degree of latitude (mean radius).
const metersPerDegree = 6371008.8 * math.Pi / 180

// cellDiskMinBatch: smaller batches look each ping up (the geometry costs
// two more H3 calls).
const cellDiskMinBatch = 4

// newCellDisk looks p's cell up and builds its disk.
func newCellDisk(p geo.Point) cellDisk { return diskOf(geo.CellOf(p, geo.ResIndex)) }

// diskOf builds the disk of cell c.
func diskOf(c geo.Cell) cellDisk {
	d := cellDisk{cell: c}
	if c == 0 {
		return d
	}
	d.center = c.Center()
	if math.Abs(d.center.Lat) > 80 {
		return d
	}
	d.cosLat = math.Cos(d.center.Lat * math.Pi / 180)
	b := c.Boundary()
	if len(b) < 3 {
		return d
	}
	if len(b) > len(d.poly) {
		return d
	}
	for i, v := range b {
		x, y, ok := d.local(v)
		if !ok {
			return d
		}
		d.poly[i] = [2]float64{x, y}
	}
	r := math.Inf(1)
	for i := range b {
		a, c := d.poly[i], d.poly[(i+1)%len(b)]
		r = min(r, segmentDist(a[0], a[1], c[0], c[1]))
	}
	if s := 0.9*r - 1; s > 0 {
		d.r2 = s * s
		d.n = len(b)
	}
	return d
}

// inPoly reports whether the local point (x, y) is inside the boundary
// polygon, more than polyMargin from every edge.
func (d *cellDisk) inPoly(x, y float64) bool {
	inside := false
	for i := range d.n {
		a, b := d.poly[i], d.poly[(i+1)%d.n]
		if segmentDist(a[0]-x, a[1]-y, b[0]-x, b[1]-y) <= polyMargin {
			return false
		}
		if (a[1] > y) != (b[1] > y) && x < (b[0]-a[0])*(y-a[1])/(b[1]-a[1])+a[0] {
			inside = !inside
		}
	}
	return inside
}

// local is p in meters east and north of the center; ok is false far away
// in longitude (or across the antimeridian).
func (d *cellDisk) local(p geo.Point) (x, y float64, ok bool) {
	dlng := p.Lng - d.center.Lng
	if math.Abs(dlng) > 1 {
		return 0, 0, false
	}
	return dlng * d.cosLat * metersPerDegree, (p.Lat - d.center.Lat) * metersPerDegree, true
}

// cellOf is p's r9 cell: d's cell when p is in its disk or well inside its
// polygon, else H3's answer; when that is another cell (the driver moved
// on), d becomes its disk. A fix within polyMargin of an edge costs one
// lookup, as without the disk.
func (d *cellDisk) cellOf(p geo.Point) geo.Cell {
	if d.r2 > 0 {
		if x, y, ok := d.local(p); ok && (x*x+y*y < d.r2 || d.inPoly(x, y)) {
			return d.cell
		}
	}
	c := geo.CellOf(p, geo.ResIndex)
	if c != d.cell {
		*d = diskOf(c)
	}
	return c
}

// segmentDist is the distance from the origin to the segment a-b.
func segmentDist(ax, ay, bx, by float64) float64 {
	dx, dy := bx-ax, by-ay
	l2 := dx*dx + dy*dy
	t := 0.0
	if l2 > 0 {
		t = min(1, max(0, -(ax*dx+ay*dy)/l2))
	}
	x, y := ax+t*dx, ay+t*dy
	return math.Hypot(x, y)
}

// diskCache keeps, per driver, the disk of the cell its last batch ended
// in, so the next batch (the driver mostly still in that cell) starts from
// it without the three H3 calls (cell, center, boundary) a new disk costs.
// It is a fixed table of slots chosen by a hash of the driver ID: drivers
// that share a slot overwrite each other's disk, which costs a lookup,
// never a wrong cell (a disk only ever answers for points inside its own
// cell), and memory stays bounded whatever the number of drivers.
type diskCache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[cellDisk]
}

// diskSlots is the table's size (each slot a pointer; a disk ~200 bytes).
const diskSlots = 1 << 14

func newDiskCache() diskCache {
	return diskCache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[cellDisk], diskSlots)}
}

// slot is driver id's slot.
func (c *diskCache) slot(id string) *atomic.Pointer[cellDisk] {
	return &c.slots[maphash.String(c.seed, id)%uint64(len(c.slots))]
}

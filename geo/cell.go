package geo

import (
	"fmt"

	"github.com/uber/h3-go/v4"
)

// Resolutions used across hextrack.
const (
	// ResIndex is the resolution of the driver position index (r9 cells,
	// ~0.1 km², edge ~174 m: a city block or two).
	ResIndex = 9
	// ResRegion is the parent resolution whose cell is the Redis hash tag of
	// index keys (r6, edge ~3.7 km: a city spreads over many Cluster slots,
	// most moves stay inside one region).
	ResRegion = 6
)

// Cell is an H3 cell index. The zero Cell is invalid.
type Cell uint64

// CellOf returns the cell of resolution res containing p. It returns the zero
// Cell for an invalid point or resolution.
func CellOf(p Point, res int) Cell {
	c, err := h3.LatLngToCell(h3.NewLatLng(p.Lat, p.Lng), res)
	if err != nil {
		return 0
	}
	return Cell(c)
}

// ParseCell parses the hexadecimal form of a cell.
func ParseCell(s string) (Cell, error) {
	c := h3.CellFromString(s)
	if c == 0 || !c.IsValid() {
		return 0, fmt.Errorf("geo: invalid cell %q", s)
	}
	return Cell(c), nil
}

// String is the canonical lower-case hexadecimal form ("8939...fff").
func (c Cell) String() string { return h3.Cell(c).String() }

// Valid reports whether c is a valid H3 cell.
func (c Cell) Valid() bool { return c != 0 && h3.Cell(c).IsValid() }

// Res is the resolution of c.
func (c Cell) Res() int { return h3.Cell(c).Resolution() }

// Parent returns the ancestor of c at resolution res (zero if res > c.Res()
// or c is zero). It is computed from the index's bits, without cgo: the
// resolution field set to res and the digits below it set to 7 (unused),
// as H3's own cellToParent does for a valid cell.
func (c Cell) Parent(res int) Cell {
	cr := int((uint64(c) >> 52) & 0xf)
	if c == 0 || res < 0 || res > cr {
		return 0
	}
	v := uint64(c)&^(uint64(0xf)<<52) | uint64(res)<<52
	for r := res + 1; r <= 15; r++ {
		v |= uint64(7) << ((15 - r) * 3)
	}
	return Cell(v)
}

// Center is the centroid of c.
func (c Cell) Center() Point {
	ll, err := h3.CellToLatLng(h3.Cell(c))
	if err != nil {
		return Point{}
	}
	return Point{Lat: ll.Lat, Lng: ll.Lng}
}

// Boundary returns the vertices of c, counter-clockwise.
func (c Cell) Boundary() []Point {
	b, err := h3.CellToBoundary(h3.Cell(c))
	if err != nil {
		return nil
	}
	out := make([]Point, len(b))
	for i, v := range b {
		out[i] = Point{Lat: v.Lat, Lng: v.Lng}
	}
	return out
}

// Ring returns the cells at grid distance exactly k from c (k=0 is c itself).
// Near pentagons it may return fewer cells.
func (c Cell) Ring(k int) []Cell {
	if k == 0 {
		return []Cell{c}
	}
	r, err := h3.GridRing(h3.Cell(c), k)
	if err != nil {
		// GridRing fails near pentagons; fall back to the disk difference.
		disk, err1 := h3.GridDiskDistances(h3.Cell(c), k)
		if err1 != nil || len(disk) <= k {
			return nil
		}
		r = disk[k]
	}
	return toCells(r)
}

// Disk returns every cell within grid distance k of c.
func (c Cell) Disk(k int) []Cell {
	d, err := h3.GridDisk(h3.Cell(c), k)
	if err != nil {
		return nil
	}
	return toCells(d)
}

// GridDistance is the number of grid steps between c and o (ok=false when
// H3 cannot tell, e.g. across a pentagon or too far apart).
func (c Cell) GridDistance(o Cell) (int, bool) {
	d, err := h3.GridDistance(h3.Cell(c), h3.Cell(o))
	return d, err == nil
}

// Children returns the descendants of c at resolution res.
func (c Cell) Children(res int) []Cell {
	ch, err := h3.Cell(c).Children(res)
	if err != nil {
		return nil
	}
	return toCells(ch)
}

// EdgeLengthM is the average hexagon edge length at res in meters.
func EdgeLengthM(res int) float64 {
	m, err := h3.HexagonEdgeLengthAvgM(res)
	if err != nil {
		return 0
	}
	return m
}

// CellsInBox returns the cells of resolution res covering the rectangle
// [south, north] × [west, east], capped at max cells (ok=false when capped).
func CellsInBox(south, west, north, east float64, res, max int) ([]Cell, bool) {
	poly := h3.GeoPolygon{GeoLoop: h3.GeoLoop{
		{Lat: south, Lng: west}, {Lat: south, Lng: east},
		{Lat: north, Lng: east}, {Lat: north, Lng: west},
	}}
	cs, err := h3.PolygonToCellsExperimental(poly, res, h3.ContainmentOverlapping, int64(max))
	if err != nil {
		return nil, false
	}
	if len(cs) > max {
		return toCells(cs[:max]), false
	}
	return toCells(cs), true
}

func toCells(in []h3.Cell) []Cell {
	out := make([]Cell, 0, len(in))
	for _, c := range in {
		if c != 0 {
			out = append(out, Cell(c))
		}
	}
	return out
}

package geo

import (
	"errors"
	"fmt"

	"github.com/uber/h3-go/v4"
)

// Polygon is an outer ring with optional holes. Rings are open: the last
// vertex is not the first one repeated (the closing edge is implied).
// Edges are straight lines in latitude/longitude, as in GeoJSON.
type Polygon struct {
	Outer []Point
	Holes [][]Point
}

// ErrTooManyCells is returned by PolygonCells when the polygon covers more
// cells than the caller allows.
var ErrTooManyCells = errors.New("geo: polygon covers too many cells")

// PolygonCells returns the cells of resolution res that lie entirely inside
// poly (inside) and the cells that overlap it without lying entirely inside
// it (edge: a point there may or may not be in poly; callers check it
// exactly). Together they cover every point of poly. At most max cells are
// computed (ErrTooManyCells beyond).
func PolygonCells(poly Polygon, res, max int) (inside, edge []Cell, err error) {
	gp := h3.GeoPolygon{GeoLoop: loop(poly.Outer)}
	for _, h := range poly.Holes {
		gp.Holes = append(gp.Holes, loop(h))
	}
	// The bounding-box overlap is a superset of the exact overlap: a cell
	// kept too many costs an exact check, a cell missed would lose points.
	cover, err := h3.PolygonToCellsExperimental(gp, res, h3.ContainmentOverlappingBbox, int64(max))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrTooManyCells, err)
	}
	full, err := h3.PolygonToCellsExperimental(gp, res, h3.ContainmentFull, int64(max))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrTooManyCells, err)
	}
	in := make(map[h3.Cell]bool, len(full))
	for _, c := range full {
		if c != 0 {
			in[c] = true
		}
	}
	inside = toCells(full)
	edge = make([]Cell, 0, len(cover))
	for _, c := range cover {
		if c != 0 && !in[c] {
			edge = append(edge, Cell(c))
		}
	}
	return inside, edge, nil
}

// Compact replaces each complete set of siblings in cs by their parent,
// recursively (h3 compactCells). The input must hold distinct cells of one
// resolution; on failure it is returned unchanged.
func Compact(cs []Cell) []Cell {
	if len(cs) == 0 {
		return cs
	}
	in := make([]h3.Cell, len(cs))
	for i, c := range cs {
		in[i] = h3.Cell(c)
	}
	out, err := h3.CompactCells(in)
	if err != nil {
		return cs
	}
	return toCells(out)
}

func loop(ring []Point) h3.GeoLoop {
	l := make(h3.GeoLoop, len(ring))
	for i, p := range ring {
		l[i] = h3.LatLng{Lat: p.Lat, Lng: p.Lng}
	}
	return l
}

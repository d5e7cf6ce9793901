package zone

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/hextrack/hextrack/geo"
)

// parseGeometry reads a GeoJSON Polygon or MultiPolygon geometry (RFC 7946:
// positions are [longitude, latitude, ...]; extra numbers such as an
// altitude are ignored) and checks it: every ring closed, at least three
// distinct vertices, no ring crossing itself, coordinates in range, at most
// cfg.MaxVertices vertices and cfg.MaxAreaKM2 of area. Repeated
// consecutive positions are dropped. Rings are returned open.
func parseGeometry(raw json.RawMessage, cfg Config) ([]geo.Polygon, error) {
	var g struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, fmt.Errorf("%w: not a GeoJSON geometry object", ErrBadGeometry)
	}
	var polys [][][][]float64
	switch g.Type {
	case "Polygon":
		var p [][][]float64
		if err := json.Unmarshal(g.Coordinates, &p); err != nil {
			return nil, fmt.Errorf("%w: Polygon coordinates must be an array of rings of [lng, lat] positions", ErrBadGeometry)
		}
		polys = [][][][]float64{p}
	case "MultiPolygon":
		if err := json.Unmarshal(g.Coordinates, &polys); err != nil {
			return nil, fmt.Errorf("%w: MultiPolygon coordinates must be an array of polygons", ErrBadGeometry)
		}
	default:
		return nil, fmt.Errorf("%w: type %q: want Polygon or MultiPolygon", ErrBadGeometry, clip(g.Type))
	}
	if len(polys) == 0 {
		return nil, fmt.Errorf("%w: no polygon", ErrBadGeometry)
	}
	out := make([]geo.Polygon, 0, len(polys))
	vertices, area := 0, 0.0
	for pi, rings := range polys {
		if len(rings) == 0 {
			return nil, fmt.Errorf("%w: polygon %d has no ring", ErrBadGeometry, pi)
		}
		var poly geo.Polygon
		for ri, pos := range rings {
			ring, err := parseRing(pos, pi, ri)
			if err != nil {
				return nil, err
			}
			vertices += len(ring)
			if cfg.MaxVertices > 0 && vertices > cfg.MaxVertices {
				return nil, fmt.Errorf("%w: more than %d vertices", ErrTooManyVertices, cfg.MaxVertices)
			}
			if ri == 0 {
				poly.Outer = ring
				area += ringAreaM2(ring)
			} else {
				poly.Holes = append(poly.Holes, ring)
				area -= ringAreaM2(ring)
			}
		}
		out = append(out, poly)
	}
	// Rings are checked for crossings once the vertex limit is known to
	// hold (the check is quadratic).
	for pi, poly := range out {
		if selfIntersects(poly.Outer) {
			return nil, fmt.Errorf("%w: polygon %d, ring 0", ErrSelfIntersecting, pi)
		}
		for hi, h := range poly.Holes {
			if selfIntersects(h) {
				return nil, fmt.Errorf("%w: polygon %d, ring %d", ErrSelfIntersecting, pi, hi+1)
			}
		}
	}
	if km2 := area / 1e6; cfg.MaxAreaKM2 > 0 && km2 > cfg.MaxAreaKM2 {
		return nil, fmt.Errorf("%w: %.1f km², at most %g km²", ErrTooLarge, km2, cfg.MaxAreaKM2)
	}
	return out, nil
}

// parseRing checks one ring's positions and returns it open, without
// repeated consecutive vertices.
func parseRing(pos [][]float64, pi, ri int) ([]geo.Point, error) {
	where := func() string { return fmt.Sprintf("polygon %d, ring %d", pi, ri) }
	if len(pos) < 4 {
		if len(pos) > 0 && !samePos(pos[0], pos[len(pos)-1]) {
			return nil, fmt.Errorf("%w: %s: the last position must repeat the first", ErrUnclosedRing, where())
		}
		return nil, fmt.Errorf("%w: %s: a ring needs at least 4 positions (3 vertices and the closing one)", ErrBadGeometry, where())
	}
	ring := make([]geo.Point, 0, len(pos))
	minLng, maxLng := math.Inf(1), math.Inf(-1)
	for i, c := range pos {
		if len(c) < 2 {
			return nil, fmt.Errorf("%w: %s, position %d: want [lng, lat]", ErrBadGeometry, where(), i)
		}
		lng, lat := c[0], c[1]
		if !(lng >= -180 && lng <= 180) || !(lat >= -90 && lat <= 90) {
			return nil, fmt.Errorf("%w: %s, position %d: [%g, %g] is not [lng -180..180, lat -90..90]", ErrOutOfRange, where(), i, lng, lat)
		}
		minLng, maxLng = math.Min(minLng, lng), math.Max(maxLng, lng)
		p := geo.Point{Lat: lat, Lng: lng}
		if n := len(ring); n > 0 && samePoint(ring[n-1], p) {
			continue
		}
		ring = append(ring, p)
	}
	if !samePos(pos[0], pos[len(pos)-1]) {
		return nil, fmt.Errorf("%w: %s: the last position must repeat the first", ErrUnclosedRing, where())
	}
	if maxLng-minLng > 180 {
		return nil, fmt.Errorf("%w: %s spans more than 180° of longitude (rings crossing the antimeridian are not supported)", ErrOutOfRange, where())
	}
	ring = ring[:len(ring)-1] // open
	if len(ring) < 3 {
		return nil, fmt.Errorf("%w: %s: fewer than 3 distinct vertices", ErrBadGeometry, where())
	}
	return ring, nil
}

func samePos(a, b []float64) bool { return len(a) >= 2 && len(b) >= 2 && a[0] == b[0] && a[1] == b[1] }

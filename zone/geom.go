package zone

import (
	"math"

	"github.com/hextrack/hextrack/geo"
)

// Geometry is planar in (longitude, latitude) degrees, as GeoJSON's edges
// are: a point is inside a polygon when it is inside its outer ring and in
// none of its holes (even-odd rule); a point exactly on an edge counts as
// inside.

// inRing reports whether p is inside ring (even-odd rule), or on its edge.
func inRing(ring []geo.Point, p geo.Point) bool {
	in := false
	n := len(ring)
	for i, j := 0, n-1; i < n; j, i = i, i+1 {
		a, b := ring[j], ring[i]
		if onSegment(a, b, p) {
			return true
		}
		if (a.Lat > p.Lat) != (b.Lat > p.Lat) {
			x := a.Lng + (p.Lat-a.Lat)*(b.Lng-a.Lng)/(b.Lat-a.Lat)
			if p.Lng < x {
				in = !in
			}
		}
	}
	return in
}

// onSegment reports whether p lies on segment ab.
func onSegment(a, b, p geo.Point) bool {
	if cross(a, b, p) != 0 {
		return false
	}
	return math.Min(a.Lng, b.Lng) <= p.Lng && p.Lng <= math.Max(a.Lng, b.Lng) &&
		math.Min(a.Lat, b.Lat) <= p.Lat && p.Lat <= math.Max(a.Lat, b.Lat)
}

// inPolygon reports whether p is in poly (outer ring, not in a hole).
func inPolygon(poly geo.Polygon, p geo.Point) bool {
	if !inRing(poly.Outer, p) {
		return false
	}
	for _, h := range poly.Holes {
		if inRing(h, p) && !onRing(h, p) {
			return false
		}
	}
	return true
}

func onRing(ring []geo.Point, p geo.Point) bool {
	for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
		if onSegment(ring[j], ring[i], p) {
			return true
		}
	}
	return false
}

// cross is the z component of (b-a)×(p-a): >0 when p is left of ab.
func cross(a, b, p geo.Point) float64 {
	return (b.Lng-a.Lng)*(p.Lat-a.Lat) - (b.Lat-a.Lat)*(p.Lng-a.Lng)
}

// segParam returns where segment pq meets segment ab, as the fraction t of
// the way from p to q, and whether they meet at all. Collinear overlapping
// segments meet at the first shared point. The edge is taken in a canonical
// direction (its lesser endpoint first) so that two zones sharing an edge
// get bit-identical answers for it.
func segParam(p, q, a, b geo.Point) (float64, bool) {
	if b.Lng < a.Lng || b.Lng == a.Lng && b.Lat < a.Lat {
		a, b = b, a
	}
	rx, ry := q.Lng-p.Lng, q.Lat-p.Lat
	sx, sy := b.Lng-a.Lng, b.Lat-a.Lat
	den := rx*sy - ry*sx
	qpx, qpy := a.Lng-p.Lng, a.Lat-p.Lat
	if den == 0 {
		if qpx*ry-qpy*rx != 0 {
			return 0, false // parallel
		}
		rr := rx*rx + ry*ry
		if rr == 0 {
			return 0, onSegment(a, b, p)
		}
		t0 := (qpx*rx + qpy*ry) / rr
		t1 := t0 + (sx*rx+sy*ry)/rr
		if t0 > t1 {
			t0, t1 = t1, t0
		}
		if t1 < 0 || t0 > 1 {
			return 0, false
		}
		return math.Max(t0, 0), true
	}
	t := (qpx*sy - qpy*sx) / den
	u := (qpx*ry - qpy*rx) / den
	if t < 0 || t > 1 || u < 0 || u > 1 {
		return 0, false
	}
	return t, true
}

// crossings appends to ts the fractions along pq where it meets poly's
// edges.
func crossings(ts []float64, poly geo.Polygon, p, q geo.Point) []float64 {
	ts = ringCrossings(ts, poly.Outer, p, q)
	for _, h := range poly.Holes {
		ts = ringCrossings(ts, h, p, q)
	}
	return ts
}

func ringCrossings(ts []float64, ring []geo.Point, p, q geo.Point) []float64 {
	for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
		if t, ok := segParam(p, q, ring[j], ring[i]); ok {
			ts = append(ts, t)
		}
	}
	return ts
}

// properCross reports whether segments ab and cd cross at a point interior
// to both, or overlap along a line.
func properCross(a, b, c, d geo.Point) bool {
	d1, d2 := cross(a, b, c), cross(a, b, d)
	d3, d4 := cross(c, d, a), cross(c, d, b)
	if (d1 > 0 && d2 < 0 || d1 < 0 && d2 > 0) && (d3 > 0 && d4 < 0 || d3 < 0 && d4 > 0) {
		return true
	}
	// Collinear overlap of positive length.
	if d1 == 0 && d2 == 0 {
		return onSegment(a, b, c) && !samePoint(c, a) && !samePoint(c, b) ||
			onSegment(a, b, d) && !samePoint(d, a) && !samePoint(d, b) ||
			onSegment(c, d, a) && !samePoint(a, c) && !samePoint(a, d) ||
			onSegment(c, d, b) && !samePoint(b, c) && !samePoint(b, d)
	}
	return false
}

func samePoint(a, b geo.Point) bool { return a.Lat == b.Lat && a.Lng == b.Lng }

// selfIntersects reports whether two edges of ring cross (adjacent edges
// share their vertex and do not count; a vertex touching a non-adjacent
// edge does count). It is O(n²): rings are bounded by Config.MaxVertices.
func selfIntersects(ring []geo.Point) bool {
	n := len(ring)
	for i := 0; i < n; i++ {
		a, b := ring[i], ring[(i+1)%n]
		for j := i + 1; j < n; j++ {
			c, d := ring[j], ring[(j+1)%n]
			adjacent := j == i+1 || (i == 0 && j == n-1)
			if adjacent {
				// Adjacent edges may only share their vertex: folding
				// back along each other is a self-intersection.
				if cross(a, b, d) == 0 && cross(a, b, c) == 0 && n > 3 {
					if j == i+1 && dot(a, b, d) > 0 || j != i+1 && dot(b, a, c) > 0 {
						return true
					}
				}
				continue
			}
			if properCross(a, b, c, d) || onSegment(a, b, c) || onSegment(a, b, d) || onSegment(c, d, a) || onSegment(c, d, b) {
				return true
			}
		}
	}
	return false
}

// dot is (b-a)·(p-b): >0 when p continues past b away from a.
func dot(a, b, p geo.Point) float64 {
	return (b.Lng-a.Lng)*(p.Lng-b.Lng) + (b.Lat-a.Lat)*(p.Lat-b.Lat)
}

// ringAreaM2 is the area of ring on the sphere in square metres (the
// spherical excess formula used by GeoJSON libraries, e.g. turf's area).
func ringAreaM2(ring []geo.Point) float64 {
	n := len(ring)
	if n < 3 {
		return 0
	}
	sum := 0.0
	for i := 0; i < n; i++ {
		lo, mid, hi := ring[i], ring[(i+1)%n], ring[(i+2)%n]
		sum += (rad(hi.Lng) - rad(lo.Lng)) * math.Sin(rad(mid.Lat))
	}
	return math.Abs(sum * geo.EarthRadiusM * geo.EarthRadiusM / 2)
}

func rad(d float64) float64 { return d * math.Pi / 180 }

// bbox is a bounding box in degrees.
type bbox struct{ minLat, minLng, maxLat, maxLng float64 }

func boxOf(ring []geo.Point) bbox {
	b := bbox{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	for _, p := range ring {
		b.add(p)
	}
	return b
}

func (b *bbox) add(p geo.Point) {
	b.minLat, b.maxLat = math.Min(b.minLat, p.Lat), math.Max(b.maxLat, p.Lat)
	b.minLng, b.maxLng = math.Min(b.minLng, p.Lng), math.Max(b.maxLng, p.Lng)
}

func (b *bbox) union(o bbox) {
	b.add(geo.Point{Lat: o.minLat, Lng: o.minLng})
	b.add(geo.Point{Lat: o.maxLat, Lng: o.maxLng})
}

func (b bbox) overlaps(o bbox) bool {
	return b.minLat <= o.maxLat && o.minLat <= b.maxLat && b.minLng <= o.maxLng && o.minLng <= b.maxLng
}

func (b bbox) contains(p geo.Point) bool {
	return p.Lat >= b.minLat && p.Lat <= b.maxLat && p.Lng >= b.minLng && p.Lng <= b.maxLng
}

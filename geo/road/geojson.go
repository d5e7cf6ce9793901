package road

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/hextrack/hextrack/geo"
)

// geoJSONToleranceM is the Douglas–Peucker tolerance of the drawn roads:
// below a pixel at street zoom levels, and it shrinks the file severalfold.
const geoJSONToleranceM = 4

// GeoJSON returns the roads as a GeoJSON FeatureCollection of LineStrings
// with properties "class", "oneway" and "name" (the street's name, when
// the map has one), simplified (Douglas–Peucker, 4 m)
// and with coordinates rounded to 5 decimals (~1 m). Built once, then
// cached; the caller must not modify the returned bytes.
func (g *Graph) GeoJSON() []byte {
	g.geoOnce.Do(func() { g.geoJSON = g.buildGeoJSON() })
	return g.geoJSON
}

func (g *Graph) buildGeoJSON() []byte {
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, `{"type":"FeatureCollection","features":[`...)
	first := true
	// Junctions (nodes on more than one road) are always kept, so the
	// drawn roads still meet where they cross: the rider page routes over
	// them.
	uses := make([]uint8, len(g.pts))
	for _, r := range g.roads {
		for _, id := range r.nodes {
			if id >= 0 && uses[id] < 2 {
				uses[id]++
			}
		}
	}
	var line [][2]float64
	var pts []geo.Point
	var must []bool
	emit := func(r road) {
		if len(pts) < 2 {
			return
		}
		line = line[:0]
		for _, p := range pts {
			line = append(line, g.proj.xy(p))
		}
		keep := simplify(line, geoJSONToleranceM, must)
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(buf, `{"type":"Feature","properties":{"class":"`...)
		buf = append(buf, r.class.String()...)
		buf = append(buf, `","oneway":`...)
		buf = strconv.AppendBool(buf, r.oneway)
		if r.name != "" {
			// The page's reverse lookup: addresses from street names.
			name, _ := json.Marshal(r.name)
			buf = append(buf, `,"name":`...)
			buf = append(buf, name...)
		}
		buf = append(buf, `},"geometry":{"type":"LineString","coordinates":[`...)
		for i, k := range keep {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '[')
			buf = strconv.AppendFloat(buf, round5(pts[k].Lng), 'f', -1, 64)
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, round5(pts[k].Lat), 'f', -1, 64)
			buf = append(buf, ']')
		}
		buf = append(buf, "]}}"...)
	}
	for _, r := range g.roads {
		pts, must = pts[:0], must[:0]
		for _, id := range r.nodes {
			if id < 0 {
				emit(r)
				pts, must = pts[:0], must[:0]
				continue
			}
			pts = append(pts, g.pts[id])
			must = append(must, uses[id] > 1)
		}
		emit(r)
	}
	buf = append(buf, "]}"...)
	return buf
}

func round5(v float64) float64 { return math.Round(v*1e5) / 1e5 }

// simplify returns the indexes of the points Douglas–Peucker keeps at
// tolerance tol (planar meters). First and last are always kept, and so
// is every point i with must[i] (must may be nil).
func simplify(pts [][2]float64, tol float64, must []bool) []int {
	n := len(pts)
	keep := make([]bool, n)
	keep[0], keep[n-1] = true, true
	type span struct{ a, b int }
	var stack []span
	a := 0
	for i := 1; i < n; i++ {
		if i == n-1 || (i < len(must) && must[i]) {
			keep[i] = true
			stack = append(stack, span{a, i})
			a = i
		}
	}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		maxD, idx := 0.0, -1
		for i := s.a + 1; i < s.b; i++ {
			if d, _ := segDist(pts[i], pts[s.a], pts[s.b]); d > maxD {
				maxD, idx = d, i
			}
		}
		if idx >= 0 && maxD > tol {
			keep[idx] = true
			stack = append(stack, span{s.a, idx}, span{idx, s.b})
		}
	}
	out := make([]int, 0, n)
	for i, k := range keep {
		if k {
			out = append(out, i)
		}
	}
	return out
}

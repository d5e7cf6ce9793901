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
	var line [][2]float64
	var pts []geo.Point
	emit := func(r road) {
		if len(pts) < 2 {
			return
		}
		line = line[:0]
		for _, p := range pts {
			line = append(line, g.proj.xy(p))
		}
		keep := simplify(line, geoJSONToleranceM)
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
		pts = pts[:0]
		for _, id := range r.nodes {
			if id < 0 {
				emit(r)
				pts = pts[:0]
				continue
			}
			pts = append(pts, g.pts[id])
		}
		emit(r)
	}
	buf = append(buf, "]}"...)
	return buf
}

func round5(v float64) float64 { return math.Round(v*1e5) / 1e5 }

// simplify returns the indexes of the points Douglas–Peucker keeps at
// tolerance tol (planar meters). First and last are always kept.
func simplify(pts [][2]float64, tol float64) []int {
	n := len(pts)
	keep := make([]bool, n)
	keep[0], keep[n-1] = true, true
	type span struct{ a, b int }
	stack := []span{{0, n - 1}}
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

package zone

import (
	"testing"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// A zone of several km has grid buckets wholly inside it, which answer
// without a check; a bucket an edge crosses is never marked so.
func TestFullBuckets(t *testing.T) {
	c := geo.Point{Lat: 52.5, Lng: 13.4}
	var outer []geo.Point
	for j := range 100 {
		outer = append(outer, geo.Offset(c, float64(j)*3.6, 4000))
	}
	outer = append(outer, outer[0])
	z := Zone{ID: "z_big", Kind: KindServiceArea, Polygons: []geo.Polygon{{Outer: outer}}, UpdatedAt: time.Unix(0, 0)}
	x, err := NewIndex([]Zone{z})
	if err != nil {
		t.Fatal(err)
	}
	full, partial := 0, 0
	for b, refs := range x.grid {
		for _, r := range refs {
			if !r.full {
				partial++
				continue
			}
			full++
			lo := geo.Point{Lat: float64(b.lat) * gridDeg, Lng: float64(b.lng) * gridDeg}
			hi := geo.Point{Lat: float64(b.lat+1) * gridDeg, Lng: float64(b.lng+1) * gridDeg}
			for _, p := range []geo.Point{lo, hi, {Lat: lo.Lat, Lng: hi.Lng}, {Lat: hi.Lat, Lng: lo.Lng}} {
				if !z.Contains(p) {
					t.Fatalf("bucket %v marked full but its corner %v is outside the zone", b, p)
				}
			}
		}
	}
	if full == 0 || partial == 0 {
		t.Fatalf("full %d, partial %d buckets: want both", full, partial)
	}
	if x.zones[0].small {
		t.Fatal("a 100-vertex zone is not small")
	}
}

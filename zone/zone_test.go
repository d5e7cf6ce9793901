package zone_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/zone"
)

// polygonJSON is a GeoJSON Polygon of one ring given as [lng, lat] pairs
// (the closing position added when close is true).
func polygonJSON(ring [][2]float64, close bool) json.RawMessage {
	var b strings.Builder
	b.WriteString(`{"type":"Polygon","coordinates":[[`)
	pts := ring
	if close {
		pts = append(append([][2]float64(nil), ring...), ring[0])
	}
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "[%g,%g]", p[0], p[1])
	}
	b.WriteString(`]]}`)
	return json.RawMessage(b.String())
}

// rect is a lng/lat rectangle ring.
func rect(w, s, e, n float64) [][2]float64 {
	return [][2]float64{{w, s}, {e, s}, {e, n}, {w, n}}
}

func mustZone(t testing.TB, id, kind string, ring [][2]float64, dwell float64) zone.Zone {
	t.Helper()
	name := id
	z, err := zone.New(zone.Input{Name: &name, Kind: &kind, Geometry: polygonJSON(ring, true), DwellAfterS: &dwell}, zone.Config{}, time.Unix(0, 0))
	if err != nil {
		t.Fatalf("zone %s: %v", id, err)
	}
	z.ID = id
	return z
}

func mustIndex(t testing.TB, zs ...zone.Zone) *zone.Index {
	t.Helper()
	x, err := zone.NewIndex(zs)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestNewBadInput(t *testing.T) {
	name, kind := "z", zone.KindQueue
	star := [][2]float64{{0, 0}, {0.01, 0.01}, {0.01, 0}, {0, 0.01}} // a bow tie
	many := make([][2]float64, 0, 1001)
	for i := range 1001 {
		a := float64(i) / 1001 * 2 * 3.141592653589793
		many = append(many, [2]float64{13.4 + 0.01*cos(a), 52.5 + 0.01*sin(a)})
	}
	cases := []struct {
		name string
		geom json.RawMessage
		want error
		msg  string
	}{
		{"unclosed", polygonJSON(rect(13.4, 52.5, 13.41, 52.51), false), zone.ErrUnclosedRing, "ring 0"},
		{"self-intersecting", polygonJSON(star, true), zone.ErrSelfIntersecting, "polygon 0, ring 0"},
		{"too large", polygonJSON(rect(13, 52, 14, 53), true), zone.ErrTooLarge, "km²"},
		{"too many vertices", polygonJSON(many, true), zone.ErrTooManyVertices, "1000"},
		{"latitude out of range", polygonJSON(rect(13.4, 89.99, 13.41, 90.5), true), zone.ErrOutOfRange, "position"},
		{"longitude out of range", polygonJSON(rect(179.99, 1, 180.5, 1.01), true), zone.ErrOutOfRange, "position"},
		{"antimeridian", polygonJSON([][2]float64{{179.9, 0}, {-179.9, 0}, {-179.9, 0.1}}, true), zone.ErrOutOfRange, "antimeridian"},
		{"not a polygon", json.RawMessage(`{"type":"Point","coordinates":[1,2]}`), zone.ErrBadGeometry, "Point"},
		{"not json", json.RawMessage(`[`), zone.ErrBadGeometry, "GeoJSON"},
		{"two vertices", polygonJSON([][2]float64{{1, 1}, {1.01, 1}, {1, 1}}, true), zone.ErrBadGeometry, "3 distinct"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := zone.New(zone.Input{Name: &name, Kind: &kind, Geometry: c.geom}, zone.Config{}, time.Now())
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err %q does not name the problem (%q)", err, c.msg)
			}
		})
	}
	t.Run("limits are configurable", func(t *testing.T) {
		g := polygonJSON(rect(13.4, 52.5, 13.43, 52.53), true) // about 7 km²
		if _, err := zone.New(zone.Input{Name: &name, Kind: &kind, Geometry: g}, zone.Config{MaxAreaKM2: 5}, time.Now()); !errors.Is(err, zone.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
		if _, err := zone.New(zone.Input{Name: &name, Kind: &kind, Geometry: g}, zone.Config{MaxVertices: 3}, time.Now()); !errors.Is(err, zone.ErrTooManyVertices) {
			t.Fatalf("err = %v, want ErrTooManyVertices", err)
		}
	})
	t.Run("bad kind", func(t *testing.T) {
		k := "Airport Queue"
		_, err := zone.New(zone.Input{Name: &name, Kind: &k, Geometry: polygonJSON(rect(13.4, 52.5, 13.41, 52.51), true)}, zone.Config{}, time.Now())
		if !errors.Is(err, zone.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})
	t.Run("multipolygon with a hole", func(t *testing.T) {
		g := json.RawMessage(`{"type":"MultiPolygon","coordinates":[[[[13.40,52.50],[13.42,52.50],[13.42,52.52],[13.40,52.52],[13.40,52.50]],[[13.405,52.505],[13.415,52.505],[13.415,52.515],[13.405,52.515],[13.405,52.505]]],[[[13.50,52.50],[13.51,52.50],[13.51,52.51],[13.50,52.50]]]]}`)
		z, err := zone.New(zone.Input{Name: &name, Kind: &kind, Geometry: g}, zone.Config{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			p    geo.Point
			want bool
		}{{geo.Point{Lat: 52.501, Lng: 13.401}, true}, {geo.Point{Lat: 52.51, Lng: 13.41}, false}, {geo.Point{Lat: 52.501, Lng: 13.5089}, true}, {geo.Point{Lat: 52.509, Lng: 13.501}, false}} {
			if got := z.Contains(c.p); got != c.want {
				t.Errorf("Contains(%v) = %v, want %v", c.p, got, c.want)
			}
			x := mustIndex(t, z)
			if got := len(x.At(c.p)) == 1; got != c.want {
				t.Errorf("index At(%v) = %v, want %v", c.p, got, c.want)
			}
		}
	})
}

func TestZoneJSONRoundTrip(t *testing.T) {
	z := mustZone(t, "z_0000000000000001", zone.KindRestricted, rect(13.4, 52.5, 13.41, 52.51), 90)
	b, err := json.Marshal(z)
	if err != nil {
		t.Fatal(err)
	}
	var back zone.Zone
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != z.ID || back.DwellAfter != 90*time.Second || len(back.Polygons) != 1 || !back.Contains(geo.Point{Lat: 52.505, Lng: 13.405}) {
		t.Fatalf("round trip: %+v from %s", back, b)
	}
}

// TestIndexRebuildAndNear: a rebuild after one zone changed answers for the
// new geometry (the unchanged zone's cells reused), and Near tells moves
// near a zone from moves far from all.
func TestIndexRebuildAndNear(t *testing.T) {
	a := mustZone(t, "z_a", zone.KindQueue, rect(13.40, 52.50, 13.41, 52.51), 60)
	b := mustZone(t, "z_b", zone.KindQueue, rect(13.45, 52.50, 13.46, 52.51), 60)
	x := mustIndex(t, a, b)
	kind := zone.KindQueue
	b2 := b
	if err := b2.Apply(zone.Input{Kind: &kind, Geometry: polygonJSON(rect(13.50, 52.50, 13.51, 52.51), true)}, zone.Config{}); err != nil {
		t.Fatal(err)
	}
	b2.Version++
	y, err := zone.NewIndexFrom(x, []zone.Zone{a, b2})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    geo.Point
		want int
	}{{geo.Point{Lat: 52.505, Lng: 13.405}, 1}, {geo.Point{Lat: 52.505, Lng: 13.455}, 0}, {geo.Point{Lat: 52.505, Lng: 13.505}, 1}} {
		if got := len(y.At(c.p)); got != c.want {
			t.Errorf("rebuilt At(%v) = %d zones, want %d", c.p, got, c.want)
		}
	}
	far := geo.Point{Lat: 48.85, Lng: 2.35}
	if y.Near(geo.CellOf(far, geo.ResIndex), far) {
		t.Error("a move in Paris is near a zone in Berlin")
	}
	west, east := geo.Point{Lat: 52.505, Lng: 13.30}, geo.Point{Lat: 52.505, Lng: 13.60}
	if !y.Near(geo.CellOf(west, geo.ResIndex), east) {
		t.Error("a jump across two zones is not near them")
	}
	if !y.Near(0, geo.Point{Lat: 52.5105, Lng: 13.405}) {
		t.Error("a fix 50 m from a zone is not near it")
	}
}

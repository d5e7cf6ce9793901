package geo_test

import (
	"math"
	"testing"

	"github.com/hextrack/hextrack/geo"
)

var portoCenter = geo.Point{Lat: 41.1496, Lng: -8.6109}

func TestCellOf(t *testing.T) {
	tests := []struct {
		name  string
		p     geo.Point
		res   int
		valid bool
	}{
		{"portoCenter r9", portoCenter, 9, true},
		{"portoCenter r6", portoCenter, 6, true},
		{"north pole", geo.Point{Lat: 90, Lng: 0}, 9, true},
		{"bad resolution", portoCenter, 16, false},
		{"nan", geo.Point{Lat: math.NaN(), Lng: 0}, 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := geo.CellOf(tt.p, tt.res)
			if c.Valid() != tt.valid {
				t.Fatalf("CellOf(%v, %d) valid = %v, want %v", tt.p, tt.res, c.Valid(), tt.valid)
			}
			if !tt.valid {
				return
			}
			if c.Res() != tt.res {
				t.Fatalf("res = %d, want %d", c.Res(), tt.res)
			}
			back, err := geo.ParseCell(c.String())
			if err != nil || back != c {
				t.Fatalf("ParseCell(%s) = %v, %v", c, back, err)
			}
			if d := geo.Distance(c.Center(), tt.p); d > 2*geo.EdgeLengthM(tt.res) {
				t.Fatalf("center %v is %.0f m from the point", c.Center(), d)
			}
		})
	}
}

func TestParseCellRejectsGarbage(t *testing.T) {
	for _, s := range []string{"", "zz", "0", "ffffffffffffffff", "8939220f027ffffX"} {
		if _, err := geo.ParseCell(s); err == nil {
			t.Errorf("ParseCell(%q) accepted", s)
		}
	}
}

func TestRingsAndParents(t *testing.T) {
	c := geo.CellOf(portoCenter, 9)
	if got := len(c.Ring(0)); got != 1 {
		t.Fatalf("ring 0 has %d cells", got)
	}
	if got := len(c.Ring(1)); got != 6 {
		t.Fatalf("ring 1 has %d cells", got)
	}
	if got := len(c.Ring(2)); got != 12 {
		t.Fatalf("ring 2 has %d cells", got)
	}
	if got := len(c.Disk(1)); got != 7 {
		t.Fatalf("disk 1 has %d cells", got)
	}
	p := c.Parent(geo.ResRegion)
	if p.Res() != geo.ResRegion {
		t.Fatalf("parent res %d", p.Res())
	}
	found := false
	for _, ch := range p.Children(9) {
		if ch == c {
			found = true
		}
	}
	if !found {
		t.Fatal("cell is not among its parent's children")
	}
	if len(c.Boundary()) != 6 {
		t.Fatalf("boundary has %d vertices", len(c.Boundary()))
	}
}

func TestDistanceAndOffset(t *testing.T) {
	tests := []struct {
		name       string
		bearing, m float64
	}{
		{"north 100m", 0, 100},
		{"east 1km", 90, 1000},
		{"southwest 5km", 225, 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := geo.Offset(portoCenter, tt.bearing, tt.m)
			if d := geo.Distance(portoCenter, q); math.Abs(d-tt.m) > 0.01*tt.m {
				t.Fatalf("distance %.2f, want %.2f", d, tt.m)
			}
			if b := geo.Bearing(portoCenter, q); math.Abs(math.Mod(b-tt.bearing+540, 360)-180) > 1 {
				t.Fatalf("bearing %.2f, want %.2f", b, tt.bearing)
			}
		})
	}
	// Porto → Lisbon is about 274 km.
	if d := geo.Distance(portoCenter, geo.Point{Lat: 38.7223, Lng: -9.1393}); math.Abs(d-274000) > 3000 {
		t.Fatalf("Porto-Lisbon = %.0f m", d)
	}
}

func TestCellsInBox(t *testing.T) {
	cs, ok := geo.CellsInBox(41.14, -8.62, 41.16, -8.60, 7, 1000)
	if !ok || len(cs) == 0 {
		t.Fatalf("CellsInBox = %d cells, ok=%v", len(cs), ok)
	}
	_, ok = geo.CellsInBox(40, -10, 42, -6, 9, 100)
	if ok {
		t.Fatal("a huge box at r9 should hit the cap")
	}
}

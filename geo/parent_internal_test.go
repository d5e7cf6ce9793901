package geo

import (
	"testing"

	"github.com/uber/h3-go/v4"
)

// TestParentMatchesH3: Parent, computed from the bits, is h3's
// cellToParent for cells all over the globe and every resolution.
func TestParentMatchesH3(t *testing.T) {
	for i := range 2000 {
		lat := -89 + float64(i%179) + float64(i)/7919
		lng := -179 + float64((i*37)%359) + float64(i)/104729
		for res := 0; res <= 15; res++ {
			c := CellOf(Point{Lat: lat, Lng: lng}, res)
			for pr := 0; pr <= 15; pr++ {
				want, err := h3.Cell(c).Parent(pr)
				got := c.Parent(pr)
				if err != nil {
					if got != 0 {
						t.Fatalf("%v.Parent(%d) = %v, h3 fails: %v", c, pr, got, err)
					}
					continue
				}
				if got != Cell(want) {
					t.Fatalf("%v.Parent(%d) = %v, h3 %v", c, pr, got, Cell(want))
				}
			}
		}
	}
	if Cell(0).Parent(3) != 0 {
		t.Fatal("zero cell has a parent")
	}
}

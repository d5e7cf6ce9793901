package ops_test

import (
	"errors"
	"testing"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/ops"
)

func TestParseCells(t *testing.T) {
	r9 := geo.CellOf(geo.Point{Lat: 52.52, Lng: 13.405}, 9).String()
	r10 := geo.CellOf(geo.Point{Lat: 52.52, Lng: 13.405}, 10).String()
	for _, tc := range []struct {
		name  string
		cells []string
		ok    bool
	}{
		{"one r9", []string{r9}, true},
		{"none", nil, false},
		{"garbage", []string{"zz"}, false},
		{"finer than r9", []string{r10}, false},
		{"too many", []string{r9, r9, r9}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ops.ParseCells(tc.cells, 2)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ops.ErrInvalid)) {
				t.Fatalf("err %v, ok want %v", err, tc.ok)
			}
		})
	}
}

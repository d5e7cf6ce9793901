package dispatch_test

import (
	"slices"
	"testing"
	"time"

	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/driver"
)

func TestRadii(t *testing.T) {
	all := []float64{1500, 3000, 6000, 12000, 25000}
	timeout := 2 * time.Minute
	tests := []struct {
		name    string
		all     []float64
		elapsed time.Duration
		want    int
	}{
		{"at first the two smallest", all, 0, 2},
		{"a tenth in: one more", all, 12 * time.Second, 3},
		{"just under a fifth: three", all, 23999 * time.Millisecond, 3},
		{"a fifth: four", all, 24 * time.Second, 4},
		{"three tenths: all", all, 36 * time.Second, 5},
		{"half the timeout: all", all, time.Minute, 5},
		{"past the timeout: all", all, 5 * time.Minute, 5},
		{"fewer radii than two", all[:1], 0, 1},
		{"none", nil, time.Minute, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := dispatch.Radii(tc.all, tc.elapsed, timeout)
			if !slices.Equal(got, tc.all[:tc.want]) {
				t.Fatalf("Radii(%v, %v) = %v, want the first %d", tc.all, tc.elapsed, got, tc.want)
			}
		})
	}
	if got := dispatch.Radii(all, time.Second, 0); len(got) != 5 {
		t.Fatalf("zero timeout: %v, want all", got)
	}
}

func TestRank(t *testing.T) {
	cands := []driver.Nearby{
		{ID: "slow", ETAS: 300, DistanceM: 100},
		{ID: "far", ETAS: 60, DistanceM: 900},
		{ID: "near", ETAS: 60, DistanceM: 200},
		{ID: "tie-a", ETAS: 120, DistanceM: 500},
		{ID: "tie-b", ETAS: 120, DistanceM: 500},
	}
	dispatch.Rank(cands)
	var got []string
	for _, c := range cands {
		got = append(got, c.ID)
	}
	if want := []string{"near", "far", "tie-a", "tie-b", "slow"}; !slices.Equal(got, want) {
		t.Fatalf("Rank = %v, want %v", got, want)
	}
}

package dispatch

import (
	"sort"
	"time"

	"github.com/hextrack/hextrack/driver"
)

// Radii returns the search radii allowed after elapsed of a trip's
// dispatch timeout, smallest first: the radius widens with time, at first
// the two smallest, then one more every timeout/(2·len(all)), so all of
// them by half the timeout at the latest (wide searches are costly and
// rarely right while near drivers may still free up).
func Radii(all []float64, elapsed, timeout time.Duration) []float64 {
	n := int64(len(all))
	allowed := min(len(all), 2+int(elapsed.Milliseconds()*2*n/max(1, timeout.Milliseconds())))
	return all[:allowed]
}

// Rank orders candidates best first: the shortest ETA, then the nearest.
// Equal candidates keep their order.
func Rank(cands []driver.Nearby) {
	sort.SliceStable(cands, func(a, b int) bool {
		if cands[a].ETAS != cands[b].ETAS {
			return cands[a].ETAS < cands[b].ETAS
		}
		return cands[a].DistanceM < cands[b].DistanceM
	})
}

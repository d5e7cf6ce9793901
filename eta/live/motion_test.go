package live_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/eta/live"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// movingRouter is a lineRouter that also takes the driver's fixes.
type movingRouter struct {
	lineRouter
	mu     sync.Mutex
	moving [][]live.Fix
}

func (r *movingRouter) EstimateMoving(ctx context.Context, fixes []live.Fix, to geo.Point) (float64, float64, error) {
	r.mu.Lock()
	r.moving = append(r.moving, fixes)
	r.mu.Unlock()
	return r.Estimate(ctx, fixes[len(fixes)-1].Pos, to)
}

// TestETAMotion: with a MovingEstimator, the first estimate of a driver
// (one fix known) is a plain one and the next ones get the driver's fixes
// so far, oldest first, ending at the position estimated from; another
// trip's fixes never mix in.
func TestETAMotion(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	r := &movingRouter{lineRouter: lineRouter{speed: 10}}
	l := newLive(e.Trips, r, live.Config{Every: time.Millisecond, ShouldEmit: eta.ShouldEmit})
	runETA(t, l)
	tr, _, drv := e.TripIn(t, trip.StatusAssigned)
	ctx := context.Background()
	ts := time.Now().Add(-time.Minute)
	var sent []live.Fix
	for i := range 4 {
		f := live.Fix{Pos: geo.Offset(pickup, 90, 3000-float64(i)*100), TS: ts.Add(time.Duration(i) * 10 * time.Second).Truncate(time.Millisecond)}
		sent = append(sent, f)
		l.DriverMoved(ctx, driver.Move{DriverID: drv, TripID: tr.ID, Pos: f.Pos, TS: f.TS})
		r.waitCalls(t, i+1)
		time.Sleep(2 * time.Millisecond) // let the 1 ms gate open
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.moving) != 3 {
		t.Fatalf("%d moving estimates for 4 moves, want 3 (the first knows one fix)", len(r.moving))
	}
	for i, fixes := range r.moving {
		want := sent[:i+2]
		if len(fixes) != len(want) {
			t.Fatalf("estimate %d got %d fixes, want %d", i+1, len(fixes), len(want))
		}
		for j := range want {
			if !fixes[j].TS.Equal(want[j].TS) || fixes[j].Pos != want[j].Pos {
				t.Fatalf("estimate %d fix %d: %+v, want %+v", i+1, j, fixes[j], want[j])
			}
		}
	}
}

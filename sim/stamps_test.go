package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// serverAccepts is the server's jump rule at its defaults (driver
// package: 70 m/s implied from the last accepted fix, plus 50 m).
func serverAccepts(from, to geo.Point, fromTS, toTS time.Time) bool {
	dt := toTS.Sub(fromTS).Abs().Seconds()
	return geo.Distance(from, to) <= 70*dt+50
}

// TestStampsKeepHonestFixesPlausible: a car at 40x on a fast road with GPS
// jitter and outliers, its fixes due every 25 ms of wall time and late
// under load in bursts: every honest fix passes the server's jump rule
// against the last honest one, outliers do not, stamps strictly increase
// in whole milliseconds, and they never run more than maxLead ahead (a car
// too fast for the rule at its speed-up waits: held).
func TestStampsKeepHonestFixesPlausible(t *testing.T) {
	for _, tc := range []struct {
		name   string
		speed  float64 // m/s simulated
		every  float64 // simulated seconds per fix
		speed2 float64 // speed-up
	}{
		{"city 40x", 14, 1, 40},
		{"motorway 40x", 36, 1, 40},
		{"slow ping 40x", 14, 5, 40}, // 70 m per fix in 125 ms of wall time
		{"make run 5x", 14, 1, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			gps := GPS{Sigma: 5, OutlierRate: 0.01}
			var s stamps
			pos := geo.Point{Lat: 41.15, Lng: -8.61}
			wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			tick := time.Duration(tc.every / tc.speed2 * float64(time.Second))
			var lastTS, honestTS time.Time
			var honest geo.Point
			maxLeadSeen := time.Duration(0)
			held := 0
			for i := range 20000 {
				now := wall
				if i%500 < 40 { // a burst of late ticks: fixes made up at once
					now = wall.Add(time.Duration(40-i%500) * tick)
				}
				if s.ahead(now) {
					held++
				} else {
					pos = geo.Offset(pos, 90, tc.speed*tc.every)
				}
				p, _, outlier := gps.Fix(rng, pos)
				ts := s.stamp(now, wall, p, outlier)
				if !ts.After(lastTS) || ts.Truncate(time.Millisecond) != ts {
					t.Fatalf("fix %d: stamp %v after %v: not strictly increasing whole ms", i, ts, lastTS)
				}
				if lead := ts.Sub(now); lead > maxLeadSeen {
					maxLeadSeen = lead
				}
				if ts.Sub(now) > maxLead {
					t.Fatalf("fix %d: stamp %v ahead of the wall clock", i, ts.Sub(now))
				}
				if !honestTS.IsZero() {
					ok := serverAccepts(honest, p, honestTS, ts)
					if ok == outlier {
						t.Fatalf("fix %d (outlier %v): server would accept = %v (%.0f m in %v)", i, outlier, ok, geo.Distance(honest, p), ts.Sub(honestTS))
					}
				}
				if !outlier {
					honest, honestTS = p, ts
				}
				lastTS = ts
				wall = wall.Add(tick)
			}
			t.Logf("largest lead over the wall clock: %v; car held for %d of 20000 fixes", maxLeadSeen, held)
		})
	}
}

// server models the server's jump check for one driver (driverredis'
// ingest script): its first fix is accepted whatever it is; every later one
// is judged against the last accepted fix, which it replaces when accepted.
type server struct {
	pos geo.Point
	ts  time.Time
}

func (s *server) accept(p geo.Point, ts time.Time) bool {
	if !s.ts.IsZero() && !serverAccepts(s.pos, p, s.ts, ts) {
		return false
	}
	s.pos, s.ts = p, ts
	return true
}

// TestOutliersNeverAccepted: the server accepts no deliberate outlier and
// so refuses no honest fix, including when an outlier would be a driver's
// first fix (the server has nothing to judge it by) or comes long after the
// last honest one (a tick stalled under load: a wild fix is then a
// plausible jump). An accepted outlier used to become the position the
// server measured every later honest fix from: a cascade of
// implausible_jump refusals of honest fixes (issue 22).
func TestOutliersNeverAccepted(t *testing.T) {
	gps := GPS{Sigma: 5, OutlierRate: 0.2}
	const speedUp, every = 40, 1.0
	tick := time.Duration(every / speedUp * float64(time.Second))
	outliers := 0
	for drv := range 200 {
		rng := rand.New(rand.NewPCG(uint64(drv), 7))
		var s stamps
		var srv server
		pos := geo.Point{Lat: 41.15, Lng: -8.61}
		wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 100 {
			if i%40 == 39 {
				wall = wall.Add(20 * time.Second) // a stalled goroutine
			}
			pos = geo.Offset(pos, 90, 14*every)
			p, _, ts, outlier := s.fix(rng, gps, pos, wall, wall)
			ok := srv.accept(p, ts)
			if outlier {
				outliers++
			}
			if ok == outlier {
				t.Fatalf("driver %d fix %d (outlier %v): server accepted = %v", drv, i, outlier, ok)
			}
			wall = wall.Add(tick)
		}
	}
	if outliers < 1000 {
		t.Errorf("only %d outliers sent, want about 20%% of 20000 fixes", outliers)
	}
}

package eta

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
)

// speedCenter is any point: the pings below go due north of it.
var speedCenter = geo.Point{Lat: 41.1579, Lng: -8.6291}

// TestSpeedListenerPairs: each accepted fix newer than the driver's newest
// before it is offered as a pair with that one (across batches); older or
// equal fixes are skipped.
func TestSpeedListenerPairs(t *testing.T) {
	reg := prometheus.NewRegistry()
	feeder := NewFeeder(NewSpeedModel(SpeedConfig{}), nil, FeederConfig{Registry: reg})
	l := NewSpeedListener(feeder)
	t0 := time.Now().Add(-time.Hour)
	fix := func(sec int) driver.Ping {
		// 10 m/s due north.
		return driver.Ping{Pos: geo.Offset(speedCenter, 0, 10*float64(sec)), TS: t0.Add(time.Duration(sec) * time.Second),
			Accuracy: math.NaN(), Speed: math.NaN(), Heading: math.NaN()}
	}
	offered := func() float64 {
		var n float64
		for _, r := range []string{"accepted", "ignored", "dropped"} {
			n += feederCount(t, reg, r)
		}
		return n
	}
	ctx := context.Background()
	l.DriverMoved(ctx, driver.Move{DriverID: "d1", Accepted: []driver.Ping{fix(0), fix(5), fix(10)}})
	if n := offered(); n != 2 {
		t.Fatalf("first batch: %v pairs offered, want 2", n)
	}
	// 3 s is older than the newest (10 s) and 10 s equal to it: skipped; 15 s
	// pairs with 10 s, 20 s with 15 s.
	l.DriverMoved(ctx, driver.Move{DriverID: "d1", Accepted: []driver.Ping{fix(3), fix(10), fix(15), fix(20)}})
	if n := offered(); n != 4 {
		t.Fatalf("second batch: %v pairs offered in all, want 4", n)
	}
	if got := l.last["d1"].Time; !got.Equal(t0.Add(20 * time.Second)) {
		t.Fatalf("newest fix %v, want t0+20s", got)
	}
	if n := feederCount(t, reg, "accepted"); n != 4 {
		t.Fatalf("%v observations accepted, want 4 (10 m/s, 5 s apart)", n)
	}
}

// feederCount is the feeder's observation counter for result.
func feederCount(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hextrack_eta_speed_observations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" && lp.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

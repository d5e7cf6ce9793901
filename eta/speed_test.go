package eta_test

import (
	"math"
	"testing"
	"time"

	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/geo"
)

var t0 = time.Date(2024, 5, 6, 9, 0, 0, 0, time.UTC) // bucket 2 (08–12)

func fix(p geo.Point, dt time.Duration) eta.Fix { return eta.Fix{Point: p, Time: t0.Add(dt)} }

func TestObserveFilters(t *testing.T) {
	m := eta.NewSpeedModel(eta.SpeedConfig{})
	a := portoCenter
	for _, tc := range []struct {
		name string
		b    eta.Fix
		ok   bool
		want float64
	}{
		{"moving 10 m/s", fix(geo.Offset(a, 90, 150), 15*time.Second), true, 10},
		{"stationary", fix(geo.Offset(a, 90, 5), 15*time.Second), false, 0},
		{"outlier 100 m/s", fix(geo.Offset(a, 90, 1500), 15*time.Second), false, 0},
		{"gap too long", fix(geo.Offset(a, 90, 1500), 5*time.Minute), false, 0},
		{"too close in time", fix(geo.Offset(a, 90, 10), time.Second), false, 0},
		{"out of order", fix(geo.Offset(a, 90, 150), -15*time.Second), false, 0},
		{"invalid point", fix(geo.Point{Lat: math.NaN()}, 15*time.Second), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := m.Observe(fix(a, 0), tc.b)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && (math.Abs(o.SpeedMS-tc.want) > 0.01 || o.Bucket != 2 || o.Cell.Res() != eta.SpeedRes) {
				t.Fatalf("observation %+v, want %.1f m/s in bucket 2 at r%d", o, tc.want, eta.SpeedRes)
			}
		})
	}
}

func TestSpeedModelArithmetic(t *testing.T) {
	c := geo.CellOf(portoCenter, eta.SpeedRes)
	m := eta.NewSpeedModel(eta.SpeedConfig{Alpha: 0.25})
	t.Run("default then prior", func(t *testing.T) {
		if v, learned := m.Speed(c, 0); learned || math.Abs(v-30/3.6) > 1e-9 {
			t.Fatalf("empty model: %v %v, want the 30 km/h city default", v, learned)
		}
		m.SetPrior(c, 12)
		if v, learned := m.Speed(c, 0); learned || v != 12 {
			t.Fatalf("with prior: %v %v", v, learned)
		}
	})
	t.Run("running mean of pace until 1/alpha samples", func(t *testing.T) {
		m.Add(eta.Observation{Cell: c, Bucket: 1, SpeedMS: 10})
		if v, _ := m.Speed(c, 1); math.Abs(v-10) > 1e-9 {
			t.Fatalf("one sample: %v, want 10", v)
		}
		m.Add(eta.Observation{Cell: c, Bucket: 1, SpeedMS: 5})
		// Pace mean (0.1+0.2)/2 = 0.15 s/m → 6.667 m/s (harmonic mean).
		if v, _ := m.Speed(c, 1); math.Abs(v-1/0.15) > 1e-9 {
			t.Fatalf("two samples: %v, want %v", v, 1/0.15)
		}
		m.Add(eta.Observation{Cell: c, Bucket: 1, SpeedMS: 10}, eta.Observation{Cell: c, Bucket: 1, SpeedMS: 10})
		// n=3: w=1/3 → 0.15+(0.1-0.15)/3 = 0.13333; n=4: w=max(.25,.25) → 0.13333+(0.1-0.13333)/4 = 0.125
		if v, _ := m.Speed(c, 1); math.Abs(v-8) > 1e-9 {
			t.Fatalf("four samples: %v, want 8", v)
		}
		m.Add(eta.Observation{Cell: c, Bucket: 1, SpeedMS: 2})
		// n=5: w = alpha = 0.25 → 0.125 + 0.25*(0.5-0.125) = 0.21875
		if v, _ := m.Speed(c, 1); math.Abs(v-1/0.21875) > 1e-9 {
			t.Fatalf("EWMA step: %v, want %v", v, 1/0.21875)
		}
	})
	t.Run("bucket needs evidence", func(t *testing.T) {
		// Bucket 1 has 5 = MinBucketCount samples → its own value; bucket 4
		// has none → the all-day value (same samples here).
		b1, _ := m.Speed(c, 1)
		all, learned := m.Speed(c, 4)
		if !learned || b1 != all {
			t.Fatalf("bucket 4 should fall back to all-day %v, got %v %v", b1, all, learned)
		}
		for i := 0; i < eta.MinBucketCount-1; i++ {
			m.Add(eta.Observation{Cell: c, Bucket: 4, SpeedMS: 20})
		}
		if v, _ := m.Speed(c, 4); v == 20 {
			t.Fatal("bucket used before MinBucketCount samples")
		}
		m.Add(eta.Observation{Cell: c, Bucket: 4, SpeedMS: 20})
		if v, _ := m.Speed(c, 4); math.Abs(v-20) > 1e-9 {
			t.Fatalf("bucket 4 with enough samples: %v, want 20", v)
		}
	})
	t.Run("garbage ignored", func(t *testing.T) {
		before := m.Snapshot()
		m.Add(eta.Observation{Cell: c, Bucket: 1, SpeedMS: math.NaN()},
			eta.Observation{Cell: c, Bucket: 1, SpeedMS: -3},
			eta.Observation{Cell: c, Bucket: 99, SpeedMS: 5})
		after := m.Snapshot()
		if len(before) != len(after) {
			t.Fatal("garbage changed the model")
		}
		for i := range before {
			if before[i] != after[i] {
				t.Fatalf("garbage changed %+v → %+v", before[i], after[i])
			}
		}
	})
}

func TestShouldEmit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		prev, next float64
		want       bool
	}{
		{"first ETA", 0, 300, true},
		{"unchanged", 300, 300, false},
		{"14 s on 300 s", 300, 314, false},
		{"15 s on 300 s", 300, 315, true},
		{"15 s earlier", 300, 285, true},
		{"9% on 100 s (9 s)", 100, 109, false},
		{"10% on 100 s", 100, 110, true},
		{"10% down on 100 s", 100, 90, true},
		{"14 s on 1000 s", 1000, 1014, false},
		{"5 s on 40 s (12.5%)", 40, 45, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := eta.ShouldEmit(tc.prev, tc.next); got != tc.want {
				t.Fatalf("ShouldEmit(%v, %v) = %v, want %v", tc.prev, tc.next, got, tc.want)
			}
		})
	}
}

func TestEstimatorLine(t *testing.T) {
	m := eta.NewSpeedModel(eta.SpeedConfig{})
	e := eta.NewEstimator(m, nil)
	a, b := portoCenter, geo.Offset(portoCenter, 45, 3000)
	// Teach every cell on the line 5 m/s and a detour of 1.5.
	for f := 0.0; f <= 3000; f += 50 {
		m.Add(eta.Observation{Cell: geo.CellOf(geo.Offset(a, 45, f), eta.SpeedRes), Bucket: eta.BucketOf(t0), SpeedMS: 5})
	}
	for i := 0; i < 10; i++ {
		e.ObserveDetour(1000, 1500)
	}
	e.ObserveDetour(1000, 50000) // implausible: ignored
	if d := e.Detour(); math.Abs(d-1.5) > 1e-9 {
		t.Fatalf("detour %v, want 1.5", d)
	}
	est, err := e.EstimateAt(t.Context(), a, b, t0)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(est.Meters-4500) > 5 || math.Abs(est.Seconds-900) > 1 || len(est.Path) != 2 {
		t.Fatalf("line estimate %+v, want 4500 m in 900 s", est)
	}
}

func TestMotionOf(t *testing.T) {
	// A car heading north: 150 m per 15 s, then 30 m in the last 15 s.
	at := func(i int, m float64) eta.Fix {
		return eta.Fix{Point: geo.Offset(portoCenter, 0, m), Time: t0.Add(time.Duration(i) * 15 * time.Second)}
	}
	fixes := []eta.Fix{at(0, 0), at(1, 150), at(2, 300), at(3, 450), at(4, 600), at(5, 630)}
	for _, tc := range []struct {
		name         string
		n            int
		known        bool
		last, recent float64
	}{
		{"no history", 1, false, 0, 0},
		{"one hop", 2, true, 10, 10},
		{"slowing down", 6, true, 2, (450 + 30.0) / 60}, // the last 60 s: fixes 1..5
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := eta.MotionOf(fixes[:tc.n])
			if m.Known != tc.known || math.Abs(m.LastSpeedMS-tc.last) > 0.01 || math.Abs(m.RecentSpeedMS-tc.recent) > 0.01 {
				t.Fatalf("%+v, want known=%v last %.2f recent %.2f", m, tc.known, tc.last, tc.recent)
			}
		})
	}
}

package eta

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hextrack/hextrack/geo"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// TestMetricsHandComputed checks each statistic against values worked out
// by hand.
func TestMetricsHandComputed(t *testing.T) {
	// Absolute errors 10, 50, 0, 200; relative 0.1, 0.25, 0, 0.5.
	actual := []float64{100, 200, 300, 400}
	pred := []float64{110, 150, 300, 600}
	m := metrics(actual, pred)
	// MAE (10+50+0+200)/4; MAPE (0.1+0.25+0+0.5)/4;
	// RMSLE √((ln(111/101)² + ln(151/201)² + 0 + ln(601/401)²)/4)
	//     = √((0.0089115 + 0.0818230 + 0.1637276)/4) = 0.2522161;
	// p90: sorted 0, 10, 50, 200 at position 0.9×3 = 2.7 → 50 + 0.7×150.
	want := Metrics{MAE: 65, MAPE: 0.2125, RMSLE: 0.2522161, P90: 155}
	if !near(m.MAE, want.MAE) || !near(m.MAPE, want.MAPE) || math.Abs(m.RMSLE-want.RMSLE) > 1e-6 || !near(m.P90, want.P90) {
		t.Fatalf("metrics = %+v, want %+v", m, want)
	}

	t.Run("perfect", func(t *testing.T) {
		if m := metrics(actual, actual); m != (Metrics{}) {
			t.Fatalf("perfect predictions: %+v", m)
		}
	})
	t.Run("negative prediction counts as zero", func(t *testing.T) {
		m := metrics([]float64{100}, []float64{-50})
		if !near(m.MAE, 100) || !near(m.MAPE, 1) || !near(m.RMSLE, math.Log(101)) || !near(m.P90, 100) {
			t.Fatalf("%+v", m)
		}
	})
	t.Run("p90 of ten errors", func(t *testing.T) {
		// Errors 1..10: position 0.9×9 = 8.1 → 9 + 0.1×1.
		var a, p []float64
		for i := 1; i <= 10; i++ {
			a = append(a, 1000)
			p = append(p, 1000+float64(i))
		}
		if m := metrics(a, p); !near(m.P90, 9.1) || !near(m.MAE, 5.5) {
			t.Fatalf("%+v", m)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if m := metrics(nil, nil); m != (Metrics{}) {
			t.Fatalf("%+v", m)
		}
	})
}

// TestBaselineMedianSpeed: the straight-line baseline's speed is the median
// of the training trips' own speeds, not their pooled distance ÷ time.
func TestBaselineMedianSpeed(t *testing.T) {
	t0 := time.Date(2024, 3, 4, 9, 0, 0, 0, time.UTC)
	a := geo.Point{Lat: 41.15, Lng: -8.61}
	trip := func(id string, metres, secs float64) Trip {
		return Trip{ID: id, Fixes: []Fix{{a, t0}, {geo.Offset(a, 90, metres), t0.Add(time.Duration(secs * float64(time.Second)))}}}
	}
	// Speeds 2, 5 and 10 m/s: median 5; pooled 12,000 m / 1,700 s ≈ 7.06.
	train := []Trip{trip("a", 1000, 500), trip("b", 10000, 1000), trip("c", 1000, 200)}
	l := &Learned{}
	if err := l.fitBaselines(train); err != nil {
		t.Fatal(err)
	}
	if math.Abs(l.LineSpeedMS-5) > 0.01 || l.RoutedSpeedMS != 0 {
		t.Fatalf("line %.3f m/s (want the median, 5), routed %.3f (want 0 without a map)", l.LineSpeedMS, l.RoutedSpeedMS)
	}
	// An even count takes the mean of the middle two.
	if err := l.fitBaselines(append(train, trip("d", 3000, 500))); err != nil {
		t.Fatal(err)
	}
	if math.Abs(l.LineSpeedMS-5.5) > 0.01 {
		t.Fatalf("line %.3f m/s, want 5.5", l.LineSpeedMS)
	}
	if err := (&Learned{}).fitBaselines(nil); err == nil {
		t.Fatal("no training trips accepted")
	}
}

// TestMapeShift: for unbiased log-normal errors the shift is negative
// (estimates lowered, as relative error wants), no deeper than σ² (the
// MAPE-optimal shift), larger for a wider spread, about nothing for a
// narrow one, and nothing for too few queries.
func TestMapeShift(t *testing.T) {
	shift := func(sigma float64, n int) float64 {
		rng := rand.New(rand.NewPCG(3, 4))
		oof, y := make([]float64, n), make([]float64, n)
		for i := range oof {
			oof[i] = math.Log1p(60 + rng.Float64()*1800)
			y[i] = oof[i] + sigma*rng.NormFloat64()
		}
		return mapeShift(oof, y)
	}
	wide, narrow := shift(0.9, 5000), shift(0.1, 5000)
	if !(wide < -0.05 && wide >= -0.81) {
		t.Errorf("σ 0.9: shift %.2f, want in [-0.81, -0.05)", wide)
	}
	if !(narrow <= 0 && narrow > -0.03) || narrow <= wide {
		t.Errorf("σ 0.1: shift %.2f (σ 0.9: %.2f), want about 0 and above", narrow, wide)
	}
	if s := shift(0.9, minShiftSamples-1); s != 0 {
		t.Errorf("%d queries: shift %.2f, want 0", minShiftSamples-1, s)
	}
}

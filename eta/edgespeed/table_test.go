package edgespeed_test

import (
	"errors"
	"math"
	"testing"

	"github.com/hextrack/hextrack/eta/edgespeed"
	"github.com/hextrack/hextrack/eta/mapmatch"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
)

var porto = geo.Point{Lat: 41.15, Lng: -8.61}

// hop drives edges e whole at ratio × their free-flow time.
func hop(g *road.Graph, ratio float64, es ...road.EdgeID) mapmatch.Hop {
	h := mapmatch.Hop{}
	for _, e := range es {
		ed := g.Edge(e)
		h.Spans = append(h.Spans, mapmatch.Span{Edge: e, From: 0, To: 1})
		h.Meters += ed.LengthM
		h.Seconds += ratio * ed.LengthM / ed.SpeedMS
	}
	return h
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

// TestRatioShrinksTowardsFallback: an edge never driven takes the
// fallback; one driven once sits between the fallback and what it showed;
// one driven often shows its own ratio; a bucket with its own evidence
// departs from the edge's all-day ratio, one without follows it.
func TestRatioShrinksTowardsFallback(t *testing.T) {
	g := road.SyntheticCity(1, porto)
	l := edgespeed.NewLearner(g, 6, 0)
	once, often, unseen := road.EdgeID(10), road.EdgeID(20), road.EdgeID(30)
	if !l.Add(hop(g, 3, once), 2) {
		t.Fatal("a moving hop was refused")
	}
	for range 200 {
		l.Add(hop(g, 2, often), 2)
	}
	for range 200 {
		l.Add(hop(g, 4, often), 5)
	}
	tb := l.Table()
	const fb = 1.5
	if r := tb.Ratio(unseen, 2, fb); r != fb {
		t.Errorf("unseen edge: ratio %.3f, want the fallback %.1f", r, fb)
	}
	if r := tb.Ratio(once, 2, fb); !(r > fb && r < 3) {
		t.Errorf("edge driven once at 3: ratio %.3f, want between %.1f and 3", r, fb)
	}
	if r := tb.Ratio(often, 2, fb); math.Abs(r-2) > 0.05 {
		t.Errorf("edge driven 200 times at 2 in bucket 2: ratio %.3f", r)
	}
	if r := tb.Ratio(often, 5, fb); math.Abs(r-4) > 0.1 {
		t.Errorf("edge driven 200 times at 4 in bucket 5: ratio %.3f", r)
	}
	allDay := tb.Ratio(often, -1, fb)
	if r := tb.Ratio(often, 0, fb); !near(r, allDay) || math.Abs(allDay-3) > 0.1 {
		t.Errorf("bucket 0 (no evidence): ratio %.3f, want the all-day %.3f ≈ 3", r, allDay)
	}
	if r, ok := tb.Global(2); !ok || r < 1.9 || r > 2.1 {
		t.Errorf("global ratio in bucket 2: %.3f %v", r, ok)
	}
	if r, ok := edgespeed.NewLearner(g, 6, 0).Table().Global(2); ok || r != 1 {
		t.Errorf("empty table's global ratio %.3f %v, want 1 false", r, ok)
	}
}

// TestHopsThatSayNothing are refused: standing still, impossibly fast,
// an unknown bucket; a hop's ratio is capped.
func TestHopsThatSayNothing(t *testing.T) {
	g := road.SyntheticCity(1, porto)
	l := edgespeed.NewLearner(g, 6, 0)
	e := road.EdgeID(5)
	for name, tc := range map[string]struct {
		h mapmatch.Hop
		b int
	}{
		"no spans":   {mapmatch.Hop{Seconds: 15}, 1},
		"a few cm":   {mapmatch.Hop{Seconds: 15, Meters: 0.05, Spans: []mapmatch.Span{{Edge: e, From: 0.5, To: 0.5001}}}, 1},
		"too fast":   {mapmatch.Hop{Seconds: 1, Meters: 100, Spans: []mapmatch.Span{{Edge: e, From: 0, To: 1}}}, 1},
		"bad bucket": {hop(g, 2, e), 6},
		"no time":    {mapmatch.Hop{Meters: 10, Spans: []mapmatch.Span{{Edge: e, From: 0, To: 1}}}, 1},
	} {
		if l.Add(tc.h, tc.b) {
			t.Errorf("%s: added", name)
		}
	}
	if tb := l.Table(); tb.Edges() != 0 {
		t.Fatalf("%d edges learned from refused hops", tb.Edges())
	}
	for range 1000 {
		l.Add(hop(g, 500, e), 1) // a car parked on the street
	}
	if r := l.Table().Ratio(e, 1, 1); r > 20 {
		t.Errorf("ratio %.1f above the cap of 20", r)
	}
}

// TestStateRoundTrip: a table rebuilt from its state answers the same,
// fits the graph it was learned on and no other; malformed states are
// refused.
func TestStateRoundTrip(t *testing.T) {
	g := road.SyntheticCity(1, porto)
	l := edgespeed.NewLearner(g, 6, 10)
	for i := range 50 {
		l.Add(hop(g, 1+float64(i%5), road.EdgeID(i), road.EdgeID(i+1)), i%6)
	}
	tb := l.Table()
	back, err := edgespeed.FromState(tb.State())
	if err != nil {
		t.Fatal(err)
	}
	for e := range road.EdgeID(60) {
		for b := -1; b < 6; b++ {
			if x, y := tb.Ratio(e, b, 1.3), back.Ratio(e, b, 1.3); x != y {
				t.Fatalf("edge %d bucket %d: %v, rebuilt %v", e, b, x, y)
			}
		}
	}
	if !back.Fits(g) || !back.Fits(road.SyntheticCity(1, porto)) {
		t.Error("does not fit the graph it was learned on")
	}
	if back.Fits(road.SyntheticCity(2, porto)) {
		t.Error("fits another graph")
	}
	for name, s := range map[string]edgespeed.State{
		"no buckets": {Kappa: 1},
		"no kappa":   {Buckets: 6},
		"bad bucket": {Buckets: 6, Kappa: 1, Stats: []edgespeed.Stat{{Edge: 1, Bucket: 6, Secs: 1, FreeSec: 1}}},
		"no time":    {Buckets: 6, Kappa: 1, Stats: []edgespeed.Stat{{Edge: 1, Bucket: 0, Secs: 1}}},
		"NaN":        {Buckets: 6, Kappa: 1, Stats: []edgespeed.Stat{{Edge: 1, Bucket: 0, Secs: math.NaN(), FreeSec: 1}}},
	} {
		if _, err := edgespeed.FromState(s); !errors.Is(err, edgespeed.ErrState) {
			t.Errorf("%s: %v, want ErrState", name, err)
		}
	}
}

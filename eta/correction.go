package eta

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// Correction maps a raw estimate (routed with learned edge speeds, or the
// line estimate without a graph) to a corrected travel time with a small
// gradient-boosted tree ensemble fitted in log space, log(1+seconds), on
// finished trips: the exponential of a conditional mean of log durations,
// which is what minimises RMSLE. Its features are what is known when the
// question is asked: the straight-line distance and bearing, the raw
// estimate's seconds and meters, both ends' coordinates (the city's own
// geography: bridges, airports, the centre), the hour of day and the day
// of week. It learns what per-cell speeds can't: the fixed cost of
// stopping at the end, rush hours, which parts of town are slow to get out
// of. Immutable once built; safe for concurrent use.
type Correction struct {
	b      *booster
	params boostParams
	cvRMSE float64
}

// numFeatures is the width of a correction's feature vector.
const numFeatures = 13

// features describes a query for the correction. t's location gives the
// local hour and weekday.
func features(from, to geo.Point, t time.Time, raw Estimate) []float64 {
	d := geo.Distance(from, to)
	br := geo.Bearing(from, to)
	wd := float64(t.Weekday())
	we := 0.0
	if wd == 0 || wd == 6 {
		we = 1
	}
	return []float64{
		math.Log1p(d),
		math.Log1p(raw.Meters),
		math.Log1p(math.Max(raw.Seconds, 0)),
		math.Mod(br, 90),
		br,
		from.Lat, from.Lng, to.Lat, to.Lng,
		float64(t.Hour()) + float64(t.Minute())/60,
		wd,
		we,
		math.Log1p(raw.Meters) - math.Log1p(d),
	}
}

// Seconds is the corrected travel time for raw, from → to leaving at t.
func (c *Correction) Seconds(from, to geo.Point, t time.Time, raw Estimate) float64 {
	return math.Max(0, math.Expm1(c.b.predict(features(from, to, t, raw))))
}

// Trees is the number of trees (0: the correction is a constant factor).
func (c *Correction) Trees() int { return len(c.b.Trees) }

// Depth is the depth of each tree, chosen by cross-validation.
func (c *Correction) Depth() int { return c.params.Depth }

// CVRMSLE is the cross-validated error (RMSE of log(1+s)) of the chosen
// parameters on the training trips.
func (c *Correction) CVRMSLE() float64 { return math.Sqrt(c.cvRMSE) }

// Fingerprint hashes every fitted parameter: corrections with the same
// fingerprint predict alike. The leakage test compares them.
func (c *Correction) Fingerprint() uint64 {
	if c == nil {
		return 0
	}
	h := fnv.New64a()
	var buf [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	put(math.Float64bits(c.b.Base))
	for _, t := range c.b.Trees {
		for _, n := range t {
			put(uint64(n.Feature)<<32 | uint64(uint32(n.Left))<<16 ^ uint64(uint32(n.Right)))
			put(math.Float64bits(n.Thresh))
			put(math.Float64bits(n.Value))
		}
	}
	return h.Sum64()
}

// correctionSample is one query with its true duration, from a training
// trip in fold Fold.
type correctionSample struct {
	X      []float64
	Actual float64
	Fold   int
}

// Hyperparameters of the correction. The learning rate, leaf size and
// subsample are fixed; the depth (among correctionDepths) and the number of
// trees (up to correctionTrees) are chosen by cross-validation over the
// training trips' folds, inside Learn.
var correctionDepths = []int{3, 5}

const (
	correctionTrees = 300
	correctionFolds = 5
)

// fitCorrection fits a correction to samples by cross-validation over
// their folds; nil when there are too few.
func fitCorrection(samples []correctionSample) *Correction {
	if len(samples) < 50 {
		return nil
	}
	X := make([][]float64, len(samples))
	y := make([]float64, len(samples))
	fold := make([]int, len(samples))
	for i, s := range samples {
		X[i], y[i], fold[i] = s.X, math.Log1p(s.Actual), s.Fold
	}
	p := boostParams{Trees: correctionTrees, Rate: 0.05, MinLeaf: 20, Lambda: 1, Subsample: 0.8, Seed: 1}
	b, best, err := cvBoost(X, y, fold, correctionFolds, correctionDepths, p)
	return &Correction{b: b, params: best, cvRMSE: err}
}

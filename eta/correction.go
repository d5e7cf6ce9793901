package eta

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"time"

	"github.com/hextrack/hextrack/eta/internal/gbm"
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
	fs     featureSpace
	b      *gbm.Booster
	params gbm.Params
	cvRMSE float64
	// shift is added to the log prediction (mapeShift): [0] for a query
	// without Motion (a trip not started), [1] for a vehicle under way;
	// 0 in models from before it.
	shift [2]float64
}

// featureSpace turns a query into the correction's feature vector. gridDeg
// is the orientation of the city's street grid (degrees, [0, 90)), learned
// from the training trips (gridAngle): the distance along the grid,
// |Δ along| + |Δ across|, is what a car on a grid drives.
type featureSpace struct {
	gridDeg float64
	od      *odIndex // journeys of the training trips (see odIndex)
}

// vector describes a query. t's location gives the local hour and weekday.
func (fs featureSpace) vector(from, to geo.Point, t time.Time, m Motion, raw Estimate) []float64 {
	d := geo.Distance(from, to)
	br := geo.Bearing(from, to)
	wd := float64(t.Weekday())
	we := 0.0
	if wd == 0 || wd == 6 {
		we = 1
	}
	x := []float64{
		math.Log1p(d),
		math.Log1p(gridDistance(d, br, fs.gridDeg)),
		math.Log1p(raw.Meters),
		math.Log1p(math.Max(raw.Seconds, 0)),
		math.Mod(br-fs.gridDeg+360, 90),
		br,
		from.Lat, from.Lng, to.Lat, to.Lng,
		float64(t.Hour()) + float64(t.Minute())/60,
		wd,
		we,
		math.Log1p(raw.Meters) - math.Log1p(d),
	}
	// Motion: -1 when unknown (trees split it off).
	v1, v4, t1, t4 := -1.0, -1.0, -1.0, -1.0
	if m.Known {
		v1, v4 = math.Log1p(m.LastSpeedMS), math.Log1p(m.RecentSpeedMS)
		t1 = math.Log1p(d / math.Max(m.LastSpeedMS, 0.5))
		t4 = math.Log1p(d / math.Max(m.RecentSpeedMS, 0.5))
	}
	x = append(x, v1, v4, t1, t4)
	if fs.od != nil {
		x = fs.od.features(x, from, to)
	}
	return x
}

// gridDistance is the length of the staircase path over a grid oriented
// gridDeg between two points d metres apart on bearing br.
func gridDistance(d, br, gridDeg float64) float64 {
	a := (br - gridDeg) * math.Pi / 180
	return d * (math.Abs(math.Cos(a)) + math.Abs(math.Sin(a)))
}

// gridAngle finds the grid orientation (whole degrees in [0, 90)) that best
// explains the driven distances of trips: the angle minimising the variance
// of log(driven ÷ grid distance). 0 when no trip has a driven distance.
func gridAngle(trips []Trip) float64 {
	type obs struct{ d, br, logDriven float64 }
	var os []obs
	for _, t := range trips {
		a, b := t.Fixes[0].Point, t.Fixes[len(t.Fixes)-1].Point
		d, dr := geo.Distance(a, b), driven(t)
		if d < 200 || !(dr >= d) || dr > 3*d {
			continue
		}
		os = append(os, obs{d, geo.Bearing(a, b), math.Log(dr)})
	}
	if len(os) < 10 {
		return 0
	}
	best, bestVar := 0.0, math.Inf(1)
	for deg := 0; deg < 90; deg++ {
		var s, ss float64
		for _, o := range os {
			r := o.logDriven - math.Log(gridDistance(o.d, o.br, float64(deg)))
			s += r
			ss += r * r
		}
		n := float64(len(os))
		if v := ss/n - (s/n)*(s/n); v < bestVar {
			best, bestVar = float64(deg), v
		}
	}
	return best
}

// Seconds is the corrected travel time for raw, from → to leaving at t.
func (c *Correction) Seconds(from, to geo.Point, t time.Time, m Motion, raw Estimate) float64 {
	return math.Max(0, math.Expm1(c.b.Predict(c.fs.vector(from, to, t, m, raw))+c.shift[motionGroup(m)]))
}

func motionGroup(m Motion) int {
	if m.Known {
		return 1
	}
	return 0
}

// Shifts are the log-space shifts applied to the trees' prediction
// (mapeShift) for a trip not started and a vehicle under way: exp(shift)
// is the factor on 1+seconds.
func (c *Correction) Shifts() (notStarted, underWay float64) { return c.shift[0], c.shift[1] }

// Trees is the number of trees (0: the correction is a constant factor).
func (c *Correction) Trees() int { return len(c.b.Trees) }

// GridDegrees is the learned orientation of the street grid.
func (c *Correction) GridDegrees() float64 { return c.fs.gridDeg }

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
	put(math.Float64bits(c.fs.gridDeg))
	if c.fs.od != nil {
		for _, j := range c.fs.od.j {
			put(uint64(math.Float32bits(j.ax))<<32 | uint64(math.Float32bits(j.bx)))
			put(uint64(math.Float32bits(j.ay))<<32 | uint64(math.Float32bits(j.by)))
			put(uint64(math.Float32bits(j.y)))
		}
	}
	put(math.Float64bits(c.b.Base))
	put(math.Float64bits(c.shift[0]))
	put(math.Float64bits(c.shift[1]))
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
	Moving bool // the query had Motion (motionGroup 1)
}

// Hyperparameters of the correction. The learning rate, leaf size and
// subsample are fixed; the depth (among correctionDepths) and the number of
// trees (up to correctionTrees) are chosen by cross-validation over the
// training trips' folds, inside Learn.
var (
	correctionDepths = []int{3}
	correctionLeaves = []int{100}
)

const (
	correctionTrees = 200
	correctionFolds = 5
)

// fitCorrection fits a correction to samples by cross-validation over
// their folds; nil when there are too few.
func fitCorrection(fs featureSpace, samples []correctionSample) *Correction {
	if len(samples) < 50 {
		return nil
	}
	X := make([][]float64, len(samples))
	y := make([]float64, len(samples))
	fold := make([]int, len(samples))
	for i, s := range samples {
		X[i], y[i], fold[i] = s.X, math.Log1p(s.Actual), s.Fold
	}
	p := gbm.Params{Trees: correctionTrees, Rate: 0.1, MinLeaf: 100, Lambda: 1, Subsample: 0.8, Seed: 1}
	b, best, err, oof := gbm.CVOutOfFold(X, y, fold, correctionFolds, correctionDepths, correctionLeaves, p)
	c := &Correction{fs: fs, b: b, params: best, cvRMSE: err}
	for g := range c.shift {
		var o, a []float64
		for i, s := range samples {
			if motionGroup(Motion{Known: s.Moving}) == g {
				o, a = append(o, oof[i]), append(a, y[i])
			}
		}
		c.shift[g] = mapeShift(o, a)
	}
	return c
}

// minShiftSamples is the fewest queries a shift is fitted on.
const minShiftSamples = 30

// mapeShift is the log-space shift of the trees' predictions that best
// trades relative error against log error on training queries, out of
// fold (oof and y are log(1+seconds); fitted apart for queries with and
// without Motion, whose errors differ in spread; 0 for fewer than
// minShiftSamples): the δ in [-1, 0] minimising
// MAPE(δ)/MAPE(0) + RMSLE(δ)/RMSLE(0). The trees predict the conditional
// mean of log time, which minimises RMSLE; relative error punishes a late
// estimate without bound but an early one by at most 100%, so the
// MAPE-optimal estimate is lower (for log-normal errors of spread σ, by
// σ² in log space). Weighing the two metrics' relative changes alike
// moves part of the way: on Porto (σ ≈ 0.9) the estimate drops by ~15–25%,
// on NYC green (σ ≈ 0.37) by a few percent.
func mapeShift(oof, y []float64) float64 {
	if len(oof) < minShiftSamples {
		return 0
	}
	score := func(d float64) (mape, rmsle float64) {
		for i, p := range oof {
			a := math.Expm1(y[i])
			if a <= 0 {
				continue
			}
			mape += math.Abs(math.Max(0, math.Expm1(p+d))-a) / a
			l := math.Log1p(math.Max(0, math.Expm1(p+d))) - y[i]
			rmsle += l * l
		}
		return mape, math.Sqrt(rmsle)
	}
	m0, r0 := score(0)
	if m0 <= 0 || r0 <= 0 {
		return 0
	}
	// Every 0.05, then every 0.01 around the best (scoring is a pass over
	// up to 40k queries).
	best, bestScore := 0.0, 2.0
	try := func(k int) {
		d := -float64(k) / 100
		m, r := score(d)
		if s := m/m0 + r/r0; s < bestScore {
			best, bestScore = d, s
		}
	}
	for k := 5; k <= 100; k += 5 {
		try(k)
	}
	c := int(math.Round(-best * 100))
	for k := max(1, c-4); k <= min(100, c+4); k++ {
		try(k)
	}
	return best
}

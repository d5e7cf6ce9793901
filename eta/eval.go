package eta

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
)

// Trip validity rules, applied to training and test trips alike (and
// reported): a trip must last 1 min–3 h, its ends be ≥ 100 m apart, and its
// straight-line speed be ≤ 40 m/s. Records outside that are meter errors
// (taxi meters left running for a day, zero-length trips), not traffic.
const (
	minTripS      = 60
	maxTripS      = 3 * 3600
	minTripM      = 100
	maxLineSpeedM = 40
)

// EvalOptions configures an evaluation.
type EvalOptions struct {
	Graph        *road.Graph // nil: no road graph (line estimates, no routed baseline)
	Seed         int64       // split seed
	TestFraction float64     // share of trips held out; 0 → 0.3
	// Model, when set, is scored instead of a model learned from the
	// training trips (which then fit only the baselines); see UseModel.
	Model *Model
}

// Metrics are error statistics of predicted against actual durations.
type Metrics struct {
	MAE   float64 `json:"mae_s"`
	MAPE  float64 `json:"mape"` // a fraction
	RMSLE float64 `json:"rmsle"`
	P90   float64 `json:"p90_s"`
}

// Comparison sets the model beside the baselines on the same samples.
type Comparison struct {
	Model          Metrics  `json:"model"`
	StraightLine   Metrics  `json:"straight_line"`
	RoutedConstant *Metrics `json:"routed_constant,omitempty"`

	samples int
}

// Report is the result of an evaluation; its JSON is eta-eval's --json.
type Report struct {
	TestTrips int         `json:"test_trips"`
	WholeTrip Comparison  `json:"whole_trip"`
	Remaining *Comparison `json:"remaining,omitempty"`

	// Not in the JSON: provenance for the table and for tests.
	TrainTrips    int       `json:"-"`
	Invalid       int       `json:"-"`
	OffMap        int       `json:"-"`
	LineSpeedMS   float64   `json:"-"`
	RoutedSpeedMS float64   `json:"-"`
	Learned       *Learned  `json:"-"`
	Predictions   []float64 `json:"-"` // model predictions, whole trips then remaining samples
}

// Split assigns trips to training or test by a seeded hash of the trip ID:
// deterministic, independent of order, and whole trips never straddle.
func Split(trips []Trip, seed int64, testFraction float64) (train, test []Trip) {
	if testFraction <= 0 {
		testFraction = 0.3
	}
	for _, t := range trips {
		h := fnv.New64a()
		h.Write([]byte(strconv.FormatInt(seed, 10)))
		h.Write([]byte{0})
		h.Write([]byte(t.ID))
		if float64(mix64(h.Sum64())>>11)/float64(1<<53) < testFraction {
			test = append(test, t)
		} else {
			train = append(train, t)
		}
	}
	return train, test
}

// mix64 is the splitmix64 finaliser: FNV's high bits are poorly mixed for
// short, similar IDs ("T1", "T2", ...).
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Learned is everything an evaluation learned from training trips.
type Learned struct {
	Model     *SpeedModel
	Router    *Router // nil without a graph
	Estimator *Estimator
	// Baselines: constant speeds fitted on the training trips.
	LineSpeedMS   float64 // straight-line metres per second
	RoutedSpeedMS float64 // shortest-route metres per second (with a graph)
}

// Learn fits the speed model, detour factor, correction and baselines on
// training trips only.
//
// The correction is stacked: its training queries (every point of a
// training trip but the last, to that last point) need raw estimates made
// the way test queries will be, by speeds that never saw the trip. So the
// training trips are cut into correctionFolds folds by trip, and each
// fold's queries are estimated with speeds learned on the other folds
// (out-of-fold); the same folds then cross-validate the correction's
// depth and number of trees. The final speeds are learned on every
// training trip.
func Learn(ctx context.Context, train []Trip, g *road.Graph) (*Learned, error) {
	train = slices.Clone(train)
	slices.SortStableFunc(train, func(a, b Trip) int { return a.Fixes[0].Time.Compare(b.Fixes[0].Time) })
	if len(train) == 0 {
		return nil, fmt.Errorf("eta: no training trips")
	}
	l := learnSpeeds(train, g)
	if err := l.fitBaselines(train); err != nil {
		return nil, err
	}

	// Out-of-fold correction samples.
	fold := make([]int, len(train))
	for i, t := range train {
		fold[i] = foldOf(t.ID)
	}
	grid := gridAngle(train)
	journeys := make([][]odJourneyIn, len(train))
	var all []odJourneyIn
	for i, t := range train {
		last := t.Fixes[len(t.Fixes)-1]
		for _, f := range t.Fixes[:len(t.Fixes)-1] {
			journeys[i] = append(journeys[i], odJourneyIn{A: f.Point, B: last.Point, Seconds: last.Time.Sub(f.Time).Seconds()})
		}
		all = append(all, journeys[i]...)
	}
	// Folds are independent (each its own speed model and router over the
	// shared, read-only graph): estimate them in parallel.
	perFold := make([][]correctionSample, correctionFolds)
	var wg sync.WaitGroup
	for k := 0; k < correctionFolds; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			perFold[k] = foldSamples(ctx, train, fold, journeys, k, grid, g)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var samples []correctionSample
	for _, s := range perFold {
		samples = append(samples, s...)
	}
	fs := featureSpace{gridDeg: grid, od: newODIndex(all)}
	l.Estimator.SetCorrection(fitCorrection(fs, samples))
	return l, nil
}

// fitBaselines fits the baselines' constant speeds on the training trips.
func (l *Learned) fitBaselines(train []Trip) error {
	var lineM, routedM, secs float64
	for _, t := range train {
		a, b := t.Fixes[0], t.Fixes[len(t.Fixes)-1]
		lineM += geo.Distance(a.Point, b.Point)
		secs += b.Time.Sub(a.Time).Seconds()
		if l.Router != nil {
			if m, err := l.routedLength(a.Point, b.Point); err == nil {
				routedM += m
			}
		}
	}
	if secs <= 0 {
		return fmt.Errorf("eta: no training trips")
	}
	l.LineSpeedMS = lineM / secs
	l.RoutedSpeedMS = routedM / secs
	return nil
}

// foldSamples are fold k's correction samples: its trips' queries, with
// raw estimates and journeys learned from the other folds only.
func foldSamples(ctx context.Context, train []Trip, fold []int, journeys [][]odJourneyIn, k int, grid float64, g *road.Graph) []correctionSample {
	var rest []Trip
	var restJ []odJourneyIn
	for i, t := range train {
		if fold[i] != k {
			rest = append(rest, t)
			restJ = append(restJ, journeys[i]...)
		}
	}
	if len(rest) == 0 {
		return nil
	}
	sub := learnSpeeds(rest, g)
	fs := featureSpace{gridDeg: grid, od: newODIndex(restJ)}
	var out []correctionSample
	for i, t := range train {
		if fold[i] != k {
			continue
		}
		last := t.Fixes[len(t.Fixes)-1]
		for j := 0; j < len(t.Fixes)-1; j++ {
			f := t.Fixes[j]
			raw, err := sub.Estimator.raw(ctx, f.Point, last.Point, f.Time)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				continue
			}
			out = append(out, correctionSample{X: fs.vector(f.Point, last.Point, f.Time, MotionOf(t.Fixes[:j+1]), raw),
				Actual: last.Time.Sub(f.Time).Seconds(), Fold: k})
		}
	}
	return out
}

// foldOf is a training trip's correction fold, a hash of its ID.
func foldOf(id string) int {
	h := fnv.New64a()
	h.Write([]byte("fold\x00"))
	h.Write([]byte(id))
	return int(mix64(h.Sum64()) % correctionFolds)
}

// learnSpeeds fits the detour factor and the cell speeds on trips (in
// departure order): the raw estimator, before any correction.
func learnSpeeds(train []Trip, g *road.Graph) *Learned {
	l := &Learned{Model: NewSpeedModel(SpeedConfig{})}
	if g != nil {
		l.Router = NewRouter(g, l.Model)
	}
	l.Estimator = NewEstimator(l.Model, l.Router)
	// Detour factor, then speeds (line observations need the detour).
	for _, t := range train {
		a, b := t.Fixes[0].Point, t.Fixes[len(t.Fixes)-1].Point
		l.Estimator.ObserveDetour(geo.Distance(a, b), driven(t))
	}
	for _, t := range train {
		if len(t.Fixes) >= 3 {
			for i := 1; i < len(t.Fixes); i++ {
				if o, ok := l.Model.Observe(t.Fixes[i-1], t.Fixes[i]); ok {
					l.Model.Add(o)
				}
			}
			continue
		}
		// Only the ends: the trip's speed along its line, in every cell
		// the line crosses.
		a, b := t.Fixes[0], t.Fixes[len(t.Fixes)-1]
		d := driven(t)
		if d <= 0 {
			d = geo.Distance(a.Point, b.Point) * l.Estimator.Detour()
		}
		v := d / b.Time.Sub(a.Time).Seconds()
		if v < l.Model.cfg.MinSpeedMS || v > l.Model.cfg.MaxSpeedMS {
			continue
		}
		bk := BucketOf(a.Time)
		for _, c := range lineCells(a.Point, b.Point) {
			l.Model.Add(Observation{Cell: c, Bucket: bk, SpeedMS: v})
		}
	}
	if l.Router != nil {
		// The router follows a changing model at most once a second;
		// routes made right after learning must see all of it.
		l.Router.Refresh()
	}
	return l
}

func driven(t Trip) float64 {
	if t.DrivenM > 0 {
		return t.DrivenM
	}
	if len(t.Fixes) < 3 {
		return 0
	}
	d := 0.0
	for i := 1; i < len(t.Fixes); i++ {
		d += geo.Distance(t.Fixes[i-1].Point, t.Fixes[i].Point)
	}
	return d
}

// routedLength is the routed-constant baseline's distance: the shortest
// route with the same end handling as the model (candidate roads near each
// end, same-spot rule), so the baseline differs only in its speeds.
func (l *Learned) routedLength(a, b geo.Point) (float64, error) {
	if d := geo.Distance(a, b); d < sameSpotM {
		return d, nil
	}
	sa := l.Router.g.Near(a, nearSlackM, nearMax)
	sb := l.Router.g.Near(b, nearSlackM, nearMax)
	if sa == nil || sb == nil {
		return 0, road.ErrOffGraph
	}
	r, err := l.Router.g.RouteMulti(sa, sb, l.Router.lens, 1.0001, 1)
	return r.Meters, err
}

// valid applies the trip validity rules.
func valid(t Trip) bool {
	if len(t.Fixes) < 2 {
		return false
	}
	d := t.Duration().Seconds()
	m := geo.Distance(t.Fixes[0].Point, t.Fixes[len(t.Fixes)-1].Point)
	return d >= minTripS && d <= maxTripS && m >= minTripM && m/d <= maxLineSpeedM
}

// onMapSnapM is how close to a road a fix must be to count as on the map.
const onMapSnapM = 100

// clipToMap keeps the longest run of consecutive fixes that all snap to the
// graph within onMapSnapM: the real time between any two fixes of a trip is
// ground truth, so a trip leaving the map's area still tells the truth about
// its part inside. Trips entirely on the map are unchanged.
func clipToMap(g *road.Graph, t Trip) Trip {
	bestLo, bestHi, lo := 0, 0, 0
	for i := 0; i <= len(t.Fixes); i++ {
		on := false
		if i < len(t.Fixes) {
			s, ok := g.Snap(t.Fixes[i].Point)
			on = ok && s.DistM <= onMapSnapM
		}
		if !on {
			if i-lo > bestHi-bestLo {
				bestLo, bestHi = lo, i
			}
			lo = i + 1
		}
	}
	if bestHi-bestLo == len(t.Fixes) {
		return t
	}
	c := t
	c.Fixes = t.Fixes[bestLo:bestHi]
	c.DrivenM = 0 // the metered distance was for the whole trip
	return c
}

// Prepare drops invalid trips; with a graph it first clips each trip to its
// longest stretch on the map and counts the trips with none (offMap).
func Prepare(trips []Trip, g *road.Graph) (kept []Trip, invalid, offMap int) {
	for _, t := range trips {
		if g != nil {
			if t = clipToMap(g, t); len(t.Fixes) < 2 {
				offMap++
				continue
			}
		}
		if !valid(t) {
			invalid++
			continue
		}
		kept = append(kept, t)
	}
	return kept, invalid, offMap
}

// Eval prepares trips, splits them, learns on the training part and reports
// errors on the test part.
func Eval(ctx context.Context, trips []Trip, opt EvalOptions) (*Report, error) {
	kept, invalid, off := Prepare(trips, opt.Graph)
	train, test := Split(kept, opt.Seed, opt.TestFraction)
	rep, err := EvalSplit(ctx, train, test, opt)
	if err != nil {
		return nil, err
	}
	rep.Invalid, rep.OffMap = invalid, off
	return rep, nil
}

// EvalSplit learns on train and reports on test (both already prepared).
func EvalSplit(ctx context.Context, train, test []Trip, opt EvalOptions) (*Report, error) {
	if len(test) == 0 {
		return nil, fmt.Errorf("eta: no test trips")
	}
	l, err := learnOrUse(ctx, train, opt)
	if err != nil {
		return nil, err
	}
	rep := &Report{TestTrips: len(test), TrainTrips: len(train), Learned: l,
		LineSpeedMS: l.LineSpeedMS, RoutedSpeedMS: l.RoutedSpeedMS}
	type acc struct{ actual, model, line, routed []float64 }
	var whole, rem acc
	routedOK := l.Router != nil && l.RoutedSpeedMS > 0
	// past are the fixes up to the query point: the live system knows
	// them (the driver's last pings); nothing after it is used.
	add := func(a *acc, past []Fix, to Fix) error {
		from := past[len(past)-1]
		actual := to.Time.Sub(from.Time).Seconds()
		est, err := l.Estimator.EstimateMoving(ctx, from.Point, to.Point, from.Time, MotionOf(past))
		if err != nil {
			return err
		}
		a.actual = append(a.actual, actual)
		a.model = append(a.model, est.Seconds)
		a.line = append(a.line, geo.Distance(from.Point, to.Point)/l.LineSpeedMS)
		if routedOK {
			m, err := l.routedLength(from.Point, to.Point)
			if err != nil {
				return err
			}
			a.routed = append(a.routed, m/l.RoutedSpeedMS)
		}
		return nil
	}
	for _, t := range test {
		last := t.Fixes[len(t.Fixes)-1]
		if err := add(&whole, t.Fixes[:1], last); err != nil {
			return nil, fmt.Errorf("eta: trip %s: %w", t.ID, err)
		}
		for i := 1; i < len(t.Fixes)-1; i++ {
			if err := add(&rem, t.Fixes[:i+1], last); err != nil {
				return nil, fmt.Errorf("eta: trip %s point %d: %w", t.ID, i, err)
			}
		}
	}
	cmp := func(a acc) Comparison {
		c := Comparison{Model: metrics(a.actual, a.model), StraightLine: metrics(a.actual, a.line), samples: len(a.actual)}
		if routedOK {
			m := metrics(a.actual, a.routed)
			c.RoutedConstant = &m
		}
		return c
	}
	rep.WholeTrip = cmp(whole)
	rep.Predictions = append(slices.Clone(whole.model), rem.model...)
	if len(rem.actual) > 0 {
		c := cmp(rem)
		rep.Remaining = &c
	}
	return rep, nil
}

func metrics(actual, pred []float64) Metrics {
	n := float64(len(actual))
	if n == 0 {
		return Metrics{}
	}
	var ae, ape, sle float64
	abs := make([]float64, len(actual))
	for i, a := range actual {
		p := math.Max(pred[i], 0)
		abs[i] = math.Abs(p - a)
		ae += abs[i]
		ape += abs[i] / a
		l := math.Log1p(p) - math.Log1p(a)
		sle += l * l
	}
	slices.Sort(abs)
	return Metrics{MAE: ae / n, MAPE: ape / n, RMSLE: math.Sqrt(sle / n), P90: quantile(abs, 0.9)}
}

// quantile of sorted values, linear interpolation.
func quantile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return 0
	}
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (s[i+1]-s[i])*(pos-float64(i))
}

// WriteTable prints the report as a plain-text table.
func (r *Report) WriteTable(w io.Writer) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("trips: %d train, %d test (split by trip); dropped %d invalid, %d off the map (others clipped to the map)\n",
		r.TrainTrips, r.TestTrips, r.Invalid, r.OffMap)
	p("baselines fitted on training trips: straight line %.2f m/s", r.LineSpeedMS)
	if r.RoutedSpeedMS > 0 {
		p(", routed %.2f m/s", r.RoutedSpeedMS)
	}
	p("\n")
	if r.Learned != nil {
		if c := r.Learned.Estimator.Correction(); c != nil {
			p("correction (log space, fitted on training trips only): %d trees of depth %d, cross-validated RMSLE %.3f; street grid %.0f°\n",
				c.Trees(), c.Depth(), c.CVRMSLE(), c.GridDegrees())
		}
	}
	if r.Remaining != nil {
		p("remaining-time queries see the vehicle's fixes up to the query point, never after\n")
	}
	section := func(name string, c Comparison) {
		p("\n%-28s %9s %8s %7s %9s\n", fmt.Sprintf("%s (%d)", name, c.samples), "MAE s", "MAPE", "RMSLE", "p90 s")
		row := func(n string, m Metrics) {
			p("  %-26s %9.1f %7.1f%% %7.3f %9.1f\n", n, m.MAE, m.MAPE*100, m.RMSLE, m.P90)
		}
		row("model", c.Model)
		row("straight line, constant", c.StraightLine)
		if c.RoutedConstant != nil {
			row("routed, constant", *c.RoutedConstant)
		}
	}
	section("whole trip", r.WholeTrip)
	if r.Remaining != nil {
		section("remaining time", *r.Remaining)
	}
	_, err := fmt.Fprintln(w)
	return err
}

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
	// Estimator, when set, is scored instead of a model learned from the
	// training trips (which then fit only the baselines; learnOrUse): a
	// model file's (eta/etamodel), over Graph.
	Estimator *Estimator
}

// Metrics are error statistics of predicted against actual durations.
type Metrics struct {
	MAE   float64 `json:"mae_s"`
	MAPE  float64 `json:"mape"` // a fraction
	RMSLE float64 `json:"rmsle"`
	P90   float64 `json:"p90_s"` // 90th percentile of the absolute error
}

// Comparison sets the model beside the baselines on the same queries.
// Queries counts the queries the test trips pose, Scored those scored:
// every one (a query the model cannot answer fails the evaluation rather
// than vanish from it).
type Comparison struct {
	Queries        int      `json:"queries"`
	Scored         int      `json:"scored"`
	Model          Metrics  `json:"model"`
	StraightLine   Metrics  `json:"straight_line"`
	RoutedConstant *Metrics `json:"routed_constant,omitempty"`
}

// Subset is a labelled part of the test queries, reported beside (never
// instead of) the whole: with a map, the queries with both ends on it and
// the others.
type Subset struct {
	Label     string      `json:"label"`
	WholeTrip *Comparison `json:"whole_trip,omitempty"`
	Remaining *Comparison `json:"remaining,omitempty"`
}

// Subset labels.
const (
	SubsetOnMap  = "both ends on the map"
	SubsetOffMap = "one or both ends off the map"
)

// Report is the result of an evaluation; its JSON is eta-eval's --json.
// Train and test counts are separate; invalid trips (the validity rules)
// are dropped from each part before anything else and counted per part.
type Report struct {
	TrainTrips   int         `json:"train_trips"`
	TrainInvalid int         `json:"train_invalid"`
	TestTrips    int         `json:"test_trips"`
	TestInvalid  int         `json:"test_invalid"`
	WholeTrip    Comparison  `json:"whole_trip"`
	Remaining    *Comparison `json:"remaining,omitempty"`
	Subsets      []Subset    `json:"subsets,omitempty"`
	// Baselines' speeds: the median over training trips of each trip's
	// straight-line (routed) distance ÷ its duration.
	LineSpeedMS   float64 `json:"line_speed_ms"`
	RoutedSpeedMS float64 `json:"routed_speed_ms,omitempty"`

	// Not in the JSON: provenance for the table and for tests.
	Learned     *Learned  `json:"-"`
	Predictions []float64 `json:"-"` // model predictions, whole trips then remaining samples
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
	// Baselines: constant speeds fitted on the training trips, each the
	// median of the trips' own speeds (fitBaselines).
	LineSpeedMS   float64 // straight-line metres per second
	RoutedSpeedMS float64 // routed metres per second (with a graph; see routedLength)
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
	obs := trackObservations(train)
	hops := matchTrails(ctx, train, g)
	l := learnSpeeds(train, obs, hops, g)
	if err := l.fitBaselines(train); err != nil {
		return nil, err
	}

	// Out-of-fold correction samples.
	fold := make([]int, len(train))
	for i, t := range train {
		fold[i] = foldOf(t.ID)
	}
	grid := gridAngle(train)
	stride := sampleStride(train)
	journeys := make([][]odJourneyIn, len(train))
	var all []odJourneyIn
	for i, t := range train {
		last := t.Fixes[len(t.Fixes)-1]
		for j := 0; j < len(t.Fixes)-1; j += stride {
			f := t.Fixes[j]
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
			perFold[k] = foldSamples(ctx, train, obs, hops, fold, journeys, k, grid, stride, g)
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

// fitBaselines sets the baselines' speeds: the median over training trips
// of each trip's straight-line (and, with a graph, routed) distance
// between its ends ÷ its duration. A per-trip median, not a pooled
// distance ÷ time: long fast trips don't set the speed of short ones.
func (l *Learned) fitBaselines(train []Trip) error {
	var line, routed []float64
	for _, t := range train {
		a, b := t.Fixes[0], t.Fixes[len(t.Fixes)-1]
		secs := b.Time.Sub(a.Time).Seconds()
		if secs <= 0 {
			continue
		}
		line = append(line, geo.Distance(a.Point, b.Point)/secs)
		if l.Router != nil {
			if m, err := l.routedLength(a.Point, b.Point); err == nil {
				routed = append(routed, m/secs)
			}
		}
	}
	if len(line) == 0 {
		return fmt.Errorf("eta: no training trips")
	}
	l.LineSpeedMS = median(line)
	if len(routed) > 0 {
		l.RoutedSpeedMS = median(routed)
	}
	return nil
}

// median of values (reordered in place); 0 for none.
func median(v []float64) float64 {
	slices.Sort(v)
	return quantile(v, 0.5)
}

// maxCorrectionSamples bounds the correction's training queries, and so
// the time and memory of Learn on a big archive: past it, every stride-th
// query of each trip is taken (its first, the whole trip, always). The
// team's samples (Porto: ~13k queries; NYC green: 3.5k) are far below it.
const maxCorrectionSamples = 40_000

// sampleStride is the step between a trip's correction queries that keeps
// their number within maxCorrectionSamples.
func sampleStride(train []Trip) int {
	n := 0
	for _, t := range train {
		n += len(t.Fixes) - 1
	}
	return max(1, (n+maxCorrectionSamples-1)/maxCorrectionSamples)
}

// foldSamples are fold k's correction samples: its trips' queries (every
// stride-th), with raw estimates and journeys learned from the other folds
// only.
func foldSamples(ctx context.Context, train []Trip, obs [][]Observation, hops [][]bucketHop, fold []int, journeys [][]odJourneyIn, k int, grid float64, stride int, g *road.Graph) []correctionSample {
	var rest []Trip
	var restObs [][]Observation
	var restHops [][]bucketHop
	var restJ []odJourneyIn
	for i, t := range train {
		if fold[i] != k {
			rest = append(rest, t)
			restObs = append(restObs, obs[i])
			if hops != nil {
				restHops = append(restHops, hops[i])
			}
			restJ = append(restJ, journeys[i]...)
		}
	}
	if len(rest) == 0 {
		return nil
	}
	sub := learnSpeeds(rest, restObs, restHops, g)
	fs := featureSpace{gridDeg: grid, od: newODIndex(restJ)}
	var out []correctionSample
	for i, t := range train {
		if fold[i] != k {
			continue
		}
		last := t.Fixes[len(t.Fixes)-1]
		for j := 0; j < len(t.Fixes)-1; j += stride {
			f := t.Fixes[j]
			raw, err := sub.Estimator.raw(ctx, f.Point, last.Point, f.Time)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				continue
			}
			m := MotionOf(t.Fixes[:j+1])
			out = append(out, correctionSample{X: fs.vector(f.Point, last.Point, f.Time, m, raw),
				Actual: last.Time.Sub(f.Time).Seconds(), Fold: k, Moving: m.Known})
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

// trackObservations are the speed observations of each trip's
// consecutive fixes (SpeedModel.Observe with the default config; nil for a
// trip of fewer than three fixes, learned along its line instead),
// computed once for the final speeds and the five folds' (locating each
// pair's cell is most of the cost).
func trackObservations(train []Trip) [][]Observation {
	m := NewSpeedModel(SpeedConfig{})
	out := make([][]Observation, len(train))
	for i, t := range train {
		if len(t.Fixes) < 3 {
			continue
		}
		for j := 1; j < len(t.Fixes); j++ {
			if o, ok := m.Observe(t.Fixes[j-1], t.Fixes[j]); ok {
				out[i] = append(out[i], o)
			}
		}
	}
	return out
}

// learnSpeeds fits the detour factor, the cell speeds and, with a graph,
// the edge speeds on trips (in departure order; obs are their
// trackObservations, hops their matchTrails): the raw estimator, before
// any correction.
func learnSpeeds(train []Trip, obs [][]Observation, hops [][]bucketHop, g *road.Graph) *Learned {
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
	for i, t := range train {
		if len(t.Fixes) >= 3 {
			l.Model.Add(obs[i]...)
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
		if t := edgeSpeeds(g, hops); t != nil {
			l.Router.SetEdgeSpeeds(t)
		}
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
// route over the part of a→b the map covers (coveredSpan, as the model
// routes it), with the same end handling as the model (candidate roads
// near each end, same-spot rule), plus the straight line × the learned
// detour factor for any part off the map. So the baseline differs from
// the model only in its speeds.
func (l *Learned) routedLength(a, b geo.Point) (float64, error) {
	d := geo.Distance(a, b)
	if d < sameSpotM {
		return d, nil
	}
	detour := l.Estimator.Detour()
	x, y, full, ok := l.Router.coveredSpan(a, b)
	if !ok || (!full && geo.Distance(x, y) < sameSpotM) {
		return d * detour, nil
	}
	sa := l.Router.g.Near(x, nearSlackM, nearMax)
	sb := l.Router.g.Near(y, nearSlackM, nearMax)
	if sa == nil || sb == nil {
		return d * detour, nil
	}
	r, err := l.Router.g.RouteMulti(sa, sb, l.Router.lens, 1.0001, 1)
	if err != nil {
		return 0, err
	}
	return r.Meters + (geo.Distance(a, x)+geo.Distance(y, b))*detour, nil
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

// Prepare drops invalid trips (the validity rules) and counts them. Trips
// are kept whole: a trip leaving the map's area is estimated whole, the
// model routing the part the map covers (Estimator.partial).
func Prepare(trips []Trip) (kept []Trip, invalid int) {
	for _, t := range trips {
		if !valid(t) {
			invalid++
			continue
		}
		kept = append(kept, t)
	}
	return kept, invalid
}

// Eval splits trips, drops the invalid ones from each part, learns on the
// training part and reports errors on the test part. (The split hashes
// each trip's ID alone, so splitting before the validity rules gives the
// same parts as after, and the dropped trips are counted per part.)
func Eval(ctx context.Context, trips []Trip, opt EvalOptions) (*Report, error) {
	train, test := Split(trips, opt.Seed, opt.TestFraction)
	train, trainInvalid := Prepare(train)
	test, testInvalid := Prepare(test)
	rep, err := EvalSplit(ctx, train, test, opt)
	if err != nil {
		return nil, err
	}
	rep.TrainInvalid, rep.TestInvalid = trainInvalid, testInvalid
	return rep, nil
}

// scored are the queries of one kind (whole trips or remaining time) with
// each predictor's answer.
type scored struct {
	actual, model, line, routed []float64
	onMap                       []bool // both ends covered (with a graph)
	queries                     int
}

func (s *scored) compare(routedOK bool, keep func(i int) bool) *Comparison {
	var sub scored
	for i := range s.actual {
		if keep(i) {
			sub.actual = append(sub.actual, s.actual[i])
			sub.model = append(sub.model, s.model[i])
			sub.line = append(sub.line, s.line[i])
			if routedOK {
				sub.routed = append(sub.routed, s.routed[i])
			}
		}
	}
	if len(sub.actual) == 0 {
		return nil
	}
	c := &Comparison{Queries: len(sub.actual), Scored: len(sub.actual),
		Model: metrics(sub.actual, sub.model), StraightLine: metrics(sub.actual, sub.line)}
	if routedOK {
		m := metrics(sub.actual, sub.routed)
		c.RoutedConstant = &m
	}
	return c
}

// EvalSplit learns on train and reports on test (both already prepared).
// Every test trip is scored whole (from its first fix to its last) and,
// for a trip of more than two fixes, from each fix between to the last
// (remaining time); no query is dropped or cut.
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
	var whole, rem scored
	routedOK := l.Router != nil && l.RoutedSpeedMS > 0
	// past are the fixes up to the query point: the live system knows
	// them (the driver's last pings); nothing after it is used.
	add := func(s *scored, past []Fix, to Fix) error {
		s.queries++
		from := past[len(past)-1]
		actual := to.Time.Sub(from.Time).Seconds()
		est, err := l.Estimator.EstimateMoving(ctx, from.Point, to.Point, from.Time, MotionOf(past))
		if err != nil {
			return err
		}
		var routed float64
		if routedOK {
			m, err := l.routedLength(from.Point, to.Point)
			if err != nil {
				return err
			}
			routed = m / l.RoutedSpeedMS
		}
		s.actual = append(s.actual, actual)
		s.model = append(s.model, est.Seconds)
		s.line = append(s.line, geo.Distance(from.Point, to.Point)/l.LineSpeedMS)
		s.routed = append(s.routed, routed)
		s.onMap = append(s.onMap, l.Router != nil && l.Router.Covered(from.Point) && l.Router.Covered(to.Point))
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
	all := func(int) bool { return true }
	rep.WholeTrip = *whole.compare(routedOK, all)
	rep.WholeTrip.Queries = whole.queries
	rep.Remaining = rem.compare(routedOK, all)
	if rep.Remaining != nil {
		rep.Remaining.Queries = rem.queries
	}
	rep.Predictions = append(slices.Clone(whole.model), rem.model...)
	if l.Router != nil {
		for _, on := range []bool{true, false} {
			sub := Subset{Label: SubsetOffMap}
			if on {
				sub.Label = SubsetOnMap
			}
			sub.WholeTrip = whole.compare(routedOK, func(i int) bool { return whole.onMap[i] == on })
			sub.Remaining = rem.compare(routedOK, func(i int) bool { return rem.onMap[i] == on })
			rep.Subsets = append(rep.Subsets, sub)
		}
	}
	return rep, nil
}

// metrics are the errors of pred against actual (seconds; actual > 0):
// mean absolute error, mean absolute percentage error (a fraction), root
// mean squared log error (log(1+s); negative predictions count as 0) and
// the 90th percentile of the absolute error (linear interpolation).
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
	p("trips: %d train, %d test (split by trip); invalid trips dropped: %d train, %d test\n",
		r.TrainTrips, r.TestTrips, r.TrainInvalid, r.TestInvalid)
	p("test queries: %d whole trips", r.WholeTrip.Queries)
	if r.Remaining != nil {
		p(", %d remaining-time (every fix of a test trip but its ends, to its last)", r.Remaining.Queries)
	}
	p("; every trip whole, every query scored\n")
	p("baselines, speed = median per-trip speed of the training trips: straight line %.2f m/s", r.LineSpeedMS)
	if r.RoutedSpeedMS > 0 {
		p("; routed %.2f m/s (route on the map, line x detour off it)", r.RoutedSpeedMS)
	}
	p("\n")
	if r.Learned != nil {
		if rt := r.Learned.Router; rt != nil && rt.EdgeSpeeds() != nil {
			p("edge speeds (training trails map-matched, HMM): %d edges learned; elsewhere the cell's speed, then the city's\n", rt.EdgeSpeeds().Edges())
		}
		if c := r.Learned.Estimator.Correction(); c != nil {
			p("correction (log space, fitted on training trips only): %d trees of depth %d, cross-validated RMSLE %.3f; street grid %.0f°\n",
				c.Trees(), c.Depth(), c.CVRMSLE(), c.GridDegrees())
			s0, s1 := c.Shifts()
			p("  shifted towards relative error (out of fold): x%.2f before the trip, x%.2f under way\n", math.Exp(s0), math.Exp(s1))
		}
	}
	if r.Remaining != nil {
		p("remaining-time queries see the vehicle's fixes up to the query point, never after\n")
	}
	section := func(name string, c *Comparison) {
		if c == nil {
			return
		}
		p("\n%s: %d of %d queries scored\n", name, c.Scored, c.Queries)
		p("  %-28s %9s %8s %7s %9s\n", "", "MAE s", "MAPE", "RMSLE", "p90 s")
		row := func(n string, m Metrics) {
			p("  %-28s %9.1f %7.1f%% %7.3f %9.1f\n", n, m.MAE, m.MAPE*100, m.RMSLE, m.P90)
		}
		row("model", c.Model)
		row("straight line, median speed", c.StraightLine)
		if c.RoutedConstant != nil {
			row("routed, median speed", *c.RoutedConstant)
		}
	}
	section("whole trip, all test trips", &r.WholeTrip)
	section("remaining time, all queries", r.Remaining)
	for _, s := range r.Subsets {
		section("whole trip, subset: "+s.Label, s.WholeTrip)
		section("remaining time, subset: "+s.Label, s.Remaining)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// ErrorMetrics are the errors of pred against actual (seconds; actual > 0),
// as an evaluation reports them: for callers that score an estimator on
// queries of their own (eta/etalearn's validation slice).
func ErrorMetrics(actual, pred []float64) Metrics { return metrics(actual, pred) }

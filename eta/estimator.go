package eta

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
)

// DefaultDetour is the detour factor (driven ÷ straight-line distance)
// before any trip taught a better one; ~1.3 is typical of city grids.
const DefaultDetour = 1.3

// sameSpotM: closer points are the same spot as far as routing goes.
const sameSpotM = 30

// lineStepM is the spacing of the cells sampled along a straight line.
const lineStepM = 150

// Estimate is a predicted trip: duration, distance, and the path (the
// routed geometry, or just the two ends without a road graph).
type Estimate struct {
	Seconds float64     `json:"eta_s"`
	Meters  float64     `json:"distance_m"`
	Path    []geo.Point `json:"path,omitempty"`
}

// Estimator predicts travel times. With a router it runs A* over the road
// graph with learned speeds; where the map covers only part of the way it
// routes that part and estimates the rest by the line (partial); without a
// router, or with nothing covered, it uses haversine × the learned detour factor ÷ the speed along the
// straight line (the harmonic mean of the cells' learned speeds sampled
// every 150 m). A Correction, when set, maps that raw estimate to the
// final one (see Correction). Safe for concurrent use.
type Estimator struct {
	model  *SpeedModel
	router *Router // nil: no road graph

	mu     sync.RWMutex
	detour ewma
	corr   *Correction
}

// NewEstimator returns an estimator over model and, if not nil, router.
func NewEstimator(model *SpeedModel, router *Router) *Estimator {
	if model == nil {
		model = NewSpeedModel(SpeedConfig{})
	}
	return &Estimator{model: model, router: router}
}

// Model is the estimator's speed model.
func (e *Estimator) Model() *SpeedModel { return e.model }

// ObserveDetour learns the detour factor from a finished trip: its driven
// distance against the straight line between its ends. Implausible ratios
// (below 1 or above 3, or trips under 200 m) are ignored.
func (e *Estimator) ObserveDetour(straightM, drivenM float64) {
	if straightM < 200 || !(drivenM > 0) {
		return
	}
	r := drivenM / straightM
	if r < 1 || r > 3 {
		return
	}
	e.mu.Lock()
	e.detour.add(r, 1, 0.01)
	e.mu.Unlock()
}

// Detour is the learned detour factor (DefaultDetour before any trip).
func (e *Estimator) Detour() float64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.detour.N == 0 {
		return DefaultDetour
	}
	return e.detour.Pace
}

// SetCorrection installs a correction learned offline (nil removes it).
func (e *Estimator) SetCorrection(c *Correction) {
	e.mu.Lock()
	e.corr = c
	e.mu.Unlock()
}

// Correction is the installed correction (nil: none).
func (e *Estimator) Correction() *Correction {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.corr
}

// Estimate predicts a trip from one point to another leaving now.
func (e *Estimator) Estimate(ctx context.Context, from, to geo.Point) (Estimate, error) {
	return e.EstimateAt(ctx, from, to, time.Now())
}

// EstimateAt predicts a trip leaving at t. Errors: road.ErrUnreachable (with
// a graph), ctx errors; an off-graph point falls back to the line estimate.
func (e *Estimator) EstimateAt(ctx context.Context, from, to geo.Point, t time.Time) (Estimate, error) {
	return e.EstimateMoving(ctx, from, to, t, Motion{})
}

// EstimateMoving is EstimateAt for a vehicle already under way, whose
// recent fixes give its Motion (a live trip's ETA to dropoff).
func (e *Estimator) EstimateMoving(ctx context.Context, from, to geo.Point, t time.Time, m Motion) (Estimate, error) {
	est, err := e.raw(ctx, from, to, t)
	if err != nil {
		return est, err
	}
	if c := e.Correction(); c != nil {
		est.Seconds = c.Seconds(from, to, t, m, est)
	}
	return est, nil
}

// Motion is what a moving vehicle's latest fixes say about it: its speed
// over the last hop and over about the last minute. The zero value means
// unknown (a trip not yet started, a query about someone else's journey).
type Motion struct {
	Known         bool
	LastSpeedMS   float64 // between the last two fixes
	RecentSpeedMS float64 // path length ÷ time over the fixes of the last ~60 s
}

// recentWindow is how far back MotionOf looks for RecentSpeedMS.
const recentWindow = 60 * time.Second

// MotionOf is the Motion of a vehicle whose fixes so far are fixes (oldest
// first, the current one last). Fewer than two fixes: unknown.
func MotionOf(fixes []Fix) Motion {
	n := len(fixes)
	if n < 2 {
		return Motion{}
	}
	cur := fixes[n-1]
	dt := cur.Time.Sub(fixes[n-2].Time).Seconds()
	if dt <= 0 {
		return Motion{}
	}
	m := Motion{Known: true, LastSpeedMS: geo.Distance(fixes[n-2].Point, cur.Point) / dt}
	path, i := 0.0, n-1
	for i > 0 && cur.Time.Sub(fixes[i-1].Time) <= recentWindow {
		path += geo.Distance(fixes[i-1].Point, fixes[i].Point)
		i--
	}
	if i == n-1 { // the previous fix is older than the window
		m.RecentSpeedMS = m.LastSpeedMS
	} else {
		m.RecentSpeedMS = path / cur.Time.Sub(fixes[i].Time).Seconds()
	}
	return m
}

func (e *Estimator) raw(ctx context.Context, from, to geo.Point, t time.Time) (Estimate, error) {
	if err := ctx.Err(); err != nil {
		return Estimate{}, err
	}
	if e.router != nil {
		if d := geo.Distance(from, to); d < sameSpotM {
			// GPS noise around a stopped car: routing could send it around
			// the block to reach a point a few metres "behind" it.
			return Estimate{Seconds: d / accessMS, Meters: d, Path: []geo.Point{from, to}}, nil
		}
		return e.partial(ctx, from, to, t)
	}
	return e.Line(from, to, t), nil
}

// partial routes the part of from→to that the map covers (see
// coveredSpan) and adds line estimates for the parts before and after it:
// a trip leaving the map's area is estimated whole, never cut or refused.
// Nothing covered (or a covered part under sameSpotM): the line estimate.
func (e *Estimator) partial(ctx context.Context, from, to geo.Point, t time.Time) (Estimate, error) {
	a, b, full, ok := e.router.coveredSpan(from, to)
	if !ok || (!full && geo.Distance(a, b) < sameSpotM) {
		return e.Line(from, to, t), nil
	}
	r, err := e.router.Route(ctx, a, b, t)
	switch {
	case errors.Is(err, road.ErrOffGraph):
		return e.Line(from, to, t), nil
	case err != nil:
		return Estimate{}, err
	}
	est := Estimate{Seconds: r.Seconds, Meters: r.Meters, Path: r.Path}
	if full {
		return est, nil
	}
	path := []geo.Point{from}
	if a != from {
		l := e.Line(from, a, t)
		est.Seconds += l.Seconds
		est.Meters += l.Meters
	}
	path = append(path, r.Path...)
	if b != to {
		l := e.Line(b, to, t)
		est.Seconds += l.Seconds
		est.Meters += l.Meters
	}
	est.Path = append(path, to)
	return est, nil
}

// Line is the estimate without a road graph: haversine × detour ÷ the
// speed along the line.
func (e *Estimator) Line(from, to geo.Point, t time.Time) Estimate {
	d := geo.Distance(from, to)
	m := d * e.Detour()
	v := e.LineSpeed(from, to, t)
	return Estimate{Seconds: m / v, Meters: m, Path: []geo.Point{from, to}}
}

// LineSpeed is the harmonic mean of the cell speeds sampled every 150 m on
// the straight line from a to b, in the time-of-day bucket of t.
func (e *Estimator) LineSpeed(a, b geo.Point, t time.Time) float64 {
	bk := BucketOf(t)
	cells := lineCells(a, b)
	pace := 0.0
	for _, c := range cells {
		v, _ := e.model.Speed(c, bk)
		pace += 1 / v
	}
	return float64(len(cells)) / pace
}

// lineCells are the speed cells sampled along a→b (repeats kept, so each
// cell weighs by the length of line inside it).
func lineCells(a, b geo.Point) []geo.Cell {
	d := geo.Distance(a, b)
	n := int(d/lineStepM) + 1
	out := make([]geo.Cell, 0, n+1)
	for i := 0; i <= n; i++ {
		f := float64(i) / float64(n)
		p := geo.Point{Lat: a.Lat + (b.Lat-a.Lat)*f, Lng: a.Lng + (b.Lng-a.Lng)*f}
		if c := geo.CellOf(p, SpeedRes); c != 0 {
			out = append(out, c)
		}
	}
	return out
}

// ShouldEmit reports whether a new ETA (seconds) differs enough from the
// last one sent to be worth a trip.eta event: by at least 15 s or at least
// 10% of the previous value. A first ETA (prev ≤ 0) is always sent.
func ShouldEmit(prev, next float64) bool {
	if prev <= 0 {
		return true
	}
	d := math.Abs(next - prev)
	return d >= 15 || d >= 0.10*prev
}

package live

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/conflate"
	"github.com/hextrack/hextrack/trip"
)

// RouteEstimator predicts a drive between two points: seconds and meters
// (cmd adapts Estimator to it, routed over the road graph).
type RouteEstimator interface {
	Estimate(ctx context.Context, from, to geo.Point) (seconds, meters float64, err error)
}

// LegObserver records a finished leg's actual duration against the first
// ETA promised for it (Accuracy).
type LegObserver interface {
	Observe(leg string, promised, actual time.Duration)
}

// TripETAs stores live ETAs in trips (tripredis.ETAs): the shared per-trip
// gate with the estimate's input, the estimate with its trip.eta event,
// and the legs' promises.
type TripETAs interface {
	OpenGate(ctx context.Context, id string, now time.Time, every time.Duration, fixMS int64, force bool) (trip.ETAGate, error)
	Store(ctx context.Context, id string, w trip.ETAWrite) (stored, emitted bool, err error)
	Promises(ctx context.Context, id string) (trip.ETAPromises, error)
}

// Config configures a Service. Zero values are documented per field.
type Config struct {
	// Every is the least time between two estimates of one trip, across
	// all nodes. Zero: 5s.
	Every time.Duration
	// ShouldEmit says whether a new ETA (seconds) differs enough from the
	// last emitted one to be a trip.eta event (cmd passes eta.ShouldEmit).
	// A first ETA of a leg is always emitted. Zero: any change.
	ShouldEmit func(prev, next float64) bool
	// StopLegs estimates the legs between a trip's open stops for
	// trip.eta's "stops" (cmd passes the Service's own RouteEstimator, so
	// both come from one estimator). Zero: trip.eta carries no "stops".
	StopLegs RouteEstimator
	// Model names the ETA model the RouteEstimator serves, sent in each
	// trip.eta as "model". Zero: none named.
	Model *trip.ETAModel
	// ModelOf, when set, names the model instead of Model, asked at each
	// estimate: a server whose model is replaced while it runs (a model
	// trained from the archive installed) names the new one from then on.
	ModelOf func() *trip.ETAModel
	// Accuracy receives each finished leg on completion. Zero: none.
	Accuracy LegObserver
	// Queue bounds the trips waiting for an estimate; moves of further
	// trips are dropped (Metrics.Dropped). Zero: 10000.
	Queue int
	// Workers compute estimates. Zero: 2.
	Workers int
	// Timeout bounds one estimate. Zero: 2s.
	Timeout time.Duration
	// Metrics receives figures; a nil func is skipped.
	Metrics Metrics
	// Now returns the current time (the trips' clock). Zero: time.Now.
	Now func() time.Time
	// Logger. Zero: slog.Default().
	Logger *slog.Logger
}

// Metrics are the Service's metric hooks.
type Metrics struct {
	// Dropped: a move was dropped because the queue was full.
	Dropped func()
	// Throttled: a move came within Every of the trip's last estimate.
	Throttled func()
	// Computed: an estimate took d and was stored (emitted: and sent as
	// trip.eta).
	Computed func(d time.Duration, emitted bool)
}

func (c Config) withDefaults() Config {
	if c.Every <= 0 {
		c.Every = 5 * time.Second
	}
	if c.ShouldEmit == nil {
		c.ShouldEmit = func(prev, next float64) bool { return prev != next }
	}
	if c.Queue <= 0 {
		c.Queue = 10000
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Service keeps trips' ETAs current as their drivers move: to the pickup
// while driver_assigned or driver_arrived, to the dropoff while
// in_progress. It implements driver.Listener: DriverMoved only queues the move (latest wins per trip,
// bounded, never blocking the ingest path); workers estimate at most once
// per Config.Every per trip across all nodes (a gate in the trip hash; a
// move that finds the gate closed is retried when it opens unless an
// estimate from a newer fix was made meanwhile, so the newest position is
// not lost), store the estimate in the trip hash (the snapshot's "eta") and
// append trip.eta when the leg or its target changed or ShouldEmit says so. Leg changes (pickup) and dropoff
// changes are estimated at once, ignoring the gate. On completion the first
// ETA promised for each leg is compared with the actual duration
// (Config.Accuracy). It is a trip.Observer (install it with
// tripredis.Service.Observe) to hear of transitions. Run must be running.
type Service struct {
	trips  TripETAs
	router RouteEstimator
	cfg    Config

	// q holds the trips with work, latest wins (moves bounded by
	// Config.Queue; held moves wait there for their gate to open).
	q *conflate.Queue[etaJob]

	// tracks are the trips' drivers' recent fixes (MovingEstimator).
	tracks *tracks

	mu    sync.Mutex
	gates map[string]localGate // gates this node opened, while they are closed
	// sweepAt: the size of gates at which open gates are dropped.
	sweepAt int
}

// localGate is what this node knows of a trip's estimate gate without
// asking Redis: the gate was closed at `at` (the Service clock) — this node
// opened it for an estimate then, or gateScript found it closed since then.
// Until at+Every the shared gate stays closed to driver's moves (another
// node can only close it further; only a transition on the trip, which
// this node hears of through etaChanged when it made it, or another driver
// can reopen it sooner), so such a move is held here for when the gate
// opens, without the round trip of gateScript per move. Once the period is
// over the shared gate in Redis decides again.
type localGate struct {
	at     time.Time
	fix    int64 // ms of the newest fix estimated (or being estimated) then; 0: none
	driver string
}

var (
	_ driver.Listener = (*Service)(nil)
	_ trip.Observer   = (*Service)(nil)
)

// etaJob is a trip's pending work.
type etaJob struct {
	move   *driver.Move
	force  bool      // estimate now, ignoring the gate
	doneAt time.Time // completed at: observe accuracy
}

// New returns live ETAs stored through trips and routed by r.
func New(trips TripETAs, r RouteEstimator, cfg Config) *Service {
	cfg = cfg.withDefaults()
	qc := conflate.Config[etaJob]{Merge: mergeETA, Limit: cfg.Queue}
	if cfg.Metrics.Dropped != nil {
		qc.Dropped = func(string) { cfg.Metrics.Dropped() }
	}
	return &Service{trips: trips, router: r, cfg: cfg, q: conflate.New(qc), tracks: newTracks(), gates: map[string]localGate{}, sweepAt: 1024}
}

// mergeETA is the queue's latest-wins rule: the newest move (by ping time)
// stays; a forced estimate and a completion stay asked for.
func mergeETA(dst *etaJob, src etaJob) {
	if m := src.move; m != nil && (dst.move == nil || !m.TS.Before(dst.move.TS)) {
		dst.move = m
	}
	dst.force = dst.force || src.force
	if !src.doneAt.IsZero() {
		dst.doneAt = src.doneAt
	}
}

// Config returns the effective configuration.
func (l *Service) Config() Config { return l.cfg }

// DriverMoved queues a move of a driver on a trip. It never blocks. A move
// within Every of an estimate this node made for the same driver is held
// for the gate's opening right here (see localGate).
func (l *Service) DriverMoved(_ context.Context, m driver.Move) {
	if m.TripID == "" || !trip.ValidID(m.TripID) {
		return
	}
	if _, ok := l.router.(MovingEstimator); ok {
		l.tracks.add(&m, l.cfg.Now())
	}
	if l.holdLocally(&m) {
		return
	}
	l.q.Put(m.TripID, etaJob{move: &m}, true)
}

// Run estimates queued trips until ctx is done.
func (l *Service) Run(ctx context.Context) error {
	l.q.Run(ctx, l.cfg.Workers, 1, func(ctx context.Context, items []conflate.Item[etaJob]) {
		for _, it := range items {
			if err := l.process(ctx, it.Key, it.Job); err != nil && ctx.Err() == nil {
				l.cfg.Logger.Warn("eta: trip eta", "trip", it.Key, "err", err)
			}
		}
	})
	return nil
}

// holdLocally holds m when the trip's gate is known closed to it (see
// localGate): it reports whether m was dealt with (held, or dropped as not
// newer than the fix already estimated).
func (l *Service) holdLocally(m *driver.Move) bool {
	now := l.cfg.Now()
	l.mu.Lock()
	g, ok := l.gates[m.TripID]
	if !ok {
		l.mu.Unlock()
		return false
	}
	wait := l.cfg.Every - now.Sub(g.at)
	if g.driver != m.DriverID || wait <= 0 || wait > l.cfg.Every {
		delete(l.gates, m.TripID) // open again (or the clock went back): Redis decides
		l.mu.Unlock()
		return false
	}
	l.mu.Unlock()
	if l.cfg.Metrics.Throttled != nil {
		l.cfg.Metrics.Throttled()
	}
	if m.TS.UnixMilli() > g.fix {
		l.hold(m.TripID, m, wait)
	}
	return true
}

// opened records that this node opened trip's gate at `at` (see localGate).
func (l *Service) opened(trip, driver string, at time.Time, fix int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gates[trip] = localGate{at: at, fix: fix, driver: driver}
	if len(l.gates) >= l.sweepAt {
		// Trips that ended elsewhere leave their gates behind: drop the
		// open ones now and then (amortized over the map's doubling).
		now := l.cfg.Now()
		for k, g := range l.gates {
			if now.Sub(g.at) >= l.cfg.Every {
				delete(l.gates, k)
			}
		}
		l.sweepAt = max(1024, 2*len(l.gates))
	}
}

// forget drops what this node knows of trip's gate: a transition may have
// reset it.
func (l *Service) forget(trip string) {
	l.mu.Lock()
	delete(l.gates, trip)
	l.mu.Unlock()
}

// hold keeps a move that found the gate closed and retries it once after
// wait (one timer per trip; a newer held move replaces an older one).
func (l *Service) hold(trip string, m *driver.Move, wait time.Duration) {
	l.q.After(trip, wait, etaJob{move: m})
}

func (l *Service) process(ctx context.Context, trip string, j etaJob) error {
	if j.move != nil || j.force {
		if err := l.estimate(ctx, trip, j.move, j.force); err != nil {
			return err
		}
	}
	if !j.doneAt.IsZero() {
		return l.observe(ctx, trip, j.doneAt)
	}
	return nil
}

// estimate computes and stores the trip's ETA from the newest of m and the
// trip's stored fix (forced: ignoring the gate). A move that finds the gate
// closed is held for when it opens, unless the latest estimate (on any
// node) started from a fix at least as new.
func (l *Service) estimate(ctx context.Context, id string, m *driver.Move, force bool) error {
	var fixArg int64
	if m != nil {
		fixArg = m.TS.UnixMilli()
	}
	gateAt := l.cfg.Now()
	g, err := l.trips.OpenGate(ctx, id, gateAt, l.cfg.Every, fixArg, force)
	if err != nil || g.Gone {
		return err
	}
	if !g.Open {
		if l.cfg.Metrics.Throttled != nil {
			l.cfg.Metrics.Throttled()
		}
		if m != nil {
			// Closed by another node (or an earlier estimate here): until
			// it opens, this driver's moves are held here without asking.
			if w := g.Wait; w > 0 && w <= l.cfg.Every {
				l.opened(id, m.DriverID, gateAt.Add(w-l.cfg.Every), g.Newest)
			}
			if m.TS.UnixMilli() > g.Newest {
				l.hold(id, m, max(g.Wait, time.Millisecond))
			}
		}
		return nil
	}
	in := g.Input
	if in.Driver != "" {
		l.opened(id, in.Driver, gateAt, fixArg)
	}
	if in.Leg == "" || in.Driver == "" || (m != nil && m.DriverID != in.Driver) {
		return nil
	}
	if !force && m != nil && m.TS.UnixMilli() < in.FixAt {
		return nil // another node estimated from a newer fix meanwhile
	}
	from, ok := geo.Point{}, false
	var fromTS time.Time
	if m != nil {
		from, fromTS, ok = m.Pos, m.TS, true
	}
	if fix := in.Fix; fix != nil && (!ok || fix.TS.After(fromTS)) {
		from, fromTS, ok = geo.Point{Lat: fix.Lat, Lng: fix.Lng}, fix.TS, true
	}
	if !ok && in.Leg == trip.LegDropoff {
		from, ok = geo.Point{Lat: in.Pickup.Lat, Lng: in.Pickup.Lng}, true // just picked up, no fix yet
	}
	if !ok {
		return nil
	}
	var fixAt int64
	if !fromTS.IsZero() {
		fixAt = fromTS.UnixMilli()
	}
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	to := geo.Point{Lat: in.To.Lat, Lng: in.To.Lng}
	var secs, meters float64
	if me, ok := l.router.(MovingEstimator); ok && !fromTS.IsZero() {
		if fixes := l.tracks.upTo(id, in.Driver, from, fromTS); fixes != nil {
			secs, meters, err = me.EstimateMoving(rctx, fixes, to)
		} else {
			secs, meters, err = l.router.Estimate(rctx, from, to)
		}
	} else {
		secs, meters, err = l.router.Estimate(rctx, from, to)
	}
	cancel()
	if err != nil {
		return fmt.Errorf("estimate: %w", err)
	}
	if math.IsNaN(secs) || math.IsInf(secs, 0) || math.IsNaN(meters) || math.IsInf(meters, 0) {
		return fmt.Errorf("estimate: not a number (%v s, %v m)", secs, meters)
	}
	secs, meters = math.Round(max(secs, 0)), math.Round(max(meters, 0))
	now := l.cfg.Now()
	model := l.cfg.Model
	if l.cfg.ModelOf != nil {
		model = l.cfg.ModelOf()
	}
	prev := in.EmittedSeconds
	emit := in.EmittedTarget != in.Leg+":"+in.Target || (secs != prev && l.cfg.ShouldEmit(prev, secs))
	stored, emitted, err := l.trips.Store(ctx, id, trip.ETAWrite{In: in, Seconds: secs, Meters: meters, Now: now,
		Arrive: now.Add(time.Duration(secs) * time.Second), Emit: emit, FixAt: fixAt, Model: model,
		Stops: l.stopETAs(ctx, in.Open, from, to, secs)})
	if err != nil {
		return err
	}
	if stored && l.cfg.Metrics.Computed != nil {
		l.cfg.Metrics.Computed(time.Since(start), emitted)
	}
	return nil
}

// stopETAs are the cumulative ETAs of the open stops in order, from the
// driver at from through each stop, by Config.StopLegs (a first stop at
// the estimate's target reuses its secs); nil when one leg cannot be
// estimated.
func (l *Service) stopETAs(ctx context.Context, open []trip.Stop, from, to geo.Point, secs float64) []trip.StopETA {
	if len(open) == 0 || l.cfg.StopLegs == nil {
		return nil
	}
	out := make([]trip.StopETA, 0, len(open))
	at, total := from, 0.0
	for i, st := range open {
		p := geo.Point{Lat: st.Location.Lat, Lng: st.Location.Lng}
		leg := secs
		if i > 0 || p != to {
			rctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
			s, _, err := l.cfg.StopLegs.Estimate(rctx, at, p)
			cancel()
			if err != nil || math.IsNaN(s) || math.IsInf(s, 0) {
				return nil
			}
			leg = s
		}
		total += max(leg, 0)
		out = append(out, trip.StopETA{StopID: st.ID, Seconds: math.Round(total)})
		at = p
	}
	return out
}

// observe records the accuracy of a completed trip's legs: the first ETA
// promised for the pickup (while driver_assigned) against the time to
// driver_arrived, and the first promised for the dropoff against the time
// to completion.
func (l *Service) observe(ctx context.Context, id string, doneAt time.Time) error {
	if l.cfg.Accuracy == nil {
		return nil
	}
	p, err := l.trips.Promises(ctx, id)
	if err != nil {
		return err
	}
	leg := func(name string, promised, fromMS, toMS float64) {
		if fromMS > 0 && toMS >= fromMS {
			l.cfg.Accuracy.Observe(name, time.Duration(promised*float64(time.Second)),
				time.Duration(toMS-fromMS)*time.Millisecond)
		}
	}
	leg(trip.LegPickup, p.Pickup, p.PickupAt, p.ArrivedAt)
	leg(trip.LegDropoff, p.Dropoff, p.DropoffAt, float64(doneAt.UnixMilli()))
	return nil
}

// TripChanged implements trip.Observer; it is told about every committed
// change: a pickup or a dropoff change is estimated at once; a completion
// is observed.
func (l *Service) TripChanged(_ context.Context, c trip.Change) {
	l.forget(c.Trip.ID)
	switch c.To {
	case trip.StatusCompleted, trip.StatusCancelled, trip.StatusExpired, trip.StatusRequested:
		l.tracks.drop(c.Trip.ID) // over, or back to finding a driver
	}
	switch {
	case c.To == trip.StatusCompleted:
		l.q.Put(c.Trip.ID, etaJob{doneAt: c.At}, false)
	case c.To == trip.StatusInProgress: // picked up, or the dropoff changed on the way
		l.q.Put(c.Trip.ID, etaJob{force: true}, false)
	}
}

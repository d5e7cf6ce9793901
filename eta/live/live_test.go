package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/eta/live"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// lineRouter drives the straight line at speed m/s, or answers fixed
// seconds per destination; it logs every call.
type lineRouter struct {
	speed float64
	fixed map[geo.Point]float64

	mu    sync.Mutex
	calls []routeCall
}

type routeCall struct {
	at       time.Time
	from, to geo.Point
	secs     float64
}

func (r *lineRouter) Estimate(_ context.Context, from, to geo.Point) (float64, float64, error) {
	d := geo.Distance(from, to)
	s := d / r.speed
	r.mu.Lock()
	if f, ok := r.fixed[to]; ok {
		s = f
	}
	r.calls = append(r.calls, routeCall{time.Now(), from, to, s})
	r.mu.Unlock()
	return s, d, nil
}

func (r *lineRouter) log() []routeCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]routeCall(nil), r.calls...)
}

// waitCalls waits until the router was called n times in all.
func (r *lineRouter) waitCalls(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for len(r.log()) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("router called %d times, want %d", len(r.log()), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// newLive returns live ETAs of svc's trips, on svc's clock, told about
// svc's transitions.
func newLive(svc *tripredis.Service, r live.RouteEstimator, cfg live.Config) *live.Service {
	if cfg.Now == nil {
		cfg.Now = svc.Config().Now
	}
	l := live.New(svc.ETAs(), r, cfg)
	svc.Observe(l)
	return l
}

var pickup = geo.Point{Lat: triptest.Ride.Pickup.Lat, Lng: triptest.Ride.Pickup.Lng}

func runETA(tb testing.TB, l *live.Service) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
}

type etaEvent struct {
	RouteVersion int64          `json:"route_version"`
	TripID       string         `json:"trip_id"`
	Leg          string         `json:"leg"`
	Seconds      float64        `json:"eta_s"`
	ArriveAt     time.Time      `json:"arrive_at"`
	DistanceM    float64        `json:"distance_m"`
	Model        *trip.ETAModel `json:"model"`
}

func etaEvents(tb testing.TB, e *triptest.Env, tr string) []etaEvent {
	tb.Helper()
	evs, _, err := e.Feed.Read(context.Background(), trip.Topic(tr), "0-0", 10000)
	if err != nil {
		tb.Fatal(err)
	}
	var out []etaEvent
	for _, ev := range evs {
		if ev.Type != trip.EventETA {
			continue
		}
		var x etaEvent
		if err := json.Unmarshal(ev.Data, &x); err != nil {
			tb.Fatalf("trip.eta data %s: %v", ev.Data, err)
		}
		out = append(out, x)
	}
	return out
}

func snapshotETA(tb testing.TB, e *triptest.Env, tr string) *trip.ETA {
	tb.Helper()
	snap, err := e.Trips.Store().Snapshot(context.Background(), tr, trip.Actor{Role: trip.RoleOps, ID: "ops"})
	if err != nil {
		tb.Fatal(err)
	}
	var x *trip.ETA
	if err := json.Unmarshal(snap.ETA, &x); err != nil {
		tb.Fatalf("snapshot eta %s: %v", snap.ETA, err)
	}
	return x
}

// TestETAEmission drives a driver towards the pickup in irregular steps:
// every estimate is stored, but trip.eta goes out only when it moved ≥ 15 s
// or ≥ 10% from the last one sent (replayed with eta.ShouldEmit over the
// router's answers); picking up switches to the dropoff leg at once, with
// an event although no move came; the snapshot carries the latest estimate.
func TestETAEmission(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	r := &lineRouter{speed: 10}
	l := newLive(e.Trips, r, live.Config{Every: time.Millisecond, ShouldEmit: eta.ShouldEmit})
	runETA(t, l)
	ctx := context.Background()
	tr, _, drv := e.TripIn(t, trip.StatusAssigned)
	if x := snapshotETA(t, e, tr.ID); x != nil {
		t.Fatalf("ETA before any move: %+v", x)
	}
	// 6 km out, closing in by 40-130 m a step (4-13 s at 10 m/s).
	dist := 6000.0
	ts := time.Now().Add(-time.Hour)
	var last geo.Point
	for i := 0; dist > 0; i++ {
		last = geo.Offset(pickup, 200, dist)
		ts = ts.Add(time.Second)
		m := driver.Move{DriverID: drv, TripID: tr.ID, Pos: last, TS: ts}
		l.DriverMoved(ctx, m)
		r.waitCalls(t, i+1)
		time.Sleep(2 * time.Millisecond) // let the 1 ms gate open
		dist -= 40 + float64((i*37)%91)
	}
	calls := r.log()
	var want []float64
	prev := 0.0
	for _, c := range calls {
		s := math.Round(c.secs)
		if len(want) == 0 || (s != prev && eta.ShouldEmit(prev, s)) {
			want = append(want, s)
			prev = s
		}
	}
	got := etaEvents(t, e, tr.ID)
	if len(got) != len(want) {
		secs := make([]float64, len(got))
		for i, ev := range got {
			secs[i] = ev.Seconds
		}
		t.Fatalf("%d trip.eta for %d estimates, want %d: sent %v, want %v", len(got), len(calls), len(want), secs, want)
	}
	for i, ev := range got {
		if ev.Seconds != want[i] || ev.Leg != trip.LegPickup || ev.TripID != tr.ID {
			t.Fatalf("event %d: %+v, want %v s to the pickup", i, ev, want[i])
		}
		if i > 0 && (ev.RouteVersion <= got[i-1].RouteVersion || !eta.ShouldEmit(got[i-1].Seconds, ev.Seconds)) {
			t.Fatalf("event %d (%+v) after %+v", i, ev, got[i-1])
		}
		if ev.DistanceM <= 0 || ev.ArriveAt.IsZero() {
			t.Fatalf("event %d lacks distance or arrive_at: %+v", i, ev)
		}
		if ev.Model != nil {
			t.Fatalf("event %d names a model (%+v) though none was configured", i, ev.Model)
		}
	}
	if len(got) >= len(calls) || len(got) < 5 {
		t.Fatalf("%d events for %d estimates: thresholds not exercised", len(got), len(calls))
	}
	t.Logf("%d estimates → %d trip.eta events", len(calls), len(got))
	x := snapshotETA(t, e, tr.ID)
	lastSecs := math.Round(calls[len(calls)-1].secs)
	if x == nil || x.Leg != trip.LegPickup || x.Seconds != lastSecs || x.RouteVersion != int64(len(calls)) {
		t.Fatalf("snapshot eta %+v, want the latest estimate %v s (route version %d)", x, lastSecs, len(calls))
	}
	if d := x.ArriveAt.Sub(x.ComputedAt); d != time.Duration(lastSecs)*time.Second {
		t.Fatalf("arrive_at - computed_at = %v, want %v s", d, lastSecs)
	}

	// Pickup: the dropoff leg is estimated at once and always sent.
	da := trip.Actor{Role: trip.RoleDriver, ID: drv}
	if _, err := e.Trips.Act(ctx, tr.ID, da, trip.ActArrived, ""); err != nil {
		t.Fatal(err)
	}
	if x := snapshotETA(t, e, tr.ID); x == nil || x.Leg != trip.LegPickup {
		t.Fatalf("driver_arrived: snapshot eta %+v, want the pickup leg", x)
	}
	if _, err := e.Trips.Act(ctx, tr.ID, da, trip.ActPickup, ""); err != nil {
		t.Fatal(err)
	}
	r.waitCalls(t, len(calls)+1)
	deadline := time.Now().Add(2 * time.Second)
	for len(etaEvents(t, e, tr.ID)) == len(got) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	after := etaEvents(t, e, tr.ID)
	if len(after) != len(got)+1 {
		t.Fatalf("no trip.eta on the leg change (%d events)", len(after))
	}
	drop := geo.Point{Lat: triptest.Ride.Dropoff.Lat, Lng: triptest.Ride.Dropoff.Lng}
	ev := after[len(after)-1]
	wantS := math.Round(geo.Distance(pickup, drop) / 10) // no fix stored: from the pickup
	if ev.Leg != trip.LegDropoff || math.Abs(ev.Seconds-wantS) > 1 {
		t.Fatalf("leg change event %+v, want the dropoff leg, ~%v s", ev, wantS)
	}
	// On the dropoff leg a small change is stored, not sent; the ETag shows it.
	ops := trip.Actor{Role: trip.RoleOps, ID: "ops"}
	before, err := e.Trips.Store().Snapshot(ctx, tr.ID, ops)
	if err != nil {
		t.Fatal(err)
	}
	p := geo.Offset(pickup, geo.Bearing(pickup, drop), 50)
	l.DriverMoved(ctx, driver.Move{DriverID: drv, TripID: tr.ID, Pos: p, TS: ts.Add(time.Second)})
	r.waitCalls(t, len(calls)+2)
	time.Sleep(20 * time.Millisecond)
	if n := len(etaEvents(t, e, tr.ID)); n != len(after) {
		t.Fatalf("a 5 s change was sent (%d events)", n)
	}
	x = snapshotETA(t, e, tr.ID)
	if x == nil || x.Leg != trip.LegDropoff || x.Seconds >= ev.Seconds || x.RouteVersion != int64(len(calls)+2) {
		t.Fatalf("snapshot after a dropoff-leg move: %+v (last event %+v)", x, ev)
	}
	if now, _ := e.Trips.Store().Snapshot(ctx, tr.ID, ops); now.ETag() == before.ETag() || now.Version != before.Version {
		t.Fatalf("ETag %s unchanged by a new ETA (version %d → %d)", now.ETag(), before.Version, now.Version)
	}
	// A stranger's move changes nothing.
	l.DriverMoved(ctx, driver.Move{DriverID: e.ID("d"), TripID: tr.ID, Pos: drop, TS: ts.Add(2 * time.Second)})
	time.Sleep(30 * time.Millisecond)
	if n := len(r.log()); n != len(calls)+2 {
		t.Fatalf("a stranger's move was estimated (%d calls)", n)
	}
}

// gateRecord records the clock reading of every opening of an estimate gate
// (OpenGate's now): the gate's own view of time, unlike the router's call
// times, which lag the opening by however long the worker was delayed.
type gateRecord struct {
	mu     sync.Mutex
	opened []time.Time
}

func (g *gateRecord) log() []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]time.Time(nil), g.opened...)
}

// recordedETAs is a node's trip ETAs that tells rec of the gates it opens.
type recordedETAs struct {
	live.TripETAs
	rec *gateRecord
}

func (r recordedETAs) OpenGate(ctx context.Context, id string, now time.Time, every time.Duration, fixMS int64, force bool) (trip.ETAGate, error) {
	g, err := r.TripETAs.OpenGate(ctx, id, now, every, fixMS, force)
	if err == nil && g.Open {
		r.rec.mu.Lock()
		r.rec.opened = append(r.rec.opened, now)
		r.rec.mu.Unlock()
	}
	return g, err
}

// TestETAThrottleAcrossNodes: two nodes (Services and LiveETAs on one
// Redis) get a driver's moves every 5 ms for 1.5 s (longer if fewer than
// three estimates were made by then): the trip's gate opens at most once
// per Every between them, the router is called only for an opened gate,
// and the last move is estimated (a move that finds the gate closed is
// held until it opens).
func TestETAThrottleAcrossNodes(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	b2 := feedredis.New(e.RDB, feedredis.Config{MaxAge: 10 * time.Minute, Prefix: e.Prefix})
	t.Cleanup(func() { _ = b2.Close() })
	other := tripredis.NewService(e.RDB, b2, e.Drivers, tripredis.Config{Prefix: e.Prefix})
	r := &lineRouter{speed: 10}
	rec := &gateRecord{}
	const every = 300 * time.Millisecond
	var nodes []*live.Service
	for _, svc := range []*tripredis.Service{e.Trips, other} {
		l := live.New(recordedETAs{svc.ETAs(), rec}, r, live.Config{Every: every, ShouldEmit: eta.ShouldEmit, Now: svc.Config().Now})
		svc.Observe(l)
		runETA(t, l)
		nodes = append(nodes, l)
	}
	tr, _, drv := e.TripIn(t, trip.StatusAssigned)
	ctx := context.Background()
	const patience = 20 * time.Second
	start := time.Now()
	ts := start.Add(-time.Minute)
	var lastPos geo.Point
	for i := 0; time.Since(start) < 1500*time.Millisecond || len(r.log()) < 3; i++ {
		if time.Since(start) > patience {
			t.Fatalf("%d estimates after %v of moves, want 3", len(r.log()), patience)
		}
		ts = ts.Add(100 * time.Millisecond)
		lastPos = geo.Offset(pickup, 90, 5000-float64(i%4000))
		nodes[i%2].DriverMoved(ctx, driver.Move{DriverID: drv, TripID: tr.ID, Pos: lastPos, TS: ts})
		time.Sleep(5 * time.Millisecond)
	}
	// The newest move is estimated once the gate opens: at worst the other
	// node takes the gate first with an older move and this one waits one
	// more period.
	deadline := time.Now().Add(patience)
	for {
		calls := r.log()
		if len(calls) > 0 && geo.Distance(calls[len(calls)-1].from, lastPos) < 0.01 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last move was never estimated (%d estimates in %v)", len(calls), patience)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	time.Sleep(every + 100*time.Millisecond) // nothing more comes
	calls := r.log()
	opened := rec.log()
	sort.Slice(opened, func(i, j int) bool { return opened[i].Before(opened[j]) })
	desc := func() string {
		var d []string
		for _, at := range opened {
			d = append(d, at.Sub(start).Round(time.Millisecond).String())
		}
		return fmt.Sprint(d)
	}
	// Each opening closes the gate for Every on the gate's clock (whole
	// ms): exactly, whatever the load, so at most elapsed/Every+1 openings.
	for i := 1; i < len(opened); i++ {
		if gap := opened[i].UnixMilli() - opened[i-1].UnixMilli(); gap < every.Milliseconds() {
			t.Fatalf("gate opened %d and %d only %d ms apart (Every %v): %v", i-1, i, gap, every, desc())
		}
	}
	if len(calls) > len(opened) || len(calls) < 3 {
		t.Fatalf("%d estimates for %d gate openings: %v", len(calls), len(opened), desc())
	}
	t.Logf("%d estimates, %d gate openings in %v across two nodes (Every %v)", len(calls), len(opened), elapsed, every)
}

// evalCounter counts the scripts a client runs.
type evalCounter struct{ n atomic.Int64 }

func (c *evalCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *evalCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *evalCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestETALocalGate: moves that come within Every of an estimate made on
// this node are held here, not sent to Redis one by one: a driver pinging
// ten times per period costs about one gate check and one store per
// period, and the newest move is still the one estimated.
//
// The driver pings in bursts of ten right after each estimate (not on a
// 25 ms sleep, which a loaded machine stretches past the period), so the
// moves are within the period by construction; each burst's newest move
// is awaited.
func TestETALocalGate(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	evals := &evalCounter{}
	e.RDB.AddHook(evals)
	r := &lineRouter{speed: 10}
	const every = 250 * time.Millisecond
	var throttled atomic.Int64
	l := newLive(e.Trips, r, live.Config{Every: every,
		Metrics: live.Metrics{Throttled: func() { throttled.Add(1) }}})
	runETA(t, l)
	tr, _, drv := e.TripIn(t, trip.StatusAssigned)
	ctx := context.Background()
	before := evals.n.Load()
	ts := time.Now().Add(-time.Minute)
	var last geo.Point
	const patience = 20 * time.Second
	moves := 0
	move := func() {
		ts = ts.Add(25 * time.Millisecond)
		last = geo.Offset(pickup, 90, 3000-float64(moves))
		moves++
		l.DriverMoved(ctx, driver.Move{DriverID: drv, TripID: tr.ID, Pos: last, TS: ts})
	}
	// estimated waits until the newest move was estimated.
	estimated := func() {
		t.Helper()
		deadline := time.Now().Add(patience)
		for {
			calls := r.log()
			if len(calls) > 0 && geo.Distance(calls[len(calls)-1].from, last) < 0.01 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("move %d was never estimated (%d estimates in %v)", moves, len(calls), patience)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	move()
	estimated()
	for _, burst := range []int{9, 10, 10, 10} {
		for range burst {
			move()
		}
		estimated()
	}
	time.Sleep(every + 50*time.Millisecond)
	estimates := int64(len(r.log()))
	n := evals.n.Load() - before
	// Each estimate: one gate check and one store; a few gate checks more
	// may find the gate closed (timers firing a little early).
	if n > 2*estimates+3 {
		t.Fatalf("%d scripts for %d moves and %d estimates: moves within the period went to Redis", n, moves, estimates)
	}
	if throttled.Load() < int64(moves)/2 {
		t.Fatalf("%d moves throttled of %d", throttled.Load(), moves)
	}
	t.Logf("%d moves, %d estimates, %d scripts, %d throttled", moves, estimates, n, throttled.Load())
}

// TestETAAccuracyOnCompletion: the first promise of each leg is compared
// with the actual time on completion (a fake clock: pickup promised 100 s,
// took 130 s; dropoff promised 200 s, took 180 s).
func TestETAAccuracyOnCompletion(t *testing.T) {
	var clock atomic.Int64
	base := time.Now().Add(-time.Hour)
	now := func() time.Time { return base.Add(time.Duration(clock.Load())) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	e := triptest.MustEnv(t, tripredis.Config{Now: now})
	drop := geo.Point{Lat: triptest.Ride.Dropoff.Lat, Lng: triptest.Ride.Dropoff.Lng}
	r := &lineRouter{speed: 10, fixed: map[geo.Point]float64{pickup: 100, drop: 200}}
	reg := prometheus.NewRegistry()
	l := newLive(e.Trips, r, live.Config{Every: time.Millisecond, ShouldEmit: eta.ShouldEmit,
		Accuracy: eta.NewAccuracy(reg)})
	runETA(t, l)
	ctx := context.Background()

	// A first driver hands the trip back: its promise is forgotten.
	tr, _, first := e.TripIn(t, trip.StatusAssigned)
	r.fixed[pickup] = 500
	l.DriverMoved(ctx, driver.Move{DriverID: first, TripID: tr.ID, Pos: geo.Offset(pickup, 0, 900), TS: now()})
	r.waitCalls(t, 1)
	time.Sleep(10 * time.Millisecond)
	if _, err := e.Trips.Act(ctx, tr.ID, trip.Actor{Role: trip.RoleDriver, ID: first}, trip.ActDecline, ""); err != nil {
		t.Fatal(err)
	}
	drv := e.Driver(t)
	if err := e.Trips.Assign(ctx, tr.ID, drv); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.fixed[pickup] = 100
	r.mu.Unlock()
	l.DriverMoved(ctx, driver.Move{DriverID: drv, TripID: tr.ID, Pos: geo.Offset(pickup, 0, 900), TS: now()})
	r.waitCalls(t, 2)
	time.Sleep(10 * time.Millisecond)
	advance(130 * time.Second)
	da := trip.Actor{Role: trip.RoleDriver, ID: drv}
	for _, act := range []string{trip.ActArrived, trip.ActPickup} {
		if _, err := e.Trips.Act(ctx, tr.ID, da, act, ""); err != nil {
			t.Fatal(err)
		}
	}
	r.waitCalls(t, 3) // the dropoff leg, promised at pickup
	time.Sleep(10 * time.Millisecond)
	advance(180 * time.Second)
	if _, err := e.Trips.Act(ctx, tr.ID, da, trip.ActComplete, ""); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float64{ // leg → {ratio, error s}
		trip.LegPickup:  {1.3, 30},
		trip.LegDropoff: {0.9, -20},
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := histSums(t, reg)
		ok := len(got) == 2*len(want)
		for leg, w := range want {
			r, e := got["hextrack_eta_actual_over_promised_ratio/"+leg], got["hextrack_eta_error_seconds/"+leg]
			ok = ok && r.n == 1 && e.n == 1 && math.Abs(r.sum-w[0]) < 1e-3 && math.Abs(e.sum-w[1]) < 0.01
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("accuracy histograms %+v, want one observation per leg %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type histSum struct {
	n   uint64
	sum float64
}

// histSums returns "<name>/<leg>" → count and sum of every histogram.
func histSums(tb testing.TB, reg *prometheus.Registry) map[string]histSum {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]histSum{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			leg := ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "leg" {
					leg = lp.GetValue()
				}
			}
			if h := m.GetHistogram(); h != nil {
				out[mf.GetName()+"/"+leg] = histSum{h.GetSampleCount(), h.GetSampleSum()}
			}
		}
	}
	return out
}

// TestETAQueueBound: with the queue full, moves of further trips are
// dropped and counted; moves of a queued trip are conflated.
func TestETAQueueBound(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	var dropped atomic.Int64
	l := newLive(e.Trips, &lineRouter{speed: 10}, live.Config{Queue: 2,
		Metrics: live.Metrics{Dropped: func() { dropped.Add(1) }}})
	// Not running: nothing leaves the queue.
	for i, tr := range []string{"a", "b", "a", "b", "c", "d", "a"} {
		l.DriverMoved(context.Background(), driver.Move{DriverID: "d1", TripID: tr, TS: time.Unix(int64(i), 0)})
	}
	if n := dropped.Load(); n != 2 {
		t.Fatalf("%d moves dropped, want 2 (trips c and d)", n)
	}
}

// estimatorRouter adapts the real ETA engine (as cmd/hextrack does).
type estimatorRouter struct{ est *eta.Estimator }

func (r estimatorRouter) Estimate(ctx context.Context, from, to geo.Point) (float64, float64, error) {
	e, err := r.est.Estimate(ctx, from, to)
	return e.Seconds, e.Meters, err
}

// BenchmarkLiveETA measures one live ETA end to end on the synthetic city
// (A* over the road graph, then the store/emit script on the real Redis):
// a move of one of 20 driving trips is queued and the benchmark waits for
// its estimate. compute-ms is the mean estimate+store time.
func BenchmarkLiveETA(b *testing.B) {
	e := triptest.MustEnv(b, tripredis.Config{})
	center := geo.Point{Lat: 41.1579, Lng: -8.6291}
	g := road.SyntheticCity(1, center)
	model := eta.NewSpeedModel(eta.SpeedConfig{})
	est := eta.NewEstimator(model, eta.NewRouter(g, model))
	var n, total atomic.Int64
	l := newLive(e.Trips, estimatorRouter{est}, live.Config{Every: time.Millisecond, ShouldEmit: eta.ShouldEmit,
		Metrics: live.Metrics{Computed: func(d time.Duration, _ bool) { n.Add(1); total.Add(int64(d)) }}})
	runETA(b, l)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	type live struct{ tr, drv string }
	var trips []live
	for range 20 {
		p, d := g.RandomPoint(rng), g.RandomPoint(rng)
		snap, _, err := e.Trips.Create(ctx, trip.Actor{Role: trip.RoleRider, ID: e.ID("r")}, "",
			trip.CreateRequest{Pickup: trip.Place{Lat: p.Lat, Lng: p.Lng}, Dropoff: trip.Place{Lat: d.Lat, Lng: d.Lng}})
		if err != nil {
			b.Fatal(err)
		}
		drv := e.Driver(b)
		if err := e.Trips.Assign(ctx, snap.Trip.ID, drv); err != nil {
			b.Fatal(err)
		}
		trips = append(trips, live{snap.Trip.ID, drv})
	}
	ts := time.Now().Add(-time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tr := trips[i%len(trips)]
		ts = ts.Add(time.Millisecond)
		want := n.Load() + 1
		l.DriverMoved(ctx, driver.Move{DriverID: tr.drv, TripID: tr.tr, Pos: g.RandomPoint(rng), TS: ts})
		for n.Load() < want {
			time.Sleep(20 * time.Microsecond)
		}
		if i%len(trips) == len(trips)-1 {
			time.Sleep(time.Millisecond) // every trip's 1 ms gate open again
		}
	}
	b.StopTimer()
	if c := n.Load(); c > 0 {
		b.ReportMetric(float64(total.Load())/float64(c)/1e6, "compute-ms")
	}
}

// BenchmarkETADriverMoved is the cost LiveETA adds to the ingest path.
func BenchmarkETADriverMoved(b *testing.B) {
	e := triptest.MustEnv(b, tripredis.Config{})
	l := newLive(e.Trips, &lineRouter{speed: 10}, live.Config{Queue: 1 << 20})
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("t_%d", i)
	}
	ctx := context.Background()
	ts := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		l.DriverMoved(ctx, driver.Move{DriverID: "d1", TripID: ids[i%len(ids)], TS: ts})
	}
}

// TestETAEventNamesModel: with Config.Model, each trip.eta names the model
// that made the estimate (its version and fingerprint).
func TestETAEventNamesModel(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	r := &lineRouter{speed: 10}
	model := &trip.ETAModel{Version: "20261207T040000Z-porto_trips", Fingerprint: "0123456789ab"}
	l := newLive(e.Trips, r, live.Config{Every: time.Millisecond, ShouldEmit: eta.ShouldEmit, Model: model})
	runETA(t, l)
	tr, _, drv := e.TripIn(t, trip.StatusAssigned)
	l.DriverMoved(context.Background(), driver.Move{DriverID: drv, TripID: tr.ID, Pos: geo.Offset(pickup, 90, 3000), TS: time.Now()})
	r.waitCalls(t, 1)
	deadline := time.Now().Add(3 * time.Second)
	var got []etaEvent
	for len(got) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		got = etaEvents(t, e, tr.ID)
	}
	if len(got) != 1 || got[0].Model == nil || *got[0].Model != *model {
		t.Fatalf("trip.eta events %+v, want one naming %+v", got, model)
	}
}

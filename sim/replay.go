package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/sim/metrics"
)

// Trace is a recorded trip: GPS fixes in time order.
type Trace struct {
	ID     string
	Points []geo.Point
	Times  []time.Time
}

// traceCar drives a recorded trace: it waits at the first fix until sent
// towards the last one, then replays the fixes in (simulated) real time,
// interpolating linearly between them.
type traceCar struct {
	tr      Trace
	t       float64 // seconds since the first fix
	started bool
	pos     geo.Point
	prev    geo.Point
	speed   float64
	heading float64
}

func newTraceCar(tr Trace) *traceCar { return &traceCar{tr: tr, pos: tr.Points[0], prev: tr.Points[0]} }

func (c *traceCar) Pos() geo.Point   { return c.pos }
func (c *traceCar) Speed() float64   { return c.speed }
func (c *traceCar) Heading() float64 { return c.heading }
func (c *traceCar) duration() float64 {
	return c.tr.Times[len(c.tr.Times)-1].Sub(c.tr.Times[0]).Seconds()
}

// Arrived: not yet started (parked at the pickup), or at the trace's end.
func (c *traceCar) Arrived() bool { return !c.started || c.t >= c.duration() }

// RouteTo starts the trace when dst is its end; any other destination (the
// pickup) is where the car already is.
func (c *traceCar) RouteTo(dst geo.Point) error {
	if geo.Distance(dst, c.tr.Points[len(c.tr.Points)-1]) < 1 && !c.started {
		c.started = true
	}
	return nil
}

func (c *traceCar) Step(dt float64) {
	if !c.started || dt <= 0 {
		c.speed = 0
		return
	}
	c.t = min(c.t+dt, c.duration())
	c.prev = c.pos
	c.pos = c.at(c.t)
	d := geo.Distance(c.prev, c.pos)
	c.speed = d / dt
	if d > 0.5 {
		c.heading = geo.Bearing(c.prev, c.pos)
	}
}

// at is the trace's position t seconds after its first fix.
func (c *traceCar) at(t float64) geo.Point {
	t0 := c.tr.Times[0]
	for i := 1; i < len(c.tr.Times); i++ {
		ti := c.tr.Times[i].Sub(t0).Seconds()
		if t <= ti {
			tp := c.tr.Times[i-1].Sub(t0).Seconds()
			f := 0.0
			if ti > tp {
				f = (t - tp) / (ti - tp)
			}
			a, b := c.tr.Points[i-1], c.tr.Points[i]
			return geo.Point{Lat: a.Lat + (b.Lat-a.Lat)*f, Lng: a.Lng + (b.Lng-a.Lng)*f}
		}
	}
	return c.tr.Points[len(c.tr.Points)-1]
}

// truthLog remembers the true position of recent fixes by seq.
type truthLog struct {
	mu  sync.Mutex
	pos map[int64]geo.Point
}

func (l *truthLog) put(seq int64, p geo.Point) {
	l.mu.Lock()
	if l.pos == nil {
		l.pos = map[int64]geo.Point{}
	}
	l.pos[seq] = p
	delete(l.pos, seq-600)
	l.mu.Unlock()
}

func (l *truthLog) get(seq int64) (geo.Point, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.pos[seq]
	return p, ok
}

// Replay plays traces as drivers on trips: for each, a driver parked at
// the first fix, a rider requesting a trip from the first fix to the last,
// and — once the driver has accepted (offered by the server's dispatch, or
// by the simulator's with DispatchSim) and picked up — the trace replayed
// as the driver's pings. At most cfg.Drivers traces run at once (0: all).
// While a trace plays, the server's position of its driver is compared
// with the trace (Stats.Track, metres). Returns when every trip ended, the
// simulated Duration passed, or ctx ended.
func (e *Engine) Replay(ctx context.Context, traces []Trace) metrics.Report {
	cfg := e.cfg
	runCtx, cancel := e.start(ctx, len(traces))
	defer cancel()
	progDone := e.progress(runCtx, "replay")
	par := cfg.Drivers
	if par <= 0 {
		par = len(traces)
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, tr := range traces {
		if len(tr.Points) < 2 {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-runCtx.Done():
		}
		if runCtx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int, tr Trace) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := e.replayOne(runCtx, i, tr); err != nil && runCtx.Err() == nil {
				e.Stats.Err(err)
			}
		}(i, tr)
	}
	wg.Wait()
	cancel()
	<-progDone
	rep := e.finishReport(ctx, "replay")
	rep.Drivers, rep.Riders = len(traces), len(traces)
	rep.Extra = map[string]any{"track_error_m": e.Stats.Track.Summary()}
	return rep
}

func (e *Engine) replayOne(ctx context.Context, i int, tr Trace) error {
	cfg := e.cfg
	tok := e.tokens()
	id := fmt.Sprintf("sim-%s-replay%d", e.runID, i)
	api, conn, err := e.link(ctx, i, id)
	if err != nil {
		return err
	}
	defer conn.Close()
	done := make(chan struct{})
	d := newDriver(e, i, id, api, conn, rand.New(rand.NewPCG(cfg.Seed, uint64(i))), newTraceCar(tr))
	d.truth = &truthLog{}
	d.work.once, d.work.doneTrip = true, done
	e.fleet.add(d)
	dctx, stopDriver := context.WithCancel(ctx)
	var dwg sync.WaitGroup
	defer func() { stopDriver(); dwg.Wait() }()
	dwg.Add(2)
	go func() { defer dwg.Done(); d.run(dctx) }()
	go func() { defer dwg.Done(); d.truth.watch(dctx, api, id, &e.Stats.Track) }()

	// Let the driver appear before the rider asks.
	if !sleepCtx(ctx, e.Clock.Wall(3*time.Second)+200*time.Millisecond) {
		return nil
	}
	rid := fmt.Sprintf("sim-%s-rr%d", e.runID, i)
	rt, err := tok.Mint(ctx, "rider", rid)
	if err != nil {
		return err
	}
	last := tr.Points[len(tr.Points)-1]
	// The rider has a generator of its own: the driver's runs on the
	// driver's goroutine.
	r := &simRider{id: rid, api: client.New(cfg.Server, rt, e.rest), beh: cfg.Rider, sim: e,
		rng: rand.New(rand.NewPCG(cfg.Seed, uint64(1<<40+i))),
		fixed: []client.Place{{Lat: tr.Points[0].Lat, Lng: tr.Points[0].Lng, Address: "replay start"},
			{Lat: last.Lat, Lng: last.Lng, Address: "replay end"}},
		created: func(id string) { d.work.want.Store(&id) }}
	r.trip(ctx)
	// The rider saw the trip end; stop the driver once it is idle again.
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
	return nil
}

// watch compares the server's position of driver id with the truth,
// every half second until ctx ends, into h (metres).
func (l *truthLog) watch(ctx context.Context, api *client.Client, id string, h *metrics.Histogram) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var lastSeq int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, err := api.GetDriver(ctx, id)
		if err != nil || s.Location == nil || s.LastSeq == lastSeq {
			continue
		}
		lastSeq = s.LastSeq
		if p, ok := l.get(s.LastSeq); ok {
			h.ObserveValue(geo.Distance(p, geo.Point{Lat: s.Location.Lat, Lng: s.Location.Lng}))
		}
	}
}

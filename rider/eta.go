package rider

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/geo"
)

// EventETA is the durable trip event carrying a new ETA (see LiveETA).
const EventETA = "trip.eta"

// ETA legs: to the pickup before it (driver_assigned, driver_arrived), to
// the dropoff after it (in_progress).
const (
	LegPickup  = "pickup"
	LegDropoff = "dropoff"
)

// Router predicts a drive between two points: seconds and meters (the eta
// engine; cmd adapts eta.Estimator to it).
type Router interface {
	Estimate(ctx context.Context, from, to geo.Point) (seconds, meters float64, err error)
}

// Accuracy records a finished leg's actual duration against the first ETA
// promised for it (eta.Accuracy).
type Accuracy interface {
	Observe(leg string, promised, actual time.Duration)
}

// ETA is a trip's latest estimate, as the snapshot's "eta" and (without
// ComputedAt) the data of trip.eta. Seconds is the estimate when it was
// computed; ArriveAt is ComputedAt + Seconds, the figure to count down to.
// RouteVersion increases with every estimate stored for the trip (emitted
// or not): a client keeps the ETA with the highest one.
type ETA struct {
	Leg          string    `json:"leg"`
	Seconds      float64   `json:"eta_s"`
	ArriveAt     time.Time `json:"arrive_at"`
	DistanceM    float64   `json:"distance_m"`
	RouteVersion int64     `json:"route_version"`
	ComputedAt   time.Time `json:"computed_at"`
}

// ETAConfig configures a LiveETA. Zero values are documented per field.
type ETAConfig struct {
	// Every is the least time between two estimates of one trip, across
	// all nodes. Zero: 5s.
	Every time.Duration
	// ShouldEmit says whether a new ETA (seconds) differs enough from the
	// last emitted one to be a trip.eta event (cmd passes eta.ShouldEmit).
	// A first ETA of a leg is always emitted. Zero: any change.
	ShouldEmit func(prev, next float64) bool
	// Accuracy receives each finished leg on completion. Zero: none.
	Accuracy Accuracy
	// Queue bounds the trips waiting for an estimate; moves of further
	// trips are dropped (Metrics.Dropped). Zero: 10000.
	Queue int
	// Workers compute estimates. Zero: 2.
	Workers int
	// Timeout bounds one estimate. Zero: 2s.
	Timeout time.Duration
	// Metrics receives figures; a nil func is skipped.
	Metrics ETAMetrics
}

// ETAMetrics are LiveETA's metric hooks.
type ETAMetrics struct {
	// Dropped: a move was dropped because the queue was full.
	Dropped func()
	// Throttled: a move came within Every of the trip's last estimate.
	Throttled func()
	// Computed: an estimate took d and was stored (emitted: and sent as
	// trip.eta).
	Computed func(d time.Duration, emitted bool)
}

func (c ETAConfig) withDefaults() ETAConfig {
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
	return c
}

// LiveETA keeps trips' ETAs current as their drivers move. It implements
// driver.Listener: DriverMoved only queues the move (latest wins per trip,
// bounded, never blocking the ingest path); workers estimate at most once
// per ETAConfig.Every per trip across all nodes (a gate in the trip hash; a
// move that finds the gate closed is retried when it opens unless an
// estimate from a newer fix was made meanwhile, so the newest position is
// not lost), store the estimate in the trip hash (the snapshot's "eta") and
// append trip.eta when the leg or its target changed or ShouldEmit says so. Leg changes (pickup) and dropoff
// changes are estimated at once, ignoring the gate. On completion the first
// ETA promised for each leg is compared with the actual duration
// (ETAConfig.Accuracy). Run must be running.
type LiveETA struct {
	s      *Service
	router Router
	cfg    ETAConfig

	mu     sync.Mutex
	jobs   map[string]*etaJob
	ready  []string
	busy   map[string]bool
	held   map[string]*driver.Move // moves waiting for a closed gate to open
	timers map[string]*time.Timer
	gates  map[string]localGate // gates this node opened, while they are closed
	// sweepAt: the size of gates at which open gates are dropped.
	sweepAt int
	wake    chan struct{}
	done    bool
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

var _ driver.Listener = (*LiveETA)(nil)

// etaJob is a trip's pending work.
type etaJob struct {
	move   *driver.Move
	force  bool      // estimate now, ignoring the gate
	doneAt time.Time // completed at: observe accuracy
}

// NewLiveETA returns live ETAs for trips' trips routed by r, and attaches
// itself to trips (snapshot ETA, transition hooks).
func NewLiveETA(trips *Service, r Router, cfg ETAConfig) *LiveETA {
	l := &LiveETA{s: trips, router: r, cfg: cfg.withDefaults(), jobs: map[string]*etaJob{}, busy: map[string]bool{},
		held: map[string]*driver.Move{}, timers: map[string]*time.Timer{}, gates: map[string]localGate{},
		sweepAt: 1024, wake: make(chan struct{}, 1)}
	trips.eta = l
	return l
}

// Config returns the effective configuration.
func (l *LiveETA) Config() ETAConfig { return l.cfg }

// DriverMoved queues a move of a driver on a trip. It never blocks. A move
// within Every of an estimate this node made for the same driver is held
// for the gate's opening right here (see localGate).
func (l *LiveETA) DriverMoved(_ context.Context, m driver.Move) {
	if m.TripID == "" || !ValidID(m.TripID) {
		return
	}
	if l.holdLocally(&m) {
		return
	}
	l.enqueue(m.TripID, func(j *etaJob) {
		if j.move == nil || !m.TS.Before(j.move.TS) {
			j.move = &m
		}
	}, true)
}

// enqueue merges f into the trip's job. Moves (bounded) are dropped when
// the queue is full; transition work is not.
func (l *LiveETA) enqueue(trip string, f func(*etaJob), bounded bool) {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	j, ok := l.jobs[trip]
	if !ok {
		if bounded && len(l.jobs) >= l.cfg.Queue {
			l.mu.Unlock()
			if l.cfg.Metrics.Dropped != nil {
				l.cfg.Metrics.Dropped()
			}
			return
		}
		j = &etaJob{}
		l.jobs[trip] = j
		if !l.busy[trip] {
			l.ready = append(l.ready, trip)
		}
	}
	f(j)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run estimates queued trips until ctx is done.
func (l *LiveETA) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range l.cfg.Workers {
		wg.Go(func() { l.work(ctx) })
	}
	<-ctx.Done()
	l.mu.Lock()
	l.done = true
	for k, t := range l.timers {
		t.Stop()
		delete(l.timers, k)
	}
	l.mu.Unlock()
	wg.Wait()
	return nil
}

func (l *LiveETA) next() (string, *etaJob) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.ready) > 0 {
		trip := l.ready[0]
		l.ready = l.ready[1:]
		j, ok := l.jobs[trip]
		if !ok {
			continue
		}
		delete(l.jobs, trip)
		l.busy[trip] = true
		if len(l.ready) > 0 {
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
		return trip, j
	}
	return "", nil
}

func (l *LiveETA) finish(trip string) {
	l.mu.Lock()
	delete(l.busy, trip)
	_, again := l.jobs[trip]
	if again {
		l.ready = append(l.ready, trip)
	}
	l.mu.Unlock()
	if again {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

func (l *LiveETA) work(ctx context.Context) {
	for {
		trip, j := l.next()
		if j == nil {
			select {
			case <-ctx.Done():
				return
			case <-l.wake:
				continue
			}
		}
		if err := l.process(ctx, trip, j); err != nil && ctx.Err() == nil {
			l.s.cfg.Logger.Warn("rider: trip eta", "trip", trip, "err", err)
		}
		l.finish(trip)
	}
}

// holdLocally holds m when the trip's gate is known closed to it (see
// localGate): it reports whether m was dealt with (held, or dropped as not
// newer than the fix already estimated).
func (l *LiveETA) holdLocally(m *driver.Move) bool {
	now := l.s.now()
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
func (l *LiveETA) opened(trip, driver string, at time.Time, fix int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	l.gates[trip] = localGate{at: at, fix: fix, driver: driver}
	if len(l.gates) >= l.sweepAt {
		// Trips that ended elsewhere leave their gates behind: drop the
		// open ones now and then (amortized over the map's doubling).
		now := l.s.now()
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
func (l *LiveETA) forget(trip string) {
	l.mu.Lock()
	delete(l.gates, trip)
	l.mu.Unlock()
}

// hold keeps a move that found the gate closed and retries it once after
// wait (one timer per trip; a newer held move replaces an older one).
func (l *LiveETA) hold(trip string, m *driver.Move, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	if old := l.held[trip]; old == nil || !m.TS.Before(old.TS) {
		l.held[trip] = m
	}
	if l.timers[trip] != nil {
		return
	}
	l.timers[trip] = time.AfterFunc(wait, func() {
		l.mu.Lock()
		hm := l.held[trip]
		delete(l.held, trip)
		delete(l.timers, trip)
		l.mu.Unlock()
		if hm == nil {
			return
		}
		l.enqueue(trip, func(j *etaJob) {
			if j.move == nil || j.move.TS.Before(hm.TS) {
				j.move = hm
			}
		}, true)
	})
}

func (l *LiveETA) process(ctx context.Context, trip string, j *etaJob) error {
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

// gateScript opens the trip's estimate gate (at most one estimate per
// period, across nodes) and reads the fields the estimate needs. The gate
// is the time of the last estimate in the trip hash, not a key with a TTL:
// the embedded dev Redis does not expire keys by itself. As with the
// location gate, a stored time far in the future (another node's clock)
// does not block for longer than one period.
//
// KEYS: trip hash. ARGV: 1 now ms, 2 period ms, 3 time of the fix about to
// be estimated (ms, "0": none), 4 force 0|1, 5.. fields to read (the first
// must be "status").
// Returns {'gone'} | {'closed', wait ms, newest fix ms estimated or being
// estimated} | {'open', field values...} ("" for a missing field).
var gateScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], unpack(ARGV, 5))
if not f[1] then return {'gone'} end
local now, every = tonumber(ARGV[1]), tonumber(ARGV[2])
local g = redis.call('HMGET', KEYS[1], 'eta_gate_ms', 'eta_gate_fix', 'eta_fix_ms')
local last = tonumber(g[1]) or 0
if ARGV[4] ~= '1' and now - last < every and last - now <= every then
  return {'closed', tostring(every - (now - last)), tostring(math.max(tonumber(g[2]) or 0, tonumber(g[3]) or 0))}
end
redis.call('HSET', KEYS[1], 'eta_gate_ms', ARGV[1], 'eta_gate_fix', ARGV[3])
local out = {'open'}
for i = 1, #ARGV - 4 do out[i + 1] = f[i] or '' end
return out
`)

// etaScript stores an estimate if the trip is still on the leg it was made
// for (status, driver, target unchanged), records the first promise of the
// leg (the pickup's only while driver_assigned), and appends trip.eta when
// asked and no other estimate was emitted since the caller looked.
//
// KEYS: trip hash, feed stream, feed dedupe.
// ARGV: 1 allowed statuses "|a|b|", 2 driver, 3 target field, 4 target
// value, 5 leg, 6 seconds, 7 meters, 8 now ms, 9 arrive ms, 10 emit 0|1,
// 11 last emitted route version seen ("0": none), 12 event data whose
// first "__RV__" becomes the route version, 13 fix ms (time of the
// position the estimate started from, "0": none), 14.. feed args.
// Returns {'gone'} | {'skip'} | {'stale'} (an estimate from a newer fix
// was stored meanwhile) | {'stored', rv} | {'emit', id, rv}.
var etaScript = feed.Script(`
local h = KEYS[1]
local st = redis.call('HMGET', h, 'status', 'driver', ARGV[3], 'eta_erv', 'eta_fix_ms')
if not st[1] then return {'gone'} end
if not string.find(ARGV[1], '|' .. st[1] .. '|', 1, true) or st[2] ~= ARGV[2] or st[3] ~= ARGV[4] then
  return {'skip'}
end
if ARGV[13] ~= '0' and tonumber(ARGV[13]) < (tonumber(st[5] or '0') or 0) then return {'stale'} end
local rv = redis.call('HINCRBY', h, 'eta_rv', 1)
redis.call('HSET', h, 'eta_leg', ARGV[5], 'eta_s', ARGV[6], 'eta_m', ARGV[7], 'eta_ms', ARGV[8], 'eta_at', ARGV[9],
  'eta_fix_ms', ARGV[13])
if ARGV[5] == 'dropoff' or st[1] == 'driver_assigned' then
  if redis.call('HSETNX', h, 'eta_p_' .. ARGV[5], ARGV[6]) == 1 then
    redis.call('HSET', h, 'eta_p_' .. ARGV[5] .. '_ms', ARGV[8])
  end
end
if ARGV[10] ~= '1' or (st[4] or '0') ~= ARGV[11] then return {'stored', tostring(rv)} end
redis.call('HSET', h, 'eta_erv', rv, 'eta_es', ARGV[6], 'eta_etgt', ARGV[5] .. ':' .. ARGV[4])
local data = (string.gsub(ARGV[12], '__RV__', tostring(rv), 1))
local id = hx_publish(KEYS[2], KEYS[3], ARGV, 14, data)
return {'emit', id, tostring(rv)}
`)

// legOf returns the ETA leg of a status, its target field and the statuses
// of that leg ("" when a trip in status has no ETA).
func legOf(status string) (leg, field, allowed string) {
	switch status {
	case StatusAssigned, StatusArrived:
		return LegPickup, "pickup", "|" + StatusAssigned + "|" + StatusArrived + "|"
	case StatusInProgress:
		return LegDropoff, "dropoff", "|" + StatusInProgress + "|"
	}
	return "", "", ""
}

var etaFields = []string{"status", "driver", "pickup", "dropoff", "loc_drv", "loc_ts", "loc_lat", "loc_lng",
	"eta_es", "eta_etgt", "eta_erv", "eta_fix_ms"}

// estimate computes and stores the trip's ETA from the newest of m and the
// trip's stored fix (forced: ignoring the gate). A move that finds the gate
// closed is held for when it opens, unless the latest estimate (on any
// node) started from a fix at least as new.
func (l *LiveETA) estimate(ctx context.Context, trip string, m *driver.Move, force bool) error {
	s := l.s
	fixArg, forceArg := "0", "0"
	if m != nil {
		fixArg = strconv.FormatInt(m.TS.UnixMilli(), 10)
	}
	if force {
		forceArg = "1"
	}
	gateAt := s.now()
	args := []any{gateAt.UnixMilli(), l.cfg.Every.Milliseconds(), fixArg, forceArg}
	for _, f := range etaFields {
		args = append(args, f)
	}
	res, err := runScript(ctx, s.rdb, gateScript, []string{tripKey(s.cfg.Prefix, trip)}, args...)
	if err != nil {
		return err
	}
	switch {
	case res[0] == "closed" && len(res) == 3:
		if l.cfg.Metrics.Throttled != nil {
			l.cfg.Metrics.Throttled()
		}
		wait, _ := strconv.ParseInt(res[1], 10, 64)
		newest, _ := strconv.ParseInt(res[2], 10, 64)
		if m != nil {
			// Closed by another node (or an earlier estimate here): until
			// it opens, this driver's moves are held here without asking.
			if w := time.Duration(wait) * time.Millisecond; w > 0 && w <= l.cfg.Every {
				l.opened(trip, m.DriverID, gateAt.Add(w-l.cfg.Every), newest)
			}
			if m.TS.UnixMilli() > newest {
				l.hold(trip, m, time.Duration(max(wait, 1))*time.Millisecond)
			}
		}
		return nil
	case res[0] != "open" || len(res) != len(etaFields)+1:
		return nil // the trip is gone
	}
	h := make(map[string]string, len(etaFields))
	for i, f := range etaFields {
		h[f] = res[i+1]
	}
	if h["driver"] != "" {
		var fix int64
		if m != nil {
			fix = m.TS.UnixMilli()
		}
		l.opened(trip, h["driver"], gateAt, fix)
	}
	leg, field, allowed := legOf(h["status"])
	if leg == "" || h["driver"] == "" || (m != nil && m.DriverID != h["driver"]) {
		return nil
	}
	if fix, _ := strconv.ParseInt(h["eta_fix_ms"], 10, 64); !force && m != nil && m.TS.UnixMilli() < fix {
		return nil // another node estimated from a newer fix meanwhile
	}
	var to, pick Place
	if json.Unmarshal([]byte(h[field]), &to) != nil || json.Unmarshal([]byte(h["pickup"]), &pick) != nil {
		return nil
	}
	from, ok := geo.Point{}, false
	var fromTS time.Time
	if m != nil {
		from, fromTS, ok = m.Pos, m.TS, true
	}
	if h["loc_drv"] == h["driver"] {
		if fix := decodeLocation(map[string]string{"locseq": "1", "loc_ts": h["loc_ts"], "loc_lat": h["loc_lat"],
			"loc_lng": h["loc_lng"]}); fix != nil && (!ok || fix.TS.After(fromTS)) {
			from, fromTS, ok = geo.Point{Lat: fix.Lat, Lng: fix.Lng}, fix.TS, true
		}
	}
	if !ok && leg == LegDropoff {
		from, ok = geo.Point{Lat: pick.Lat, Lng: pick.Lng}, true // just picked up, no fix yet
	}
	if !ok {
		return nil
	}
	fixMS := "0"
	if !fromTS.IsZero() {
		fixMS = nowMS(fromTS)
	}
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	secs, meters, err := l.router.Estimate(rctx, from, geo.Point{Lat: to.Lat, Lng: to.Lng})
	cancel()
	if err != nil {
		return fmt.Errorf("estimate: %w", err)
	}
	if math.IsNaN(secs) || math.IsInf(secs, 0) || math.IsNaN(meters) || math.IsInf(meters, 0) {
		return fmt.Errorf("estimate: not a number (%v s, %v m)", secs, meters)
	}
	secs, meters = math.Round(max(secs, 0)), math.Round(max(meters, 0))
	now := s.now()
	arrive := now.Add(time.Duration(secs) * time.Second)
	prev, _ := strconv.ParseFloat(h["eta_es"], 64)
	erv := h["eta_erv"]
	if erv == "" {
		erv = "0"
	}
	emit := h["eta_etgt"] != leg+":"+h[field] || (secs != prev && l.cfg.ShouldEmit(prev, secs))
	body, _ := json.Marshal(struct {
		TripID    string    `json:"trip_id"`
		Leg       string    `json:"leg"`
		Seconds   float64   `json:"eta_s"`
		ArriveAt  time.Time `json:"arrive_at"`
		DistanceM float64   `json:"distance_m"`
	}{trip, leg, secs, arrive.UTC().Truncate(time.Millisecond), meters})
	data := `{"route_version":__RV__,` + string(body[1:])
	fkeys, fargs, err := s.feed.PublishParams(feed.Publication{Topic: Topic(trip), Type: EventETA, TS: now})
	if err != nil {
		return err
	}
	emitArg := "0"
	if emit {
		emitArg = "1"
	}
	args = []any{allowed, h["driver"], field, h[field], leg, fmtFloat(secs, 0), fmtFloat(meters, 0), nowMS(now),
		nowMS(arrive), emitArg, erv, data, fixMS}
	res, err = runScript(ctx, s.rdb, etaScript, append([]string{tripKey(s.cfg.Prefix, trip)}, fkeys...), append(args, fargs...)...)
	if err != nil {
		return err
	}
	if (res[0] == "stored" || res[0] == "emit") && l.cfg.Metrics.Computed != nil {
		l.cfg.Metrics.Computed(time.Since(start), res[0] == "emit")
	}
	return nil
}

// observe records the accuracy of a completed trip's legs: the first ETA
// promised for the pickup (while driver_assigned) against the time to
// driver_arrived, and the first promised for the dropoff against the time
// to completion.
func (l *LiveETA) observe(ctx context.Context, trip string, doneAt time.Time) error {
	if l.cfg.Accuracy == nil {
		return nil
	}
	f := []string{"eta_p_pickup", "eta_p_pickup_ms", "eta_arr_ms", "eta_p_dropoff", "eta_p_dropoff_ms"}
	raw, err := l.s.rdb.HMGet(ctx, tripKey(l.s.cfg.Prefix, trip), f...).Result()
	if err != nil {
		return err
	}
	v := make([]float64, len(f))
	for i, x := range raw {
		if sv, ok := x.(string); ok {
			v[i], _ = strconv.ParseFloat(sv, 64)
		}
	}
	leg := func(name string, promised, fromMS, toMS float64) {
		if fromMS > 0 && toMS >= fromMS {
			l.cfg.Accuracy.Observe(name, time.Duration(promised*float64(time.Second)),
				time.Duration(toMS-fromMS)*time.Millisecond)
		}
	}
	leg(LegPickup, v[0], v[1], v[2])
	leg(LegDropoff, v[3], v[4], float64(doneAt.UnixMilli()))
	return nil
}

// etaChanged is called after every successful transition: a pickup or a
// dropoff change is estimated at once; a completion is observed.
func (s *Service) etaChanged(c Change, at time.Time) {
	l := s.eta
	if l == nil {
		return
	}
	l.forget(c.Trip.ID)
	switch {
	case c.To == StatusCompleted:
		l.enqueue(c.Trip.ID, func(j *etaJob) { j.doneAt = at }, false)
	case c.To == StatusInProgress: // picked up, or the dropoff changed on the way
		l.enqueue(c.Trip.ID, func(j *etaJob) { j.force = true }, false)
	}
}

// etaPairs are the trip hash changes a transition to status makes to the
// ETA state, in the transition's own script: back to requested forgets the
// pickup leg (the next driver makes a new promise); driver_arrived records
// the end of the pickup leg.
func etaPairs(status string, now time.Time) []string {
	switch status {
	case StatusRequested:
		return []string{"eta_leg", "", "eta_s", "", "eta_m", "", "eta_at", "", "eta_ms", "", "eta_es", "",
			"eta_etgt", "", "eta_fix_ms", "", "eta_gate_ms", "", "eta_gate_fix", "",
			"eta_p_pickup", "", "eta_p_pickup_ms", "", "eta_arr_ms", ""}
	case StatusArrived:
		return []string{"eta_arr_ms", nowMS(now)}
	}
	return nil
}

// etaForgetDropoff: a new dropoff voids the promise made for the old one.
var etaForgetDropoff = []string{"eta_p_dropoff", "", "eta_p_dropoff_ms", ""}

// decodeETA returns the snapshot's "eta" and its route version: the stored
// estimate if it is of the leg of status, else null and 0.
func decodeETA(m map[string]string, status string) (json.RawMessage, int64) {
	leg, _, _ := legOf(status)
	if leg == "" || m["eta_leg"] != leg {
		return json.RawMessage("null"), 0
	}
	e := ETA{Leg: leg, ArriveAt: msTime(m["eta_at"]), ComputedAt: msTime(m["eta_ms"])}
	e.Seconds, _ = strconv.ParseFloat(m["eta_s"], 64)
	e.DistanceM, _ = strconv.ParseFloat(m["eta_m"], 64)
	e.RouteVersion, _ = strconv.ParseInt(m["eta_rv"], 10, 64)
	b, err := json.Marshal(e)
	if err != nil {
		return json.RawMessage("null"), 0
	}
	return b, e.RouteVersion
}

package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/trip"
)

// Finder finds fresh available drivers near a point (driverredis.Service).
type Finder interface {
	Nearby(ctx context.Context, q driver.NearbyQuery) ([]driver.Nearby, error)
}

var _ Finder = (*driverredis.Service)(nil)

// Config configures a Dispatcher. Zero values are documented per
// field.
type Config struct {
	// Prefix is prepended to every Redis key; it must be the trip
	// Service's. Zero: "".
	Prefix string
	// NodeID names this node in leases. Zero: random.
	NodeID string
	// OfferTimeout is how long a driver has to answer an offer. Zero: 15s.
	OfferTimeout time.Duration
	// Timeout is how long a trip may stay requested before it expires.
	// Zero: 2m. It restarts when a trip returns to requested.
	Timeout time.Duration
	// Radii are the search radii in meters, smallest first: each search
	// widens until one radius yields a candidate, up to a limit that grows
	// with time (the two smallest at first, all of them from half the
	// Timeout on). Zero: 1500, 3000, 6000, 12000, 25000.
	Radii []float64
	// Candidates bounds each search. Zero: 10.
	Candidates int
	// Poll is how often an owned trip is re-checked (answers, cancels).
	// Zero: 250ms.
	Poll time.Duration
	// Retry is the pause when no candidate could be offered. Zero: 1s.
	Retry time.Duration
	// LeaseTTL is how long a node owns a trip's dispatch without renewing;
	// another node takes a trip over at most this long after its owner
	// died. Zero: 5s.
	LeaseTTL time.Duration
	// Scan is how often the queue of trips to dispatch is read. Zero: 500ms.
	Scan time.Duration
	// MaxActive bounds the trips one node dispatches at once. Zero: 2000.
	MaxActive int
	// Arrival detection: within ArriveM of the pickup for Dwell (by ping
	// time) → driver_arrived; leaving LeaveM resets the dwell (hysteresis).
	// trip.arriving is sent once when the ETA to pickup falls under
	// ArrivingETA. Zero: 50 m, 80 m, 10s, 60s.
	ArriveM, LeaveM float64
	Dwell           time.Duration
	ArrivingETA     time.Duration
	// CitySpeed (m/s) gives the ETA to pickup without an Estimator. Zero: 8.3.
	CitySpeed float64
	// Now returns the current time. Zero: time.Now.
	Now func() time.Time
	// Logger. Zero: slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.NodeID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.NodeID = hex.EncodeToString(b[:])
	}
	if c.OfferTimeout <= 0 {
		c.OfferTimeout = 15 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	if len(c.Radii) == 0 {
		c.Radii = []float64{1500, 3000, 6000, 12000, 25000}
	}
	if c.Candidates <= 0 {
		c.Candidates = 10
	}
	if c.Poll <= 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.Retry <= 0 {
		c.Retry = time.Second
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 5 * time.Second
	}
	if c.Scan <= 0 {
		c.Scan = 500 * time.Millisecond
	}
	if c.MaxActive <= 0 {
		c.MaxActive = 2000
	}
	if c.ArriveM <= 0 {
		c.ArriveM = 50
	}
	if c.LeaveM <= c.ArriveM {
		c.LeaveM = c.ArriveM + 30
	}
	if c.Dwell <= 0 {
		c.Dwell = 10 * time.Second
	}
	if c.ArrivingETA <= 0 {
		c.ArrivingETA = 60 * time.Second
	}
	if c.CitySpeed <= 0 {
		c.CitySpeed = 8.3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Dispatcher matches requested trips with drivers. It implements Hook (so
// the trip Service tells it about new, re-requested, cancelled and changed
// trips) and driver.Listener (arrival detection).
//
// Every node runs one. A trip to dispatch is a member of a Redis sorted set
// (the queue, scored by when it is due); a node takes a due trip by
// acquiring its lease (SET NX PX LeaseTTL) and keeps it by renewing; the
// lease holder alone makes offers, and it records each offer in the trip's
// dispatch hash before sending it (idempotently, so a node taking over
// re-sends a pending offer at most once). When a node dies its leases
// expire and its trips become due again on the other nodes: no trip is
// lost, no offer is sent twice. A driver holds at most one pending offer
// (a per-driver offer lock), and assignment itself is atomic in Redis
// (Service.Assign: the driver's claim, then the trip's transition).
type Dispatcher struct {
	rdb     redis.UniversalClient
	trips   Trips
	cmds    *Commands
	cfg     Config
	log     *slog.Logger
	wake    chan struct{}
	offers  *offers   // one round of a trip's offers (offers.go)
	arrival *Arrivals // arrival detection (arrival.go)

	mu     sync.Mutex
	active map[string]*owned // trips this node dispatches
	wg     sync.WaitGroup
}

// Trips is what dispatch needs of trips (trip.Service implements it): the
// trip, the drivers to skip, expiry, and for arrival detection the trip's
// pickup and the arrived transition.
type Trips interface {
	Get(ctx context.Context, id string) (trip.Trip, error)
	Excluded(ctx context.Context, id string) ([]string, error)
	Expire(ctx context.Context, id string) (trip.Snapshot, error)
	ArrivalView(ctx context.Context, id string) (trip.Trip, error)
	Act(ctx context.Context, id string, a trip.Actor, action, reason string) (trip.Snapshot, error)
}

var (
	_ Trips     = (*trip.Service)(nil)
	_ trip.Hook = (*Dispatcher)(nil)
)

// New returns a dispatcher of trips, finding drivers with f and sending
// commands with cmds. Install it as the trip service's Hook
// (trip.Service.SetHook) and its Arrivals as a driver.Listener.
func New(rdb redis.UniversalClient, trips Trips, f Finder, cmds *Commands, cfg Config) *Dispatcher {
	cfg = cfg.withDefaults()
	d := &Dispatcher{rdb: rdb, trips: trips, cmds: cmds, cfg: cfg, log: cfg.Logger,
		wake: make(chan struct{}, 1), active: map[string]*owned{}}
	d.offers = &offers{rdb: rdb, trips: trips, finder: f, cmds: cmds, cfg: cfg}
	d.arrival = newArrivals(rdb, trips, cmds.feed, cfg)
	return d
}

// Arrivals is the arrival detection (a driver.Listener); Run runs it.
func (d *Dispatcher) Arrivals() *Arrivals { return d.arrival }

// SetEstimator sets the ETA engine used for trip.arriving. Call before Run.
func (d *Dispatcher) SetEstimator(e driver.Estimator) { d.arrival.est = e }

// OnOffer sets a hook called after each offer is sent. Call before Run.
func (d *Dispatcher) OnOffer(f func(sendTime time.Duration)) { d.offers.sent = f }

// Config returns the effective configuration.
func (d *Dispatcher) Config() Config { return d.cfg }

// Keys (the trip's hash tag, except the queue and the driver's offer lock).
func queueKey(prefix string) string           { return prefix + "dispatch:queue" }
func dispatchKey(prefix, id string) string    { return prefix + "trip:{" + id + "}:dispatch" }
func leaseKey(prefix, id string) string       { return prefix + "trip:{" + id + "}:lease" }
func offerLockKey(prefix, drv string) string  { return prefix + "drv:{" + drv + "}:offer" }
func arrivalKey(prefix, tripID string) string { return prefix + "trip:{" + tripID + "}:arrival" }
func (d *Dispatcher) key(f func(string, string) string, id string) string {
	return f(d.cfg.Prefix, id)
}

// Run dispatches due trips until ctx is done. On return, the trips this
// node owned are handed back (leases released, due at once elsewhere).
func (d *Dispatcher) Run(ctx context.Context) error {
	d.wg.Go(func() { d.arrival.run(ctx) })
	d.wg.Go(func() { d.renewLoop(ctx) })
	t := time.NewTicker(d.cfg.Scan)
	defer t.Stop()
	for {
		d.scan(ctx)
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return nil
		case <-t.C:
		case <-d.wake:
		}
	}
}

func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// scan takes due trips whose lease is free.
func (d *Dispatcher) scan(ctx context.Context) {
	now := d.cfg.Now().UnixMilli()
	ids, err := d.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: queueKey(d.cfg.Prefix), ByScore: true,
		Start: "-inf", Stop: strconv.FormatInt(now, 10), Count: 200}).Result()
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("dispatch: scan", "err", err)
		}
		return
	}
	for _, id := range ids {
		d.mu.Lock()
		_, mine := d.active[id]
		full := len(d.active) >= d.cfg.MaxActive
		d.mu.Unlock()
		if mine || full {
			continue
		}
		ok, err := d.rdb.SetNX(ctx, d.key(leaseKey, id), d.cfg.NodeID, d.cfg.LeaseTTL).Result()
		if err != nil || !ok {
			continue
		}
		// Not due elsewhere while the lease lives; renewals push it further.
		d.rdb.ZAddXX(ctx, queueKey(d.cfg.Prefix), redis.Z{Score: float64(now + d.cfg.LeaseTTL.Milliseconds()), Member: id})
		wctx, cancel := context.WithCancel(ctx)
		o := &owned{poke: make(chan struct{}, 1), cancel: cancel}
		d.mu.Lock()
		d.active[id] = o
		d.mu.Unlock()
		d.wg.Go(func() { d.work(wctx, ctx, id, o.poke) })
	}
}

// Active returns how many trips this node is dispatching.
func (d *Dispatcher) Active() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.active)
}

// Lease scripts touch only the lease key (the queue is in another slot
// under Cluster); the queue score is moved by a separate ZADD XX.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`)

var releaseLeaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// owned is a trip this node dispatches.
type owned struct {
	poke   chan struct{}
	cancel context.CancelFunc // stops the worker (lease lost)
}

// renewLoop renews every lease of this node in one pipeline (EVAL, not
// EVALSHA: a pipeline cannot fall back on NOSCRIPT) every
// LeaseTTL/3, independent of how busy the workers are; a worker whose lease
// is gone is stopped (another node owns the trip now).
func (d *Dispatcher) renewLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		ids := make([]string, 0, len(d.active))
		for id := range d.active {
			ids = append(ids, id)
		}
		d.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		due := float64(d.cfg.Now().Add(d.cfg.LeaseTTL).UnixMilli())
		cmds := make([]*redis.Cmd, len(ids))
		// Script.Run cannot fall back from EVALSHA to EVAL inside a pipeline:
		// load the script first (a fresh or restarted Redis has none).
		if err := renewScript.Load(ctx, d.rdb).Err(); err != nil && ctx.Err() == nil {
			d.log.Warn("dispatch: load renew script", "err", err)
		}
		_, err := d.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = renewScript.Eval(ctx, p, []string{d.key(leaseKey, id)}, d.cfg.NodeID, d.cfg.LeaseTTL.Milliseconds())
				p.ZAddXX(ctx, queueKey(d.cfg.Prefix), redis.Z{Score: due, Member: id})
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			d.log.Warn("dispatch: renew leases", "err", err)
		}
		for i, id := range ids {
			if n, err := cmds[i].Int(); err == nil && n == 0 {
				d.log.Warn("dispatch: lease lost", "trip", id, "node", d.cfg.NodeID)
				d.mu.Lock()
				if o := d.active[id]; o != nil {
					o.cancel()
				}
				d.mu.Unlock()
			}
		}
	}
}

// work owns one trip's dispatch while its lease lasts (ctx ends when it is
// lost or the node stops; parent is the node's context).
func (d *Dispatcher) work(ctx, parent context.Context, id string, poke chan struct{}) {
	finished := false
	defer func() {
		d.mu.Lock()
		if o := d.active[id]; o != nil {
			o.cancel()
		}
		delete(d.active, id)
		d.mu.Unlock()
		bg, cancel := context.WithTimeout(context.WithoutCancel(parent), 2*time.Second)
		defer cancel()
		if finished {
			d.rdb.ZRem(bg, queueKey(d.cfg.Prefix), id)
			// Back in requested meanwhile (accepted, then cancelled by
			// the driver)? The hook queued it before our ZREM: queue again.
			if t, err := d.trips.Get(bg, id); err == nil && t.Status == trip.StatusRequested {
				d.rdb.ZAdd(bg, queueKey(d.cfg.Prefix), redis.Z{Score: float64(d.cfg.Now().UnixMilli()), Member: id})
				finished = false
			} else {
				d.rdb.Del(bg, d.key(dispatchKey, id))
			}
		}
		// Hand back (node stopping, or a Redis error): due at once for
		// whoever takes it next. A lost lease is someone else's already.
		if !finished && (ctx.Err() == nil || parent.Err() != nil) {
			d.rdb.ZAddXX(bg, queueKey(d.cfg.Prefix), redis.Z{Score: float64(d.cfg.Now().UnixMilli()), Member: id})
		}
		releaseLeaseScript.Run(bg, d.rdb, []string{d.key(leaseKey, id)}, d.cfg.NodeID)
	}()
	published := map[int64]bool{}
	backoff := d.cfg.Retry
	for ctx.Err() == nil {
		done, wait, err := d.offers.step(ctx, id, published)
		if wait == waitEmpty {
			wait, backoff = backoff, min(2*backoff, 4*d.cfg.Retry)
		} else {
			backoff = d.cfg.Retry
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errLeaseLost) {
				return
			}
			d.log.Warn("dispatch: step", "trip", id, "err", err)
			wait = d.cfg.Retry
		}
		if done {
			finished = true
			return
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-poke:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// enqueue makes a trip due for dispatch now, with a fresh round.
func (d *Dispatcher) enqueue(ctx context.Context, id string) error {
	if err := d.rdb.Del(ctx, d.key(dispatchKey, id)).Err(); err != nil {
		return err
	}
	if err := d.rdb.ZAdd(ctx, queueKey(d.cfg.Prefix), redis.Z{Score: float64(d.cfg.Now().UnixMilli()), Member: id}).Err(); err != nil {
		return err
	}
	d.poke()
	return nil
}

// TripChanged implements Hook: a trip entering requested is queued; the
// drivers concerned are told about cancellations, reassignments and
// address changes.
func (d *Dispatcher) TripChanged(ctx context.Context, c trip.Change) {
	id := c.Trip.ID
	logErr := func(what string, err error) {
		if err != nil {
			d.log.Warn("dispatch: "+what, "trip", id, "err", err)
		}
	}
	switch {
	case c.To == trip.StatusRequested && c.Action != trip.ActDropoff:
		logErr("enqueue", d.enqueue(ctx, id))
		if c.OldDriver != "" && !(c.Actor.Role == trip.RoleDriver && c.Actor.ID == c.OldDriver) {
			_, err := d.cmds.Send(ctx, c.OldDriver, CmdReassigned,
				map[string]any{"trip_id": id, "reason": c.Action}, "reassigned:"+id+":"+c.EventID)
			logErr("notify reassigned", err)
		}
	case c.To == trip.StatusCancelled || c.To == trip.StatusExpired:
		to := c.OldDriver
		if to == "" {
			to, _ = d.rdb.HGet(ctx, d.key(dispatchKey, id), "offer").Result()
		}
		if to != "" && !(c.Actor.Role == trip.RoleDriver && c.Actor.ID == to) {
			_, err := d.cmds.Send(ctx, to, CmdCancelled,
				map[string]any{"trip_id": id, "status": c.To, "by": c.Actor.Role}, "cancelled:"+id)
			logErr("notify cancelled", err)
		}
		d.pokeTrip(id)
	case c.Action == trip.ActDropoff:
		drv := c.Trip.DriverID
		if drv == "" {
			drv, _ = d.rdb.HGet(ctx, d.key(dispatchKey, id), "offer").Result()
		}
		if drv != "" {
			t, err := d.trips.Get(ctx, id)
			if err == nil {
				_, err = d.cmds.Send(ctx, drv, CmdAddressChanged,
					map[string]any{"trip_id": id, "dropoff": t.Dropoff, "version": t.Version}, "address:"+id+":"+c.EventID)
			}
			logErr("notify address", err)
		}
	case c.To == trip.StatusAssigned:
		d.pokeTrip(id)
	}
}

// pokeTrip wakes the local worker of a trip, if this node owns it.
func (d *Dispatcher) pokeTrip(id string) {
	d.mu.Lock()
	o := d.active[id]
	d.mu.Unlock()
	if o != nil {
		select {
		case o.poke <- struct{}{}:
		default:
		}
	}
}

// CheckAccept implements Hook: only the driver a trip is offered to may
// accept it.
func (d *Dispatcher) CheckAccept(ctx context.Context, tripID, driverID string) error {
	o, err := d.rdb.HGet(ctx, d.key(dispatchKey, tripID), "offer").Result()
	if err != nil && err != redis.Nil {
		return fmt.Errorf("dispatch: check accept %s: %w", tripID, err)
	}
	if o != driverID {
		return fmt.Errorf("%w: trip %s is not offered to you", trip.ErrForbidden, tripID)
	}
	return nil
}

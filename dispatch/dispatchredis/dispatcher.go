package dispatchredis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/trip"
)

// Dispatcher matches requested trips with drivers. It implements Hook (so
// the trip Service tells it about new, re-requested, cancelled and changed
// trips) and driver.Listener (arrival detection).
//
// Every node runs one. A trip to dispatch is a member of a Redis sorted set
// (the queue, scored by when it is due); a node takes a due trip by
// acquiring its lease (SET NX PX LeaseTTL) and keeps it by renewing
// (queue.go); the lease holder alone makes offers, and it records each
// offer in the trip's dispatch hash before sending it (idempotently, so a
// node taking over re-sends a pending offer at most once). When a node
// dies its leases expire and its trips become due again on the other
// nodes: no trip is lost, no offer is sent twice. A driver holds at most
// one pending offer (a per-driver offer lock), and assignment itself is
// atomic in Redis (Service.Assign: the driver's claim, then the trip's
// transition).
type Dispatcher struct {
	trips   dispatch.Trips
	cmds    *Commands
	cfg     Config
	log     *slog.Logger
	wake    chan struct{}
	q       *queue    // the queue and the leases (queue.go)
	offers  *offers   // one round of a trip's offers (offers.go)
	arrival *Arrivals // arrival detection (arrival.go)
	routes  *dispatch.Router

	mu     sync.Mutex
	active map[string]*owned // trips this node dispatches
	wg     sync.WaitGroup
}

var _ trip.Hook = (*Dispatcher)(nil)

// New returns a dispatcher of trips, finding drivers with f and sending
// commands with cmds. Install it as the trip service's Hook
// (trip.Service.SetHook) and its Arrivals as a driver.Listener.
func New(rdb redis.UniversalClient, trips dispatch.Trips, f dispatch.Finder, cmds *Commands, cfg Config) *Dispatcher {
	cfg = cfg.withDefaults()
	d := &Dispatcher{trips: trips, cmds: cmds, cfg: cfg, log: cfg.Logger,
		wake: make(chan struct{}, 1), active: map[string]*owned{}}
	d.q = &queue{rdb: rdb, prefix: cfg.Prefix, node: cfg.NodeID, ttl: cfg.LeaseTTL, now: cfg.Now, log: cfg.Logger}
	d.offers = &offers{rdb: rdb, trips: trips, finder: f, cmds: cmds, cfg: cfg}
	d.arrival = newArrivals(rdb, trips, cmds.feed, cfg)
	return d
}

// Arrivals is the arrival detection (a driver.Listener); Run runs it.
func (d *Dispatcher) Arrivals() *Arrivals { return d.arrival }

// SetEstimator sets the ETA engine used for trip.arriving. Call before Run.
func (d *Dispatcher) SetEstimator(e driver.Estimator) { d.arrival.est = e }

// SetRouter makes the dispatcher send trip.route to a trip's driver after
// accept and after every address change. Call before Run.
func (d *Dispatcher) SetRouter(r dispatch.Router) { d.routes = &r }

// OnOffer sets a hook called after each offer is sent. Call before Run.
func (d *Dispatcher) OnOffer(f func(sendTime time.Duration)) { d.offers.sent = f }

// Config returns the effective configuration.
func (d *Dispatcher) Config() Config { return d.cfg }

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
	ids, err := d.q.due(ctx, now)
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
		if mine || full || !d.q.take(ctx, id, now) {
			continue
		}
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

// owned is a trip this node dispatches.
type owned struct {
	poke   chan struct{}
	cancel context.CancelFunc // stops the worker (lease lost)
}

// renewLoop renews every lease of this node in one pipeline every
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
		for _, id := range d.q.renew(ctx, ids) {
			d.log.Warn("dispatch: lease lost", "trip", id, "node", d.cfg.NodeID)
			d.mu.Lock()
			if o := d.active[id]; o != nil {
				o.cancel()
			}
			d.mu.Unlock()
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
			finished = d.q.finish(bg, id, func() bool {
				t, err := d.trips.Get(bg, id)
				return err == nil && t.Status == trip.StatusRequested
			})
		}
		// Hand back (node stopping, or a Redis error): due at once for
		// whoever takes it next. A lost lease is someone else's already.
		if !finished && (ctx.Err() == nil || parent.Err() != nil) {
			d.q.handBack(bg, id)
		}
		d.q.release(bg, id)
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
			if ctx.Err() != nil || errors.Is(err, errLeaseLost) {
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
		err := d.q.add(ctx, id)
		if err == nil {
			d.poke()
		}
		logErr("enqueue", err)
		if c.OldDriver != "" && !(c.Actor.Role == trip.RoleDriver && c.Actor.ID == c.OldDriver) {
			_, err := d.cmds.Send(ctx, c.OldDriver, dispatch.CmdReassigned,
				map[string]any{"trip_id": id, "reason": c.Action}, "reassigned:"+id+":"+c.EventID)
			logErr("notify reassigned", err)
		}
	case c.To == trip.StatusCancelled || c.To == trip.StatusExpired:
		to := c.OldDriver
		if to == "" {
			to, _ = d.q.offeredTo(ctx, id)
		}
		if to != "" && !(c.Actor.Role == trip.RoleDriver && c.Actor.ID == to) {
			_, err := d.cmds.Send(ctx, to, dispatch.CmdCancelled,
				map[string]any{"trip_id": id, "status": c.To, "by": c.Actor.Role}, "cancelled:"+id)
			logErr("notify cancelled", err)
		}
		d.pokeTrip(id)
	case c.Action == trip.ActDropoff:
		drv := c.Trip.DriverID
		if drv == "" {
			drv, _ = d.q.offeredTo(ctx, id)
		}
		if drv != "" {
			t, err := d.trips.Get(ctx, id)
			if err == nil {
				_, err = d.cmds.Send(ctx, drv, dispatch.CmdAddressChanged,
					map[string]any{"trip_id": id, "dropoff": t.Dropoff, "version": t.Version}, "address:"+id+":"+c.EventID)
			}
			logErr("notify address", err)
			if err == nil && t.DriverID != "" {
				logErr("route", d.sendRoute(ctx, t, c.EventID, dispatch.RouteAddressChanged))
			}
		}
	case c.To == trip.StatusAssigned:
		d.pokeTrip(id)
		t, err := d.trips.Get(ctx, id)
		if err == nil && t.DriverID != "" {
			err = d.sendRoute(ctx, t, c.EventID, dispatch.RouteAccepted)
		}
		logErr("route", err)
	}
}

// sendRoute sends trip t's driver its route (trip.route), once per trip
// event (the command's key), when a Router is set.
func (d *Dispatcher) sendRoute(ctx context.Context, t trip.Trip, eventID, reason string) error {
	if d.routes == nil {
		return nil
	}
	r, err := d.routes.Plan(ctx, t, reason)
	if err != nil {
		return err
	}
	_, err = d.cmds.Send(ctx, t.DriverID, dispatch.CmdRoute, r, "route:"+t.ID+":"+eventID)
	return err
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
	o, err := d.q.offeredTo(ctx, tripID)
	if err != nil {
		return fmt.Errorf("dispatch: check accept %s: %w", tripID, err)
	}
	if o != driverID {
		return fmt.Errorf("%w: trip %s is not offered to you", trip.ErrForbidden, tripID)
	}
	return nil
}

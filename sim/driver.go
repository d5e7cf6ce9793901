package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/sim/driverlink"
)

// DriverBehaviour is how simulated drivers act. Times are simulated.
type DriverBehaviour struct {
	AcceptProb  float64       // chance an offer is accepted; the rest are declined
	AcceptDelay time.Duration // mean think time before answering an offer
	PickupDwell time.Duration // time at the pickup before starting the trip
	PingEvery   time.Duration // GPS fix period (simulated)
	BatchEvery  time.Duration // upload period (simulated); fixes in between are batched
	GPS         GPS
	Link        Link // network loss model (a copy per driver)
	Roam        bool // drive around when idle (else wait in place)
}

// car is what a driver drives: a Mover on the road graph, or a recorded
// trace (replay).
type car interface {
	Pos() geo.Point
	Step(dt float64)
	Arrived() bool
	Speed() float64
	Heading() float64
	RouteTo(dst geo.Point) error
}

var (
	_ car = (*Mover)(nil)
	_ car = (*traceCar)(nil)
)

type driverPhase int

const (
	phaseIdle driverPhase = iota
	phaseToPickup
	phaseAtPickup
	phaseToDropoff
)

// offer is an offer to handle: from the server's command channel, or from
// the simulator's own dispatcher (then ID is empty and nothing is acked).
type offer struct {
	trip    string
	id      string
	expires time.Time // zero: unknown
}

// simDriver is one simulated driver: a goroutine stepping a car, taking
// GPS fixes, uploading them, answering offers and driving trips.
type simDriver struct {
	id    string
	api   *client.Client
	conn  DriverConn
	beh   DriverBehaviour
	sim   *Engine
	rng   *rand.Rand
	car   car
	link  Link
	seq   int64
	buf   []client.Ping
	phase driverPhase
	trip  client.Snapshot
	// answerAt is when the pending offer is answered (zero: none).
	answerAt time.Time
	pending  offer
	dwellEnd time.Time
	offers   chan offer // the simulator's own dispatcher
	index    int
	stamps   stamps
	// truth, if set, records the true position of every fix (replay).
	truth *truthLog
	// once: leave after the first trip (replay)
	once bool
	// want, if set, is the only trip this driver accepts (replay).
	want     atomic.Pointer[string]
	doneTrip chan struct{}
}

func (d *simDriver) now() time.Time { return d.sim.Clock.Now() }

// run steps the driver until ctx ends.
func (d *simDriver) run(ctx context.Context) {
	st := d.sim.Stats
	tick := d.sim.Clock.Wall(d.beh.PingEvery)
	t := time.NewTicker(tick)
	defer t.Stop()
	every := d.beh.PingEvery.Seconds()
	lastStep := time.Now()
	fixWall := lastStep    // wall time the last fix was due
	due := 0.0             // simulated seconds not yet driven
	var lastSend time.Time // the first fix goes at once: the driver appears
	online := true
	st.C.DriversOnline.Add(1)
	var moving, onTrip gauge
	defer func() {
		st.C.DriversOnline.Add(-1)
		moving.set(&st.C.DriversMoving, false)
		onTrip.set(&st.C.DriversOnTrip, false)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-d.offers:
			d.offer(o)
		case e := <-d.conn.Commands():
			d.command(ctx, e)
		case now := <-t.C:
			// One fix per PingEvery of simulated time, however late this
			// tick is: the car drives exactly PingEvery between fixes (a
			// goroutine delayed under load makes up the fixes it owes, it
			// never takes a longer step), each fix stamped when it was due
			// on the wall clock (see stamps).
			dt := now.Sub(lastStep).Seconds() * d.sim.Clock.SpeedUp
			due += dt
			if due > maxCatchUp*every {
				// Too late to make up: the car loses the time (stands still).
				due = maxCatchUp * every
				fixWall = now.Add(-d.sim.Clock.Wall(time.Duration(due * float64(time.Second))))
			}
			for due >= every {
				due -= every
				if d.stamps.ahead(now) {
					// Faster than the server's jump rule can follow at
					// this speed-up: the car waits for the wall clock.
					st.C.FixesHeld.Add(1)
				} else {
					d.car.Step(every)
				}
				if fixWall = fixWall.Add(tick); fixWall.After(now) {
					fixWall = now
				}
				d.fix(now, fixWall, !online)
			}
			lastStep = now
			d.act(ctx)
			moving.set(&st.C.DriversMoving, d.car.Speed() > 0.5)
			onTrip.set(&st.C.DriversOnTrip, d.phase != phaseIdle)
			pos := d.car.Pos()
			d.sim.pos[d.index].Store(&pos)
			d.sim.idle[d.index].Store(d.phase == phaseIdle && d.answerAt.IsZero())
			was := online
			var began bool
			online, began = d.link.Step(d.rng, dt)
			if began {
				st.C.Outages.Add(1)
				d.conn.Drop() // a WebSocket goes down with the network and resumes after
			}
			if !online {
				continue
			}
			if len(d.buf) > 0 && (!was || d.now().Sub(lastSend) >= d.beh.BatchEvery) {
				if err := d.conn.Send(ctx, d.buf); err != nil {
					if ctx.Err() == nil && !errors.Is(err, driverlink.ErrThrottled) {
						st.Err(err)
					}
					if len(d.buf) > 5000 { // keep an hour of fixes at most
						d.buf = append(d.buf[:0], d.buf[len(d.buf)-5000:]...)
					}
					continue
				}
				d.buf = d.buf[:0]
				lastSend = d.now()
			}
		}
	}
}

// maxCatchUp bounds the fixes made up for one late tick.
const maxCatchUp = 600

// fix takes a GPS fix of the car, due at wall time at, and queues it for
// upload; now is the wall clock.
func (d *simDriver) fix(now, at time.Time, offline bool) {
	st := d.sim.Stats
	d.seq++
	if d.truth != nil {
		d.truth.put(d.seq, d.car.Pos())
	}
	p, acc, outlier := d.beh.GPS.Fix(d.rng, d.car.Pos())
	ts := d.stamps.stamp(now, at, p, outlier)
	if outlier {
		st.Rejects.Outlier(d.id, d.seq)
	}
	sp, hd := d.car.Speed(), d.car.Heading()
	d.buf = append(d.buf, client.Ping{Lat: p.Lat, Lng: p.Lng, TS: ts, Seq: d.seq, Accuracy: &acc, Speed: &sp, Heading: &hd})
	st.C.PingsSent.Add(1)
	if offline {
		st.C.PingsBuffered.Add(1)
	}
}

// The server refuses a fix implying more than its --max-jump-speed (70 m/s
// by default) from the driver's last accepted fix, beyond 50 m of GPS
// tolerance. A sped-up car covers SpeedUp times more road per wall second
// than a real one, so its fixes can't carry the wall time they were taken
// at and all look plausible; stamps keeps every honest fix within a
// stricter rule than the server's (jumpSpeed, jumpSlack) of the one before.
const (
	jumpSpeed = 65.0 // m/s
	jumpSlack = 45.0 // m
	// holdLead: a car whose stamps run further ahead of the wall clock
	// than this stands still until they are back within it, so at a
	// speed-up and road speed the jump rule can't follow (e.g. 40x on a
	// motorway) the car drives at the fastest pace the server accepts.
	holdLead = 3 * time.Second
	// maxLead bounds how far ahead of the wall clock a stamp may run
	// (the server refuses fixes over 30 s ahead).
	maxLead = 10 * time.Second
)

// stamps chooses the timestamps of one driver's fixes.
//
// A fix is stamped with the wall time it was due, unless that is too soon
// after the driver's last honest fix for the distance between them (a
// sped-up car; GPS jitter on a fast road): then with the earliest time at
// which that distance is plausible. Deliberate outliers are stamped in
// order but are not links of the chain: the server refuses them and keeps
// the fix before. Stamps are whole milliseconds (the server's precision)
// and strictly increase. The lead this builds over the wall clock is paid
// back while the car is slow or stands; past holdLead the car stands (see
// ahead), and no stamp runs more than maxLead ahead.
type stamps struct {
	last     time.Time // the last stamp given
	chainTS  time.Time // the last honest fix
	chainPos geo.Point
}

// ahead: the stamps run more than holdLead ahead of the wall clock now.
func (s *stamps) ahead(now time.Time) bool { return s.last.Sub(now) > holdLead }

func (s *stamps) stamp(now, at time.Time, p geo.Point, outlier bool) time.Time {
	ts := at.Truncate(time.Millisecond)
	if !s.last.IsZero() {
		earliest := s.last.Add(time.Millisecond)
		if !s.chainTS.IsZero() && !outlier {
			if gap := geo.Distance(s.chainPos, p) - jumpSlack; gap > 0 {
				need := s.chainTS.Add(time.Duration(math.Ceil(gap/jumpSpeed*1000)) * time.Millisecond)
				if need.After(earliest) {
					earliest = need
				}
			}
		}
		if ts.Before(earliest) {
			ts = earliest
		}
	}
	if lim := now.Add(maxLead).Truncate(time.Millisecond); ts.After(lim) && lim.After(s.last) {
		ts = lim
	}
	s.last = ts
	if !outlier {
		s.chainTS, s.chainPos = ts, p
	}
	return ts
}

// act moves the driver's plan along: roam, answer a due offer, arrive,
// pick up, complete.
func (d *simDriver) act(ctx context.Context) {
	if !d.answerAt.IsZero() && !d.now().Before(d.answerAt) {
		d.answerAt = time.Time{}
		d.answer(ctx)
	}
	switch d.phase {
	case phaseIdle:
		if d.beh.Roam && d.car.Arrived() {
			_ = d.car.RouteTo(d.sim.Graph.RandomPoint(d.rng))
		}
	case phaseToPickup:
		if d.car.Arrived() {
			if _, err := d.transition(ctx, "arrived"); err != nil {
				return
			}
			d.phase = phaseAtPickup
			d.dwellEnd = d.now().Add(d.beh.PickupDwell)
		}
	case phaseAtPickup:
		if !d.now().Before(d.dwellEnd) {
			if _, err := d.transition(ctx, "pickup"); err != nil {
				return
			}
			d.phase = phaseToDropoff
			d.routeTo(geo.Point{Lat: d.trip.Trip.Dropoff.Lat, Lng: d.trip.Trip.Dropoff.Lng})
		}
	case phaseToDropoff:
		if d.car.Arrived() {
			if _, err := d.transition(ctx, "complete"); err != nil {
				return
			}
			d.idle()
		}
	}
}

func (d *simDriver) routeTo(p geo.Point) {
	if err := d.car.RouteTo(p); err != nil {
		d.sim.Stats.Err(err)
	}
}

func (d *simDriver) idle() {
	d.phase = phaseIdle
	d.trip = client.Snapshot{}
	if d.once && d.doneTrip != nil {
		close(d.doneTrip)
		d.doneTrip = nil
	}
}

// transition posts a driver action. A refusal because the trip moved on
// (cancelled, reassigned) sends the driver back to idle; the error is
// returned either way so the caller stops.
func (d *simDriver) transition(ctx context.Context, action string) (client.Snapshot, error) {
	st := d.sim.Stats
	s, err := d.conn.Act(ctx, d.trip.Trip.ID, action, "")
	if err != nil {
		if ctx.Err() != nil {
			return s, err
		}
		if movedOn(err) {
			// The trip is no longer ours to drive (cancelled, reassigned)
			// or the server already made this move (arrival detection).
			st.C.Requests.Add(1)
			if p, gerr := d.api.GetTrip(ctx, d.trip.Trip.ID, ""); gerr == nil && p.Snapshot.Trip.DriverID == d.id && !Terminal(p.Snapshot.Trip.Status) {
				cur := p.Snapshot
				d.trip = cur
				if statusReached(cur.Trip.Status, action) {
					return cur, nil
				}
			}
			d.idle()
			return s, err
		}
		st.Err(err)
		return s, err
	}
	d.trip = s
	return s, nil
}

// statusReached: the trip already is where action would take it.
func statusReached(status, action string) bool {
	switch action {
	case "arrived":
		return status == StatusArrived || status == StatusInProgress
	case "pickup":
		return status == StatusInProgress
	}
	return false
}

// offer queues an offer's answer after the think time, answering before
// the offer expires.
func (d *simDriver) offer(o offer) {
	d.sim.Stats.C.Offers.Add(1)
	left := time.Duration(math.MaxInt64)
	if !o.expires.IsZero() {
		if left = time.Until(o.expires); left <= 0 {
			d.sim.Stats.C.OffersMissed.Add(1) // replayed after it lapsed: silence is a decline
			return
		}
	}
	if w := d.want.Load(); d.phase != phaseIdle || !d.answerAt.IsZero() || (w != nil && *w != o.trip) {
		d.pending2(o)
		return
	}
	d.pending = o
	think := time.Duration(d.rng.ExpFloat64() * float64(d.beh.AcceptDelay))
	// Wall time left → simulated time: keep a fifth of it in hand.
	if limit := time.Duration(float64(left) * 0.8 * d.sim.Clock.SpeedUp); think > limit && left != time.Duration(math.MaxInt64) {
		think = limit
	}
	d.answerAt = d.now().Add(think)
}

// gauge keeps one driver's contribution (0 or 1) to a fleet gauge.
type gauge bool

func (g *gauge) set(c *atomic.Int64, v bool) {
	if bool(*g) == v {
		return
	}
	*g = gauge(v)
	if v {
		c.Add(1)
	} else {
		c.Add(-1)
	}
}

// pending2 declines an offer the driver can't take (busy).
func (d *simDriver) pending2(o offer) {
	d.sim.Stats.C.OffersDeclined.Add(1)
	if o.id != "" {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = d.conn.Act(ctx, o.trip, "decline", "busy")
		}()
	}
}

func (d *simDriver) answer(ctx context.Context) {
	o := d.pending
	d.pending = offer{}
	st := d.sim.Stats
	if d.phase != phaseIdle {
		d.pending2(o)
		return
	}
	if d.rng.Float64() >= d.beh.AcceptProb {
		st.C.OffersDeclined.Add(1)
		_, _ = d.conn.Act(ctx, o.trip, "decline", "not now")
		if o.id == "" {
			d.sim.dispatchAgain(o.trip, d.id)
		}
		return
	}
	s, err := d.conn.Act(ctx, o.trip, "accept", "")
	if err != nil {
		switch {
		case ctx.Err() != nil:
		case movedOn(err):
			// The offer expired or the trip was cancelled meanwhile.
			st.C.OffersMissed.Add(1)
		default:
			st.Err(fmt.Errorf("accept %s: %w", o.trip, err))
		}
		if o.id == "" && ctx.Err() == nil {
			d.sim.dispatchAgain(o.trip, d.id)
		}
		return
	}
	st.C.TripsAccepted.Add(1)
	d.trip = s
	d.phase = phaseToPickup
	d.routeTo(geo.Point{Lat: s.Trip.Pickup.Lat, Lng: s.Trip.Pickup.Lng})
}

// command handles one command from the server.
func (d *simDriver) command(ctx context.Context, e client.Command) {
	trip := commandTrip(e.Data)
	switch e.Type {
	case "offer":
		if trip != "" {
			var od struct {
				ExpiresAt time.Time `json:"expires_at"`
			}
			_ = json.Unmarshal(e.Data, &od)
			d.offer(offer{trip: trip, id: e.ID, expires: od.ExpiresAt})
		}
	case "trip.cancelled", "trip.reassigned":
		if trip != "" && trip == d.trip.Trip.ID {
			d.idle()
		}
	case "trip.address_changed":
		if trip != "" && trip == d.trip.Trip.ID {
			st := d.sim.Stats
			st.C.Requests.Add(1)
			if p, err := d.api.GetTrip(ctx, trip, ""); err == nil {
				s := p.Snapshot
				d.trip = s
				if d.phase == phaseToDropoff {
					d.routeTo(geo.Point{Lat: s.Trip.Dropoff.Lat, Lng: s.Trip.Dropoff.Lng})
				}
			}
		}
	}
	if e.ID != "" {
		if err := d.conn.Ack(ctx, e.ID); err != nil && ctx.Err() == nil {
			d.sim.Stats.Err(err)
		}
	}
}

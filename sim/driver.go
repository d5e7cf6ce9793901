package sim

import (
	"context"
	"errors"
	"github.com/hextrack/hextrack/sim/zonecheck"
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

// simDriver is one simulated driver: a goroutine stepping a car, taking
// GPS fixes and uploading them over its link; its work (the offers it
// answers, the trip it drives) is its duty's.
type simDriver struct {
	id     string
	conn   DriverConn
	beh    DriverBehaviour
	sim    *Engine
	rng    *rand.Rand
	car    car
	link   Link
	seq    int64
	buf    []client.Ping
	index  int
	stamps stamps
	// truth, if set, records the true position of every fix (replay).
	truth *truthLog
	work  *duty
}

// newDriver is driver i of a run: its car, its link to the server, and its
// duty sharing both (one goroutine, run, drives all of it).
func newDriver(e *Engine, i int, id string, api *client.Client, conn DriverConn, rng *rand.Rand, c car) *simDriver {
	w := &duty{id: id, api: api, conn: conn, beh: e.cfg.Driver, sim: e, rng: rng, car: c, offers: make(chan offer, 4)}
	return &simDriver{id: id, conn: conn, beh: e.cfg.Driver, sim: e, rng: rng, car: c, link: e.cfg.Driver.Link, index: i, work: w}
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
	var auth authGate
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
		case o := <-d.work.offers:
			d.work.offer(o)
		case e := <-d.conn.Commands():
			d.work.command(ctx, e)
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
			d.work.act(ctx)
			moving.set(&st.C.DriversMoving, d.car.Speed() > 0.5)
			onTrip.set(&st.C.DriversOnTrip, d.work.phase != phaseIdle)
			d.sim.fleet.moved(d.index, d.car.Pos(), d.work.free())
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
			if len(d.buf) > 0 && auth.open(now) && (!was || d.now().Sub(lastSend) >= d.beh.BatchEvery) {
				if err := d.conn.Send(ctx, d.buf); err != nil {
					if ctx.Err() == nil && !errors.Is(err, driverlink.ErrThrottled) {
						st.Err(err)
					}
					auth.result(now, err)
					if len(d.buf) > 5000 { // keep an hour of fixes at most
						d.buf = append(d.buf[:0], d.buf[len(d.buf)-5000:]...)
					}
					continue
				}
				d.buf = d.buf[:0]
				lastSend = d.now()
				auth.result(now, nil)
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
	p, acc, ts, outlier := d.stamps.fix(d.rng, d.beh.GPS, d.car.Pos(), now, at)
	if outlier {
		st.Rejects.Outlier(d.id, d.seq)
	} else if z := d.sim.zones; z != nil {
		z.oracle.Fix(d.id, d.seq, ts, zonecheck.Point{Lat: p.Lat, Lng: p.Lng})
	}
	sp, hd := d.car.Speed(), d.car.Heading()
	d.buf = append(d.buf, client.Ping{Lat: p.Lat, Lng: p.Lng, TS: ts, Seq: d.seq, Accuracy: &acc, Speed: &sp, Heading: &hd})
	st.C.PingsSent.Add(1)
	if offline {
		st.C.PingsBuffered.Add(1)
	}
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

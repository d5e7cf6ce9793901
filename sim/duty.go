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
)

// offer is an offer to handle: from the server's command channel, or from
// the simulator's own dispatcher (then ID is empty and nothing is acked).
type offer struct {
	trip    string
	id      string
	expires time.Time // zero: unknown
}

// driverPhase is where a driver is in its trip.
type driverPhase int

const (
	phaseIdle driverPhase = iota
	phaseToPickup
	phaseAtPickup
	phaseToDropoff
)

// duty is a driver's work: the offers it answers (the server's commands,
// or the simulator's own dispatch) and the trip it drives, phase by phase,
// routing the car it shares with its simDriver. Only the driver's
// goroutine touches it, except want (replay).
type duty struct {
	id    string
	api   *client.Client
	conn  DriverConn
	beh   DriverBehaviour
	sim   *Engine
	rng   *rand.Rand
	car   car
	phase driverPhase
	trip  client.Snapshot
	// answerAt is when the pending offer is answered (zero: none).
	answerAt time.Time
	pending  offer
	dwellEnd time.Time
	offers   chan offer // the simulator's own dispatcher
	// once: leave after the first trip (replay)
	once bool
	// want, if set, is the only trip this driver accepts (replay).
	want     atomic.Pointer[string]
	doneTrip chan struct{}
}

func (w *duty) now() time.Time { return w.sim.Clock.Now() }

// free: idle with no offer pending, a candidate for the next offer.
func (w *duty) free() bool { return w.phase == phaseIdle && w.answerAt.IsZero() }

// act moves the driver's plan along: roam, answer a due offer, arrive,
// pick up, complete.
func (w *duty) act(ctx context.Context) {
	if !w.answerAt.IsZero() && !w.now().Before(w.answerAt) {
		w.answerAt = time.Time{}
		w.answer(ctx)
	}
	switch w.phase {
	case phaseIdle:
		if w.beh.Roam && w.car.Arrived() {
			_ = w.car.RouteTo(w.sim.Graph.RandomPoint(w.rng))
		}
	case phaseToPickup:
		if w.car.Arrived() {
			if _, err := w.transition(ctx, "arrived"); err != nil {
				return
			}
			w.phase = phaseAtPickup
			w.dwellEnd = w.now().Add(w.beh.PickupDwell)
		}
	case phaseAtPickup:
		if !w.now().Before(w.dwellEnd) {
			if _, err := w.transition(ctx, "pickup"); err != nil {
				return
			}
			w.phase = phaseToDropoff
			w.routeTo(w.nextStop())
		}
	case phaseToDropoff:
		if w.car.Arrived() && len(w.trip.Trip.Stops) > 2 {
			w.completeStop(ctx) // a multi-stop delivery: stop by stop
			return
		}
		if w.car.Arrived() {
			if _, err := w.transition(ctx, "complete"); err != nil {
				return
			}
			w.idle()
		}
	}
}

// nextStop is where the trip goes next: its first open stop (a ride: the
// dropoff).
func (w *duty) nextStop() geo.Point {
	for _, s := range w.trip.Trip.Stops {
		if s.Status != "completed" && s.Status != "failed" && s.Status != "skipped" {
			return geo.Point{Lat: s.Location.Lat, Lng: s.Location.Lng}
		}
	}
	return geo.Point{Lat: w.trip.Trip.Dropoff.Lat, Lng: w.trip.Trip.Dropoff.Lng}
}

// completeStop completes the trip's next open stop where the car is, with
// the PIN its rider read through the share link; then on to the next one,
// or idle once the trip is complete. A refusal is an error of the run (the
// driver leaves the trip).
func (w *duty) completeStop(ctx context.Context) {
	st := w.sim.Stats
	var stop client.Stop
	for _, s := range w.trip.Trip.Stops {
		if s.Status != "completed" && s.Status != "failed" && s.Status != "skipped" {
			stop = s
			break
		}
	}
	pos := w.car.Pos()
	req := client.CompleteStopRequest{Lat: &pos.Lat, Lng: &pos.Lng}
	if pin, ok := w.sim.pins.Load(w.trip.Trip.ID + "/" + stop.ID); ok {
		req.PIN = pin.(string)
		st.C.PINsEntered.Add(1)
	}
	st.C.Requests.Add(1)
	s, err := w.api.CompleteStop(ctx, w.trip.Trip.ID, stop.ID, req)
	if err != nil {
		var ae *client.Error
		if errors.As(err, &ae) && (ae.Code == "invalid_pin" || ae.Code == "pin_attempts_exhausted") {
			st.C.PINsRefused.Add(1)
		}
		if ctx.Err() == nil && !movedOn(err) {
			st.Err(fmt.Errorf("complete stop %s of %s: %w", stop.ID, w.trip.Trip.ID, err))
		}
		w.idle()
		return
	}
	st.C.StopsCompleted.Add(1)
	w.trip = s
	if Terminal(s.Trip.Status) {
		w.idle()
		return
	}
	w.routeTo(w.nextStop())
}

func (w *duty) routeTo(p geo.Point) {
	if err := w.car.RouteTo(p); err != nil {
		w.sim.Stats.Err(err)
	}
}

func (w *duty) idle() {
	w.phase = phaseIdle
	w.trip = client.Snapshot{}
	if w.once && w.doneTrip != nil {
		close(w.doneTrip)
		w.doneTrip = nil
	}
}

// transition posts a driver action. A refusal because the trip moved on
// (cancelled, reassigned) sends the driver back to idle; the error is
// returned either way so the caller stops.
func (w *duty) transition(ctx context.Context, action string) (client.Snapshot, error) {
	st := w.sim.Stats
	s, err := w.conn.Act(ctx, w.trip.Trip.ID, action, "")
	if err != nil {
		if ctx.Err() != nil {
			return s, err
		}
		if movedOn(err) {
			// The trip is no longer ours to drive (cancelled, reassigned)
			// or the server already made this move (arrival detection).
			st.C.Requests.Add(1)
			if p, gerr := w.api.GetTrip(ctx, w.trip.Trip.ID, ""); gerr == nil && p.Snapshot.Trip.DriverID == w.id && !Terminal(p.Snapshot.Trip.Status) {
				cur := p.Snapshot
				w.trip = cur
				if statusReached(cur.Trip.Status, action) {
					return cur, nil
				}
			}
			w.idle()
			return s, err
		}
		st.Err(err)
		return s, err
	}
	w.trip = s
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
func (w *duty) offer(o offer) {
	w.sim.Stats.C.Offers.Add(1)
	left := time.Duration(math.MaxInt64)
	if !o.expires.IsZero() {
		if left = time.Until(o.expires); left <= 0 {
			w.sim.Stats.C.OffersMissed.Add(1) // replayed after it lapsed: silence is a decline
			return
		}
	}
	if want := w.want.Load(); w.phase != phaseIdle || !w.answerAt.IsZero() || (want != nil && *want != o.trip) {
		w.pending2(o)
		return
	}
	w.pending = o
	think := time.Duration(w.rng.ExpFloat64() * float64(w.beh.AcceptDelay))
	// Wall time left → simulated time: keep a fifth of it in hand.
	if limit := time.Duration(float64(left) * 0.8 * w.sim.Clock.SpeedUp); think > limit && left != time.Duration(math.MaxInt64) {
		think = limit
	}
	w.answerAt = w.now().Add(think)
}

// pending2 declines an offer the driver can't take (busy).
func (w *duty) pending2(o offer) {
	w.sim.Stats.C.OffersDeclined.Add(1)
	if o.id != "" {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = w.conn.Act(ctx, o.trip, "decline", "busy")
		}()
	}
}

func (w *duty) answer(ctx context.Context) {
	o := w.pending
	w.pending = offer{}
	st := w.sim.Stats
	if w.phase != phaseIdle {
		w.pending2(o)
		return
	}
	if w.rng.Float64() >= w.beh.AcceptProb {
		st.C.OffersDeclined.Add(1)
		_, _ = w.conn.Act(ctx, o.trip, "decline", "not now")
		if o.id == "" {
			w.sim.fleet.again(o.trip, w.id)
		}
		return
	}
	s, err := w.conn.Act(ctx, o.trip, "accept", "")
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
			w.sim.fleet.again(o.trip, w.id)
		}
		return
	}
	st.C.TripsAccepted.Add(1)
	w.trip = s
	w.phase = phaseToPickup
	w.routeTo(geo.Point{Lat: s.Trip.Pickup.Lat, Lng: s.Trip.Pickup.Lng})
}

// command handles one command from the server.
func (w *duty) command(ctx context.Context, e client.Command) {
	trip := commandTrip(e.Data)
	switch e.Type {
	case "offer":
		if trip != "" {
			var od struct {
				ExpiresAt time.Time `json:"expires_at"`
			}
			_ = json.Unmarshal(e.Data, &od)
			w.offer(offer{trip: trip, id: e.ID, expires: od.ExpiresAt})
		}
	case "trip.cancelled", "trip.reassigned":
		if trip != "" && trip == w.trip.Trip.ID {
			w.idle()
		}
	case "trip.address_changed":
		if trip != "" && trip == w.trip.Trip.ID {
			st := w.sim.Stats
			st.C.Requests.Add(1)
			if p, err := w.api.GetTrip(ctx, trip, ""); err == nil {
				s := p.Snapshot
				w.trip = s
				if w.phase == phaseToDropoff {
					w.routeTo(geo.Point{Lat: s.Trip.Dropoff.Lat, Lng: s.Trip.Dropoff.Lng})
				}
			}
		}
	}
	if e.ID != "" {
		if err := w.conn.Ack(ctx, e.ID); err != nil && ctx.Err() == nil {
			w.sim.Stats.Err(err)
		}
	}
}

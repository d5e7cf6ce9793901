package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/sim/ridewatch"
)

// Rider transports (package ridewatch follows a trip over each).
const (
	RiderSSE      = ridewatch.SSE
	RiderLongPoll = ridewatch.LongPoll
	RiderPoll     = ridewatch.Poll
)

// RiderBehaviour is how simulated riders act. Times are simulated.
type RiderBehaviour struct {
	Transport     string        // RiderSSE, RiderLongPoll or RiderPoll
	Think         time.Duration // mean wait before each request
	TripMinM      float64       // straight-line pickup→dropoff distance range
	TripMaxM      float64
	DeliveryShare float64       // share of requests that are deliveries
	CancelProb    float64       // chance a rider cancels before pickup
	ChangeProb    float64       // chance a rider changes the dropoff on the way
	ChatProb      float64       // chance a rider sends a chat message once assigned
	ChatEvery     time.Duration // >0: a message this often while on a trip (load)
	GiveUp        time.Duration // stop waiting for a trip's end after this (0: 30 min)
	// Deliveries is how many of the run's first requests are multi-stop
	// deliveries of Stops stops (a pickup, then drops with a PIN each,
	// read by the rider through a share link); Stops zero: 3.
	Deliveries int
	Stops      int
}

type simRider struct {
	id  string
	api *client.Client
	beh RiderBehaviour
	sim *Engine
	rng *rand.Rand
	n   int
	// fixed, if set, is the pickup and dropoff of every request (replay).
	fixed []client.Place
	// created, if set, is told the ID of each new trip.
	created func(id string)
}

func (r *simRider) run(ctx context.Context) {
	clock := r.sim.Clock
	for ctx.Err() == nil {
		think := time.Duration(r.rng.ExpFloat64() * float64(r.beh.Think))
		if !clock.Sleep(ctx, think) {
			return
		}
		r.trip(ctx)
	}
}

// places picks a pickup and a dropoff TripMinM..TripMaxM apart.
func (r *simRider) places() (client.Place, client.Place) {
	if len(r.fixed) == 2 {
		return r.fixed[0], r.fixed[1]
	}
	g := r.sim.Graph
	a := g.RandomPoint(r.rng)
	b := g.RandomPoint(r.rng)
	for i := 0; i < 200; i++ {
		d := geo.Distance(a, b)
		if d >= r.beh.TripMinM && (r.beh.TripMaxM <= 0 || d <= r.beh.TripMaxM) {
			break
		}
		b = g.RandomPoint(r.rng)
	}
	return client.Place{Lat: a.Lat, Lng: a.Lng, Address: "sim pickup"}, client.Place{Lat: b.Lat, Lng: b.Lng, Address: "sim dropoff"}
}

// delivery is a multi-stop delivery request: the pickup, then drops each
// a trip's length from the one before, each with a PIN.
func (r *simRider) delivery(pickup client.Place) client.CreateTripRequest {
	n := r.beh.Stops
	if n < 2 {
		n = 3
	}
	req := client.CreateTripRequest{Kind: "delivery", Payment: "cash",
		Stops: []client.StopInput{{Kind: "pickup", Location: client.LatLng{Lat: pickup.Lat, Lng: pickup.Lng}, Address: pickup.Address}}}
	for range n - 1 {
		_, d := r.places()
		req.Stops = append(req.Stops, client.StopInput{Kind: "drop", Location: client.LatLng{Lat: d.Lat, Lng: d.Lng},
			Address: "sim drop", Proof: &client.StopProof{PIN: true}})
	}
	return req
}

// readPINs reads trip id's PINs as its recipients do, through a share
// link, and hands them to the drivers (Engine.pins).
func (r *simRider) readPINs(ctx context.Context, id string) {
	st := r.sim.Stats
	st.C.Requests.Add(2)
	sh, err := r.api.ShareTrip(ctx, id, 0)
	if err != nil {
		st.Err(fmt.Errorf("share %s: %w", id, err))
		return
	}
	p, err := client.New(r.api.BaseURL(), sh.Token, r.api.HTTPClient()).GetTrip(ctx, id, "")
	if err != nil {
		st.Err(fmt.Errorf("share link of %s: %w", id, err))
		return
	}
	for _, s := range p.Snapshot.Trip.Stops {
		if s.PIN != "" {
			r.sim.pins.Store(id+"/"+s.ID, s.PIN)
			st.C.PINsRead.Add(1)
		}
	}
}

type tripEvent struct {
	Status  string `json:"status"`
	Version int64  `json:"version"`
}

// trip requests one trip and follows it to its end (or the run's end).
func (r *simRider) trip(ctx context.Context) {
	st, clock := r.sim.Stats, r.sim.Clock
	r.n++
	pickup, dropoff := r.places()
	kind := "ride"
	if r.rng.Float64() < r.beh.DeliveryShare {
		kind = "delivery"
	}
	req := client.CreateTripRequest{Kind: kind, Pickup: pickup, Dropoff: dropoff, Payment: "cash"}
	multi := len(r.fixed) == 0 && r.sim.deliveries.Add(-1) >= 0
	if multi {
		req = r.delivery(pickup)
	}
	st.C.Requests.Add(1)
	snap, err := r.api.CreateTrip(ctx, req, fmt.Sprintf("%s-%d", r.id, r.n))
	if err != nil {
		if ctx.Err() == nil {
			st.Err(err)
		}
		return
	}
	st.C.TripsRequested.Add(1)
	id := snap.Trip.ID
	topic := "trip:" + id
	if multi {
		st.C.Deliveries.Add(1)
		r.readPINs(ctx, id)
	}
	if r.created != nil {
		r.created(id)
	}
	r.sim.trips.track(id, r.api)
	if r.sim.cfg.Dispatch == DispatchSim {
		r.sim.fleet.dispatch(id, pickup, "")
	}
	status, version := snap.Trip.Status, snap.Version

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	items := make(chan ridewatch.Item, 256)
	w := &ridewatch.Watcher{Client: r.api, Transport: r.beh.Transport, Trip: id,
		Reconnected: func(err error) {
			st.C.Reconnects.Add(1)
			if err != nil && wctx.Err() == nil {
				st.Err(err)
			}
		}}
	go func() {
		defer close(items)
		err := w.Run(wctx, func(it ridewatch.Item) bool {
			select {
			case items <- it:
				return true
			case <-wctx.Done():
				return false
			}
		})
		if err != nil && wctx.Err() == nil {
			st.Err(fmt.Errorf("watch %s: %w", id, err))
		}
	}()

	now := clock.Now()
	var cancelAt, chatAt time.Time
	if r.rng.Float64() < r.beh.CancelProb {
		cancelAt = now.Add(time.Duration((5 + 55*r.rng.Float64()) * float64(time.Second)))
	}
	changeWanted := r.rng.Float64() < r.beh.ChangeProb && !multi // a delivery's drops stay put
	chatWanted := r.rng.Float64() < r.beh.ChatProb || r.beh.ChatEvery > 0
	giveUp := r.beh.GiveUp
	if giveUp <= 0 {
		giveUp = 30 * time.Minute
	}
	deadline := now.Add(giveUp)
	tick := time.NewTicker(max(clock.Wall(time.Second), 20*time.Millisecond))
	defer tick.Stop()
	started := false
	msgs := 0
	for {
		select {
		case it, ok := <-items:
			if !ok {
				return
			}
			switch it.Kind {
			case ridewatch.ItemSnapshot, ridewatch.ItemReset:
				s := it.Snapshot
				if r.beh.Transport != RiderPoll {
					if !started {
						st.Check.Start(topic, s.FeedPosition)
						started = true
					} else if it.Kind == ridewatch.ItemReset {
						st.Check.Reset(topic, s.FeedPosition)
					}
				}
				if s.Trip.Status != "" {
					status, version = s.Trip.Status, max(version, s.Version)
				}
			case ridewatch.ItemEvent:
				st.C.EventsReceived.Add(1)
				if !started { // long-poll/SSE always start with a snapshot; be safe
					st.Check.Start(topic, "")
					started = true
				}
				st.Check.Observe(topic, it.Event.ID)
				var te tripEvent
				if json.Unmarshal(it.Event.Data, &te) == nil {
					if te.Status != "" {
						status = te.Status
					}
					version = max(version, te.Version)
				}
			case ridewatch.ItemLocation:
				st.C.Locations.Add(1)
				if l := it.Location; l != nil && !l.TS.IsZero() {
					st.Deliver.Observe(it.At.Sub(l.TS))
				}
			}
			if Terminal(status) {
				r.finish(ctx, id, topic, status, items)
				return
			}
		case <-tick.C:
			now := clock.Now()
			if now.After(deadline) {
				return
			}
			switch {
			case !cancelAt.IsZero() && now.After(cancelAt) && beforePickup(status):
				cancelAt = time.Time{}
				st.C.Requests.Add(1)
				if _, err := r.api.CancelTrip(ctx, id, "changed my mind"); err == nil {
					st.C.Cancels.Add(1)
				} else if !isConflict(err) && ctx.Err() == nil {
					st.Err(err)
				}
			case changeWanted && status == StatusInProgress:
				changeWanted = false
				_, nd := r.places()
				st.C.Requests.Add(1)
				if _, err := r.api.ChangeDropoff(ctx, id, nd, version); err == nil {
					st.C.DropoffChanges.Add(1)
				} else if !isConflict(err) && ctx.Err() == nil {
					st.Err(err)
				}
			case chatWanted && (status == StatusAssigned || status == StatusArrived || status == StatusInProgress) &&
				(chatAt.IsZero() || (r.beh.ChatEvery > 0 && now.After(chatAt))):
				if r.beh.ChatEvery <= 0 {
					chatWanted = false
				}
				chatAt = now.Add(r.beh.ChatEvery)
				msgs++
				st.C.Requests.Add(1)
				if _, err := r.api.SendMessage(ctx, id, fmt.Sprintf("m%d", msgs), "on my way down"); err == nil {
					st.C.Messages.Add(1)
				} else if !isConflict(err) && ctx.Err() == nil {
					st.Err(err)
				}
			}
		}
	}
}

// finish counts a trip's outcome, lingers briefly for stragglers (a
// duplicate would show up now), and verifies the events received against
// the server's history.
func (r *simRider) finish(ctx context.Context, id, topic, status string, items <-chan ridewatch.Item) {
	st := r.sim.Stats
	switch status {
	case StatusCompleted:
		st.C.TripsCompleted.Add(1)
	case StatusCancelled:
		st.C.TripsCancelled.Add(1)
	case StatusExpired:
		st.C.TripsExpired.Add(1)
	}
	linger := time.NewTimer(300 * time.Millisecond)
	defer linger.Stop()
	for done := false; !done; {
		select {
		case it, ok := <-items:
			if !ok {
				done = true
			} else if it.Kind == ridewatch.ItemEvent {
				st.C.EventsReceived.Add(1)
				st.Check.Observe(topic, it.Event.ID)
			}
		case <-linger.C:
			done = true
		}
	}
	if r.beh.Transport == RiderPoll {
		r.sim.trips.untrack(id)
		return
	}
	st.Check.Finish(topic)
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.sim.trips.verify(vctx, &st.Check, id, r.api); err != nil {
		st.Err(err)
	}
}

func beforePickup(status string) bool {
	return status == StatusRequested || status == StatusAssigned || status == StatusArrived || status == StatusAwaitingPayment
}

// isConflict: the trip moved on before our action (409/412) — normal in a
// live system, not an error.
func isConflict(err error) bool {
	var ae *client.Error
	return errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusPreconditionFailed)
}

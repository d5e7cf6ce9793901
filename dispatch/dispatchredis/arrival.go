package dispatchredis

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/trip"
)

// Publisher appends a durable event to a feed (feedredis.Broker).
type Publisher interface {
	Publish(ctx context.Context, p feed.Publication) (string, error)
}

// Arrivals detects drivers reaching their pickup. Moves are queued latest
// wins per trip (DriverMoved never blocks the ingest path); one goroutine
// (run by Dispatcher.Run) evaluates them. The dwell state lives in Redis (a
// driver's pings may reach any node), updated by one script per move.
type Arrivals struct {
	rdb   redis.UniversalClient
	trips dispatch.Trips
	pub   Publisher
	est   driver.Estimator // nil: CitySpeed
	cfg   Config
	mu    sync.Mutex
	q     map[string]driver.Move
	wake  chan struct{}
}

var _ driver.Listener = (*Arrivals)(nil)

func newArrivals(rdb redis.UniversalClient, trips dispatch.Trips, pub Publisher, cfg Config) *Arrivals {
	return &Arrivals{rdb: rdb, trips: trips, pub: pub, cfg: cfg, q: map[string]driver.Move{}, wake: make(chan struct{}, 1)}
}

// DriverMoved implements driver.Listener.
func (a *Arrivals) DriverMoved(_ context.Context, m driver.Move) {
	if m.TripID == "" {
		return
	}
	a.mu.Lock()
	if len(a.q) < 100_000 {
		a.q[m.TripID] = m
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *Arrivals) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		}
		a.mu.Lock()
		batch := a.q
		a.q = map[string]driver.Move{}
		a.mu.Unlock()
		for _, m := range batch {
			if err := a.check(ctx, m); err != nil && ctx.Err() == nil {
				a.cfg.Logger.Warn("dispatch: arrival", "trip", m.TripID, "err", err)
			}
		}
	}
}

// arrivalScript keeps the dwell near the pickup with hysteresis.
//
// KEYS: arrival hash. ARGV: ts ms, distance m, arrive m, leave m, dwell ms,
// eta s, arriving s, ttl s. Returns {arrived 0|1, arriving 0|1}.
var arrivalScript = redis.NewScript(`
local ts, dist = tonumber(ARGV[1]), tonumber(ARGV[2])
local arrived, arriving = 0, 0
local since = tonumber(redis.call('HGET', KEYS[1], 'since') or '')
if dist <= tonumber(ARGV[3]) then
  if not since or ts < since then
    since = ts
    redis.call('HSET', KEYS[1], 'since', ts)
  end
  if ts - since >= tonumber(ARGV[5]) then arrived = 1 end
elseif dist > tonumber(ARGV[4]) then
  redis.call('HDEL', KEYS[1], 'since')
end
if tonumber(ARGV[6]) < tonumber(ARGV[7]) and redis.call('HSETNX', KEYS[1], 'arriving', 1) == 1 then
  arriving = 1
end
redis.call('EXPIRE', KEYS[1], ARGV[8])
return {arrived, arriving}`)

func (a *Arrivals) check(ctx context.Context, m driver.Move) error {
	d := a
	t, err := d.trips.ArrivalView(ctx, m.TripID)
	if err != nil {
		return err
	}
	if t.Status != trip.StatusAssigned || t.DriverID != m.DriverID {
		return nil // also a trip that is gone
	}
	pickup := geo.Point{Lat: t.Pickup.Lat, Lng: t.Pickup.Lng}
	dist := geo.Distance(m.Pos, pickup)
	eta := dist / d.cfg.CitySpeed
	if d.est != nil {
		if s, err := d.est.EstimateSeconds(ctx, m.Pos, pickup); err == nil {
			eta = s
		}
	}
	res, err := arrivalScript.Run(ctx, d.rdb, []string{arrivalKey(d.cfg.Prefix, t.ID)},
		m.TS.UnixMilli(), strconv.FormatFloat(dist, 'f', 1, 64), d.cfg.ArriveM, d.cfg.LeaveM,
		d.cfg.Dwell.Milliseconds(), strconv.FormatFloat(eta, 'f', 1, 64), d.cfg.ArrivingETA.Seconds(), 86400).Int64Slice()
	if err != nil {
		return err
	}
	if len(res) == 2 && res[1] == 1 {
		data, _ := json.Marshal(map[string]any{"trip_id": t.ID, "driver_id": m.DriverID,
			"eta_s": math.Round(eta), "distance_m": math.Round(dist)})
		if _, err := d.pub.Publish(ctx, feed.Publication{Topic: trip.Topic(t.ID), Type: dispatch.EventArriving, Data: data,
			Key: "arriving:" + t.ID + ":" + m.DriverID}); err != nil {
			return err
		}
	}
	if len(res) == 2 && res[0] == 1 {
		_, err := d.trips.Act(ctx, t.ID, trip.Actor{Role: trip.RoleSystem}, trip.ActArrived, "detected: within "+
			strconv.FormatFloat(d.cfg.ArriveM, 'f', 0, 64)+" m for "+d.cfg.Dwell.String())
		if err != nil && !errors.Is(err, trip.ErrInvalidTransition) {
			return err
		}
	}
	return nil
}

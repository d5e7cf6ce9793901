package tripredis

import (
	"context"
	"errors"
	"math"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/conflate"
	"github.com/hextrack/hextrack/trip"
)

// StopWatch fires the arrival thresholds of a trip's next open stop as its
// driver moves: stop.approaching once the ETA to it first falls under
// Config.StopApproachingETA (the stop pending → arriving), stop.arrived
// once the driver has been within Config.StopArrivedRadius of it for
// Config.StopArrivedDwell by ping time (→ arrived; leaving 1.5 times the
// radius restarts the dwell). Each fires once per stop: a flag field in the
// trip hash ("sap:<stop>", "sar:<stop>") is set by the script that appends
// the event, so nodes racing on the same trip append it once. It
// implements driver.Listener (DriverMoved only queues, latest wins per
// trip); Run must be running.
type StopWatch struct {
	s   *Stops
	q   *conflate.Queue[driver.Move]
	est driver.Estimator // stop.approaching's ETA; nil: Config.CitySpeed
}

var _ driver.Listener = (*StopWatch)(nil)

func newStopWatch(s *Stops) *StopWatch {
	merge := func(dst *driver.Move, src driver.Move) {
		if dst.TripID == "" || !src.TS.Before(dst.TS) {
			*dst = src
		}
	}
	return &StopWatch{s: s, q: conflate.New(conflate.Config[driver.Move]{Merge: merge, Limit: 100_000})}
}

// DriverMoved queues the move of a driver on a trip; it never blocks.
func (w *StopWatch) DriverMoved(_ context.Context, m driver.Move) {
	if m.TripID == "" || !trip.ValidID(m.TripID) {
		return
	}
	w.q.Put(m.TripID, m, true)
}

// Run checks queued moves until ctx is done.
func (w *StopWatch) Run(ctx context.Context) error {
	w.q.Run(ctx, 4, 32, func(ctx context.Context, batch []conflate.Item[driver.Move]) {
		for _, it := range batch {
			if err := w.check(ctx, it.Job); err != nil && ctx.Err() == nil {
				w.s.cfg.Logger.Warn("trip: stop arrival", "trip", it.Key, "err", err)
			}
		}
	})
	return nil
}

// dwellScript keeps how long the driver has been near a stop.
//
// KEYS: trip hash. ARGV: 1 field, 2 ping ms, 3 distance m, 4 arrive m, 5
// leave m, 6 dwell ms. Returns 1 when the dwell is reached, else 0.
var dwellScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ts, dist = tonumber(ARGV[2]), tonumber(ARGV[3])
local since = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '')
if dist <= tonumber(ARGV[4]) then
  if not since or ts < since then
    since = ts
    redis.call('HSET', KEYS[1], ARGV[1], ts)
  end
  if ts - since >= tonumber(ARGV[6]) then return 1 end
elseif since and dist > tonumber(ARGV[5]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
`)

// maxSpeed (m/s, 90 km/h): a stop farther than the approaching ETA at it
// is not estimated (the estimator routes; every move of a trip comes here).
const maxSpeed = 25

func (w *StopWatch) check(ctx context.Context, m driver.Move) error {
	s := w.s
	key := tripKey(s.cfg.Prefix, m.TripID)
	names := []string{"id", "status", "driver", "stops", "pickup", "dropoff"}
	v, err := s.rdb.HMGet(ctx, key, names...).Result()
	if err != nil {
		return err
	}
	h := map[string]string{}
	for i, x := range v {
		h[names[i]], _ = x.(string)
	}
	t := decodeTrip(h)
	if t.ID == "" || t.DriverID != m.DriverID || !slices.Contains(trip.StopsUnderWay, t.Status) {
		return nil
	}
	i := trip.NextOpen(t.Stops)
	if i < 0 {
		return nil
	}
	st := t.Stops[i]
	dist := geo.Distance(m.Pos, geo.Point{Lat: st.Location.Lat, Lng: st.Location.Lng})
	if st.Status != trip.StopArrived {
		r := s.cfg.StopArrivedRadius
		n, err := dwellScript.Run(ctx, s.rdb, []string{key}, "sdw:"+st.ID, m.TS.UnixMilli(), fmtFloat(dist, 1), r, r*1.5,
			s.cfg.StopArrivedDwell.Milliseconds()).Int()
		if err != nil {
			return err
		}
		if n == 1 {
			return w.fire(ctx, m, st.ID, trip.EventStopArrived, trip.StopArrived, map[string]any{"distance_m": math.Round(dist),
				"dwell_s": s.cfg.StopArrivedDwell.Seconds()})
		}
	}
	limit := s.cfg.StopApproachingETA.Seconds()
	if st.Status != trip.StopPending || dist > limit*maxSpeed {
		return nil
	}
	eta := dist / s.cfg.CitySpeed
	if w.est != nil {
		if e, err := w.est.EstimateSeconds(ctx, m.Pos, geo.Point{Lat: st.Location.Lat, Lng: st.Location.Lng}); err == nil {
			eta = e
		}
	}
	if eta >= limit {
		return nil
	}
	return w.fire(ctx, m, st.ID, trip.EventStopApproaching, trip.StopArriving, map[string]any{"eta_s": math.Round(eta),
		"distance_m": math.Round(dist)})
}

// fire appends typ (stop.approaching or stop.arrived) for stop stopID once,
// and moves the stop to `to` with its stop.status when it is behind.
func (w *StopWatch) fire(ctx context.Context, m driver.Move, stopID, typ, to string, data map[string]any) error {
	flag := "sap:" + stopID
	if typ == trip.EventStopArrived {
		flag = "sar:" + stopID
	}
	_, _, err := w.s.change(ctx, m.TripID, 0, func(t trip.Trip, _ map[string]string) (stopWrite, error) {
		i, err := findStop(t, stopID)
		if err != nil {
			return stopWrite{}, err
		}
		st := t.Stops[i]
		if st.Final() {
			return stopWrite{}, errDup
		}
		data["stop_id"], data["driver_id"] = stopID, m.DriverID
		wr := stopWrite{allowed: trip.StopsUnderWay, driver: m.DriverID, once: flag, events: []stopEvent{{typ, data}}}
		if trip.StopRank(st.Status) < trip.StopRank(to) {
			stops := slices.Clone(t.Stops)
			stops[i].Status = to
			wr.stops = stops
			wr.events = append(wr.events, stopEvent{trip.EventStopStatus, map[string]any{"stop_id": stopID, "kind": st.Kind,
				"from": st.Status, "to": to, "by": trip.RoleSystem}})
		}
		return wr, nil
	})
	var te *trip.TransitionError
	if errors.Is(err, errDup) || errors.Is(err, trip.ErrNotFound) || errors.Is(err, trip.ErrForbidden) || errors.As(err, &te) {
		return nil // fired already, or the trip moved on
	}
	return err
}

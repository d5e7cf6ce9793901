package tripredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hextrack/hextrack/trip"
)

// stopBase is what the changes of stops share: reading a trip, the
// compare-and-commit loop, the stop actions' skeleton and their effect on
// the trip's lifecycle, and the ride's old actions on its stops.
type stopBase struct {
	*base
	store   *Store
	commits *commits
	drivers Drivers
	guard   *stopGuard
}

// load reads trip id with its raw hash.
func (s *stopBase) load(ctx context.Context, id string) (trip.Trip, map[string]string, error) {
	if err := trip.CheckID(id); err != nil {
		return trip.Trip{}, nil, err
	}
	m, err := s.rdb.HGetAll(ctx, tripKey(s.cfg.Prefix, id)).Result()
	if err != nil {
		return trip.Trip{}, nil, fmt.Errorf("trip: get %s: %w", id, err)
	}
	if len(m) == 0 {
		return trip.Trip{}, nil, fmt.Errorf("%w: %s", trip.ErrNotFound, id)
	}
	return decodeTrip(m), m, nil
}

// change reads trip id, builds a change with build and commits it. With
// ifMatch (> 0) the trip must be at that version (a *trip.VersionError
// otherwise, also when another change wins the race); without, a lost
// race is retried on the new state. It returns the trip as read for the
// change that was committed and the ids of its events.
func (s *stopBase) change(ctx context.Context, id string, ifMatch int64,
	build func(t trip.Trip, m map[string]string) (stopWrite, error)) (trip.Trip, []string, error) {
	for try := 0; ; try++ {
		t, m, err := s.load(ctx, id)
		if err != nil {
			return trip.Trip{}, nil, err
		}
		if ifMatch > 0 && t.Version != ifMatch {
			return trip.Trip{}, nil, &trip.VersionError{Want: ifMatch, Current: t.Version}
		}
		w, err := build(t, m)
		if err != nil {
			return trip.Trip{}, nil, err
		}
		w.t = t
		ids, err := s.commitStops(ctx, w)
		var ve *trip.VersionError
		if errors.As(err, &ve) {
			if ifMatch > 0 {
				return trip.Trip{}, nil, &trip.VersionError{Want: ifMatch, Current: ve.Current}
			}
			if try < 8 {
				continue
			}
		}
		return t, ids, err
	}
}

// closeStop is the change that moves stop i of t to `to` (trip.CloseStop)
// with its stop.status event (extra added to its data: reason, override,
// distance_m), and the trip.status of the transition it makes, if any; it
// returns that transition's action ("" none).
func (s *stopBase) closeStop(t trip.Trip, i int, to string, a trip.Actor, extra map[string]any) (stopWrite, string) {
	reason, _ := extra["reason"].(string)
	override, _ := extra["override"].(bool)
	stops, tripTo, action := trip.CloseStop(t, i, to, reason, override, s.now())
	st := stops[i]
	data := map[string]any{"stop_id": st.ID, "kind": st.Kind, "from": t.Stops[i].Status, "to": to, "by": roleName(a.Role)}
	for k, v := range extra {
		data[k] = v
	}
	if st.CompletedAt != nil {
		data["completed_at"] = *st.CompletedAt
	}
	w := stopWrite{stops: stops, to: tripTo, events: []stopEvent{{trip.EventStopStatus, data}}}
	if tripTo != "" {
		w.events = append(w.events, stopEvent{trip.EventStatus, map[string]any{"status": tripTo, "from": t.Status,
			"reason": "stop " + st.ID + " " + to}})
		w.pairs = etaPairs(tripTo, s.now())
	}
	return w, action
}

// stopAct runs an action on stop stopID: check (once, before the change:
// a PIN's attempts are counted there) and build the change (on every
// try). A transition of the trip it makes is told like the lifecycle's
// (count, observers, hook); a completed trip releases its driver.
func (s *stopBase) stopAct(ctx context.Context, id, stopID string, a trip.Actor, allowed []string,
	check func(t trip.Trip, m map[string]string, st trip.Stop) error,
	build func(t trip.Trip, i int) (stopWrite, string)) (trip.Snapshot, error) {
	t, m, err := s.load(ctx, id)
	if err != nil {
		return trip.Snapshot{}, err
	}
	i, err := findStop(t, stopID)
	if err != nil {
		return trip.Snapshot{}, err
	}
	if a.Role == trip.RoleDriver && t.DriverID != a.ID {
		return trip.Snapshot{}, fmt.Errorf("%w: trip %s is not assigned to you", trip.ErrForbidden, id)
	}
	if t.Stops[i].Final() {
		return trip.Snapshot{}, fmt.Errorf("%w: stop %s is %s", trip.ErrStopStatus, stopID, t.Stops[i].Status)
	}
	if err := check(t, m, t.Stops[i]); err != nil {
		return trip.Snapshot{}, err
	}
	var action, to string
	t, ids, err := s.change(ctx, id, 0, func(t trip.Trip, _ map[string]string) (stopWrite, error) {
		i, err := findStop(t, stopID)
		if err != nil {
			return stopWrite{}, err
		}
		if t.Stops[i].Final() {
			return stopWrite{}, fmt.Errorf("%w: stop %s is %s", trip.ErrStopStatus, stopID, t.Stops[i].Status)
		}
		w, act := build(t, i)
		w.allowed = allowed
		if a.Role == trip.RoleDriver {
			w.driver = a.ID
		}
		action, to = act, w.to
		return w, nil
	})
	if err != nil {
		return trip.Snapshot{}, err
	}
	if action != "" && len(ids) > 0 {
		s.commits.count(action, to)
		s.commits.notify(ctx, trip.Change{Trip: t, Action: action, From: t.Status, To: to, OldDriver: t.DriverID, Actor: a,
			EventID: ids[len(ids)-1], At: s.now()})
		if to == trip.StatusCompleted && t.DriverID != "" {
			if err := s.drivers.Release(ctx, t.DriverID, t.ID, ""); err != nil {
				s.cfg.Logger.Warn("trip: release driver", "trip", t.ID, "driver", t.DriverID, "err", err)
			}
		}
	}
	return s.store.Snapshot(ctx, id, a)
}

// legacy runs the ride's pickup and complete actions on a trip's stops:
// pickup completes the first stop when it is an open pickup; complete
// completes the one open stop (trip.ErrStopsPending when more are open)
// with its proof and PIN checks but no geotag (the ride's /complete never
// had one; ops' complete is an override). A transition appends exactly one
// event (trip/doc.go): the stop's change rides in its trip.status as
// "stop". handled is false when no stop changes: the caller makes the
// plain transition.
func (s *stopBase) legacy(ctx context.Context, t trip.Trip, a trip.Actor, rule trip.Rule) (snap trip.Snapshot, handled bool, err error) {
	var open []string
	for _, st := range t.Stops {
		if !st.Final() {
			open = append(open, st.ID)
		}
	}
	if len(open) == 0 || !slices.Contains(rule.From, t.Status) ||
		rule.Action == trip.ActPickup && (t.Stops[0].Final() || t.Stops[0].Kind != trip.StopPickup) {
		return trip.Snapshot{}, false, nil
	}
	check := func(trip.Trip, map[string]string, trip.Stop) error { return nil }
	extra := map[string]any{}
	if rule.Action == trip.ActComplete {
		if len(open) > 1 {
			return trip.Snapshot{}, true, fmt.Errorf("%w: stops %s are open; complete, fail or skip them", trip.ErrStopsPending, strings.Join(open, ", "))
		}
		if a.Role == trip.RoleOps {
			extra["override"] = true
		} else {
			check = func(t trip.Trip, _ map[string]string, st trip.Stop) error {
				if err := s.guard.checkProof(ctx, t, st); err != nil {
					return err
				}
				return s.guard.checkPIN(ctx, t.ID, st.ID, "")
			}
		}
	}
	snap, err = s.stopAct(ctx, t.ID, open[0], a, rule.From, check, func(t trip.Trip, i int) (stopWrite, string) {
		w, _ := s.closeStop(t, i, trip.StopCompleted, a, extra)
		w.action, w.to, w.pairs = rule.Action, rule.To, etaPairs(rule.To, s.now())
		w.events = []stopEvent{{trip.EventStatus, map[string]any{"status": rule.To, "from": t.Status, "stop": w.events[0].data}}}
		return w, rule.Action
	})
	return snap, true, err
}

// changeDropoff is the ride's dropoff change: the last drop stop moves
// with it, conditional on the version read (retried when another change
// won and the client gave no If-Match).
func (s *stopBase) changeDropoff(ctx context.Context, t trip.Trip, a trip.Actor, rule trip.Rule, p trip.Place, ifMatch int64) error {
	for try := 0; ; try++ {
		var pairs []string
		if slices.Contains(rule.From, t.Status) { // else the transition says why not
			var err error
			if pairs, err = dropoffStop(t, p); err != nil {
				return err
			}
		}
		drop, _ := json.Marshal(p)
		want := ifMatch
		if want == 0 {
			want = t.Version
		}
		_, err := s.commits.transition(ctx, t, a, trip.ActDropoff, rule.From, "", "", want,
			map[string]any{"dropoff": p, "by": roleName(a.Role)}, append(append([]string{"dropoff", string(drop)}, etaForgetDropoff...), pairs...)...)
		var ve *trip.VersionError
		if !errors.As(err, &ve) || ifMatch != 0 || try >= 8 {
			return err
		}
		if t, err = s.store.Get(ctx, t.ID); err != nil {
			return err
		}
	}
}

// dropoffStop is the trip hash change that moves t's last drop stop to p
// (trip.ErrStopStatus when it is no longer pending or arriving).
func dropoffStop(t trip.Trip, p trip.Place) ([]string, error) {
	for i := len(t.Stops) - 1; i >= 0; i-- {
		st := t.Stops[i]
		if st.Kind != trip.StopDrop {
			continue
		}
		if st.Status != trip.StopPending && st.Status != trip.StopArriving {
			return nil, fmt.Errorf("%w: the last drop stop %s is %s", trip.ErrStopStatus, st.ID, st.Status)
		}
		stops := slices.Clone(t.Stops)
		stops[i].Location, stops[i].Address = trip.LatLng{Lat: p.Lat, Lng: p.Lng}, p.Address
		b, _ := json.Marshal(stops)
		return []string{"stops", string(b)}, nil
	}
	return nil, nil
}

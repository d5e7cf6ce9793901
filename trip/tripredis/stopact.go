package tripredis

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/trip"
)

// underWay are the trip statuses in which its driver works its stops.
var underWay = []string{trip.StatusAssigned, trip.StatusArrived, trip.StatusInProgress}

// closeStop is the change that moves stop i of t to `to` (completed,
// failed, skipped) with its stop.status event (extra added to its data).
// When no stop is left open the trip completes; a completed pickup picks
// up a trip not yet in progress; either adds its trip.status event and
// returns the lifecycle action ("" none).
func (s *Stops) closeStop(t trip.Trip, i int, to string, a trip.Actor, extra map[string]any) (stopWrite, string) {
	stops := slices.Clone(t.Stops)
	st := stops[i]
	from := st.Status
	st.Status = to
	now := s.now().UTC().Truncate(time.Millisecond)
	if to == trip.StopCompleted {
		st.CompletedAt = &now
	}
	if r, ok := extra["reason"].(string); ok && to == trip.StopFailed {
		st.FailureReason = r
	}
	st.Override, _ = extra["override"].(bool)
	stops[i] = st
	data := map[string]any{"stop_id": st.ID, "kind": st.Kind, "from": from, "to": to, "by": roleName(a.Role)}
	for k, v := range extra {
		data[k] = v
	}
	if st.CompletedAt != nil {
		data["completed_at"] = now
	}
	w := stopWrite{stops: stops, events: []stopEvent{{trip.EventStopStatus, data}}}
	action := ""
	switch {
	case trip.NextOpen(stops) < 0 && slices.Contains(underWay, t.Status):
		w.to, action = trip.StatusCompleted, trip.ActComplete
	case st.Kind == trip.StopPickup && to == trip.StopCompleted && (t.Status == trip.StatusAssigned || t.Status == trip.StatusArrived):
		w.to, action = trip.StatusInProgress, trip.ActPickup
	}
	if w.to != "" {
		w.events = append(w.events, stopEvent{trip.EventStatus, map[string]any{"status": w.to, "from": t.Status,
			"reason": "stop " + st.ID + " " + to}})
		w.pairs = etaPairs(w.to, now)
	}
	return w, action
}

// committed tells of a trip transition a stop change made (count,
// observers, hook) and releases the driver of a completed trip.
func (s *Stops) committed(ctx context.Context, t trip.Trip, a trip.Actor, action, to string, ids []string) {
	if action == "" || len(ids) == 0 {
		return
	}
	s.commits.count(action, to)
	s.commits.notify(ctx, trip.Change{Trip: t, Action: action, From: t.Status, To: to, OldDriver: t.DriverID, Actor: a,
		EventID: ids[len(ids)-1], At: s.now()})
	if to == trip.StatusCompleted && t.DriverID != "" {
		if err := s.drivers.Release(ctx, t.DriverID, t.ID, ""); err != nil {
			s.cfg.Logger.Warn("trip: release driver", "trip", t.ID, "driver", t.DriverID, "err", err)
		}
	}
}

// stopAct runs a driver's or ops' action on stop stopID: check (once,
// before the change: the PIN's attempts are counted there) and build the
// change (on every try).
func (s *Stops) stopAct(ctx context.Context, id, stopID string, a trip.Actor, allowed []string,
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
	s.committed(ctx, t, a, action, to, ids)
	return s.store.Snapshot(ctx, id, a)
}

// Complete completes stop stopID of trip id for its driver (or ops). The
// driver must be within Config.StopCompleteRadius of the stop (by in's
// position, else the driver's last stored fix; trip.ErrTooFar), a drop
// stop's proofs must be uploaded (trip.ErrProofRequired) and its PIN given
// (trip.ErrInvalidPIN, trip.ErrPINExhausted). Ops may complete with
// Override: no check, recorded on the stop and in its event. Completing
// the last open stop completes the trip.
func (s *Stops) Complete(ctx context.Context, id, stopID string, a trip.Actor, in trip.CompleteStop) (trip.Snapshot, error) {
	if err := in.Validate(); err != nil {
		return trip.Snapshot{}, err
	}
	if a.Role != trip.RoleDriver && a.Role != trip.RoleOps && a.Role != trip.RoleSystem {
		return trip.Snapshot{}, fmt.Errorf("%w: only the trip's driver or ops complete a stop", trip.ErrForbidden)
	}
	if in.Override && a.Role == trip.RoleDriver {
		return trip.Snapshot{}, fmt.Errorf("%w: only ops override a stop's checks", trip.ErrForbidden)
	}
	extra := map[string]any{}
	check := func(t trip.Trip, m map[string]string, st trip.Stop) error {
		if in.Override {
			extra["override"] = true
			return nil
		}
		d, err := s.geotag(t, m, st, in)
		if err != nil {
			return err
		}
		extra["distance_m"] = math.Round(d)
		if err := s.checkProof(ctx, t, st); err != nil {
			return err
		}
		return s.checkPIN(ctx, t.ID, st.ID, in.PIN)
	}
	return s.stopAct(ctx, id, stopID, a, underWay, check, func(t trip.Trip, i int) (stopWrite, string) {
		return s.closeStop(t, i, trip.StopCompleted, a, extra)
	})
}

// geotag returns how far the driver is from st: by in's position, else
// the trip's driver's last stored fix; trip.ErrTooFar beyond
// Config.StopCompleteRadius or when no position is known.
func (s *Stops) geotag(t trip.Trip, m map[string]string, st trip.Stop, in trip.CompleteStop) (float64, error) {
	var at geo.Point
	switch {
	case in.Lat != nil:
		at = geo.Point{Lat: *in.Lat, Lng: *in.Lng}
	case m["loc_drv"] != "" && m["loc_drv"] == t.DriverID:
		at.Lat, _ = strconv.ParseFloat(m["loc_lat"], 64)
		at.Lng, _ = strconv.ParseFloat(m["loc_lng"], 64)
	default:
		return 0, fmt.Errorf("%w: no position of the driver is known; send lat and lng", trip.ErrTooFar)
	}
	d := geo.Distance(at, geo.Point{Lat: st.Location.Lat, Lng: st.Location.Lng})
	if r := s.cfg.StopCompleteRadius; d > r {
		return d, fmt.Errorf("%w: %.0f m from stop %s, at most %.0f m", trip.ErrTooFar, d, st.ID, r)
	}
	return d, nil
}

// checkProof: a drop stop's required photo and signature must have been
// uploaded (no ProofFiles: never).
func (s *Stops) checkProof(ctx context.Context, t trip.Trip, st trip.Stop) error {
	if st.Kind != trip.StopDrop || st.Proof == nil {
		return nil
	}
	var missing []string
	for _, k := range []struct {
		kind string
		need bool
	}{{trip.ProofPhoto, st.Proof.Photo}, {trip.ProofSignature, st.Proof.Signature}} {
		if !k.need {
			continue
		}
		ok := false
		if s.proofs != nil {
			var err error
			if ok, err = s.proofs.Has(ctx, t.ID, st.ID, k.kind); err != nil {
				return err
			}
		}
		if !ok {
			missing = append(missing, k.kind)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: stop %s needs a %s uploaded first", trip.ErrProofRequired, st.ID, strings.Join(missing, " and a "))
	}
	return nil
}

// maxReason bounds a failure or skip reason, in bytes.
const maxReason = 200

// Fail marks stop stopID failed (the driver could not deliver), with a
// reason (required); the last open stop failing completes the trip.
func (s *Stops) Fail(ctx context.Context, id, stopID string, a trip.Actor, reason string) (trip.Snapshot, error) {
	if a.Role != trip.RoleDriver && a.Role != trip.RoleOps && a.Role != trip.RoleSystem {
		return trip.Snapshot{}, fmt.Errorf("%w: only the trip's driver or ops fail a stop", trip.ErrForbidden)
	}
	if strings.TrimSpace(reason) == "" || len(reason) > maxReason {
		return trip.Snapshot{}, fmt.Errorf("%w: a reason of 1-%d bytes is required", trip.ErrInvalid, maxReason)
	}
	none := func(trip.Trip, map[string]string, trip.Stop) error { return nil }
	return s.stopAct(ctx, id, stopID, a, underWay, none, func(t trip.Trip, i int) (stopWrite, string) {
		return s.closeStop(t, i, trip.StopFailed, a, map[string]any{"reason": reason})
	})
}

// Skip skips stop stopID (ops, or the trip's rider); skipping the last
// open stop completes a trip under way, and is refused before (cancel the
// trip instead).
func (s *Stops) Skip(ctx context.Context, id, stopID string, a trip.Actor, reason string) (trip.Snapshot, error) {
	if len(reason) > maxReason {
		return trip.Snapshot{}, fmt.Errorf("%w: reason is at most %d bytes", trip.ErrInvalid, maxReason)
	}
	check := func(t trip.Trip, _ map[string]string, st trip.Stop) error {
		if err := mayEdit(a, t); err != nil {
			return err
		}
		open := 0
		for _, x := range t.Stops {
			if !x.Final() {
				open++
			}
		}
		if open == 1 && !slices.Contains(underWay, t.Status) {
			return fmt.Errorf("%w: stop %s is the trip's last open stop; cancel the trip instead", trip.ErrInvalid, st.ID)
		}
		return nil
	}
	extra := map[string]any{}
	if reason != "" {
		extra["reason"] = reason
	}
	return s.stopAct(ctx, id, stopID, a, editable, check, func(t trip.Trip, i int) (stopWrite, string) {
		return s.closeStop(t, i, trip.StopSkipped, a, extra)
	})
}

// DropStop checks that stopID is an open drop stop of trip tripID driven
// by driverID (proof uploads call it): trip.ErrNotFound (no such trip or
// drop stop), trip.ErrForbidden (another driver's), trip.ErrStopStatus
// (completed, failed or skipped).
func (s *Stops) DropStop(ctx context.Context, tripID, stopID, driverID string) error {
	t, _, err := s.load(ctx, tripID)
	if err != nil {
		return err
	}
	i, err := findStop(t, stopID)
	if err != nil {
		return err
	}
	if t.Stops[i].Kind != trip.StopDrop {
		return fmt.Errorf("%w: stop %s of trip %s is not a drop stop", trip.ErrNotFound, stopID, tripID)
	}
	if driverID == "" || t.DriverID != driverID {
		return fmt.Errorf("%w: trip %s is not assigned to you", trip.ErrForbidden, tripID)
	}
	if t.Stops[i].Final() {
		return fmt.Errorf("%w: stop %s is %s", trip.ErrStopStatus, stopID, t.Stops[i].Status)
	}
	return nil
}

// legacy runs the ride's pickup and complete actions on a trip's stops:
// pickup completes the first stop when it is an open pickup; complete
// completes the one open stop (trip.ErrStopsPending when more are open)
// with the stop's proof and PIN checks but no geotag (the ride's
// /complete never had one; ops' complete is an override). handled is false
// when no stop changes: the caller makes the plain transition.
func (s *Stops) legacy(ctx context.Context, t trip.Trip, a trip.Actor, rule trip.Rule) (snap trip.Snapshot, handled bool, err error) {
	open := []int{}
	for i, st := range t.Stops {
		if !st.Final() {
			open = append(open, i)
		}
	}
	if len(open) == 0 || !slices.Contains(rule.From, t.Status) {
		return trip.Snapshot{}, false, nil
	}
	first := t.Stops[open[0]]
	check := func(trip.Trip, map[string]string, trip.Stop) error { return nil }
	extra := map[string]any{}
	switch rule.Action {
	case trip.ActPickup:
		if open[0] != 0 || first.Kind != trip.StopPickup {
			return trip.Snapshot{}, false, nil
		}
	case trip.ActComplete:
		if len(open) > 1 {
			ids := make([]string, len(open))
			for k, i := range open {
				ids[k] = t.Stops[i].ID
			}
			return trip.Snapshot{}, true, fmt.Errorf("%w: stops %s are open; complete, fail or skip them", trip.ErrStopsPending, strings.Join(ids, ", "))
		}
		if a.Role == trip.RoleOps {
			extra["override"] = true
		} else {
			check = func(t trip.Trip, _ map[string]string, st trip.Stop) error {
				if err := s.checkProof(ctx, t, st); err != nil {
					return err
				}
				return s.checkPIN(ctx, t.ID, st.ID, "")
			}
		}
	default:
		return trip.Snapshot{}, false, nil
	}
	snap, err = s.stopAct(ctx, t.ID, first.ID, a, rule.From, check, func(t trip.Trip, i int) (stopWrite, string) {
		// A transition appends exactly one event (trip/doc.go): the
		// stop's change rides in its trip.status as "stop".
		w, _ := s.closeStop(t, i, trip.StopCompleted, a, extra)
		w.action, w.to, w.pairs = rule.Action, rule.To, etaPairs(rule.To, s.now())
		w.events = []stopEvent{{trip.EventStatus, map[string]any{"status": rule.To, "from": t.Status, "stop": w.events[0].data}}}
		return w, rule.Action
	})
	return snap, true, err
}

package tripredis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/hextrack/hextrack/trip"
)

// Stops changes a trip's stops: the rider's and ops' edits of pending
// stops (Add, Remove, Reorder, conditional on If-Match), the driver's
// completion and failure, ops' or the rider's skip. Each change is one
// stopScript (stopcommit.go): the stops, the version and the durable
// events together; the rules of the list are trip's (trip/stoplist.go),
// the checks of a completion stopGuard's (stopguard.go). It is safe for
// concurrent use.
type Stops struct {
	*stopBase
}

// decodeStops reads a trip's stops from its hash (trip.RideStops for a
// trip stored before trips had stops).
func decodeStops(m map[string]string, t trip.Trip) []trip.Stop {
	if raw := m["stops"]; raw != "" {
		var stops []trip.Stop
		if json.Unmarshal([]byte(raw), &stops) == nil {
			return stops
		}
	}
	return trip.RideStops(t)
}

// mayEdit: the trip's rider or ops (or the system) edit stops.
func mayEdit(a trip.Actor, t trip.Trip) error {
	switch a.Role {
	case trip.RoleOps, trip.RoleSystem:
		return nil
	case trip.RoleRider:
		if a.ID != "" && a.ID == t.RiderID {
			return nil
		}
		return fmt.Errorf("%w: trip %s is not yours", trip.ErrForbidden, t.ID)
	}
	return fmt.Errorf("%w: only the trip's rider or ops edit its stops", trip.ErrForbidden)
}

// findStop returns the index of stop id, trip.ErrNotFound if none.
func findStop(t trip.Trip, id string) (int, error) {
	if i := trip.FindStop(t.Stops, id); i >= 0 {
		return i, nil
	}
	return -1, fmt.Errorf("%w: stop %q of trip %s", trip.ErrNotFound, clip(id), t.ID)
}

// endPairs are the hash changes that keep the trip's pickup and dropoff
// the first pickup and the last drop of stops (a new dropoff voids its ETA
// promise).
func endPairs(t trip.Trip, stops []trip.Stop) []string {
	pick, drop := trip.Ends(stops)
	var pairs []string
	if pick != t.Pickup {
		b, _ := json.Marshal(pick)
		pairs = append(pairs, "pickup", string(b))
	}
	if drop != t.Dropoff {
		b, _ := json.Marshal(drop)
		pairs = append(append(pairs, "dropoff", string(b)), etaForgetDropoff...)
	}
	return pairs
}

// stopSeq is the number of the last stop ID given out.
func stopSeq(m map[string]string, t trip.Trip) int {
	if n, err := strconv.Atoi(m["stopseq"]); err == nil {
		return n
	}
	return len(t.Stops)
}

// edit reads trip id, checks a may edit it, builds the new list with
// apply and commits it with one event of type typ (data: what apply
// returns, "by" added), told to the observers and the hook.
func (s *Stops) edit(ctx context.Context, id string, a trip.Actor, ifMatch int64, typ string,
	apply func(t trip.Trip, m map[string]string) ([]trip.Stop, []string, map[string]any, error)) (trip.Snapshot, error) {
	t, ids, err := s.change(ctx, id, ifMatch, func(t trip.Trip, m map[string]string) (stopWrite, error) {
		if err := mayEdit(a, t); err != nil {
			return stopWrite{}, err
		}
		stops, pairs, data, err := apply(t, m)
		if err != nil {
			return stopWrite{}, err
		}
		data["by"] = roleName(a.Role)
		return stopWrite{allowed: trip.StopsEditable, stops: stops, pairs: append(endPairs(t, stops), pairs...),
			events: []stopEvent{{typ, data}}}, nil
	})
	if err != nil {
		return trip.Snapshot{}, err
	}
	// The observers and dispatch hear of it as of an address change: live
	// ETAs estimate again, the driver gets trip.address_changed and a new
	// trip.route.
	s.commits.notify(ctx, trip.Change{Trip: t, Action: trip.ActDropoff, From: t.Status, To: t.Status, OldDriver: t.DriverID,
		Actor: a, EventID: ids[len(ids)-1], At: s.now()})
	return s.store.Snapshot(ctx, id, a)
}

// Add adds a pending stop to trip id at position (nil: last), which must
// not be before a stop that is no longer pending (stop.added). A drop
// whose proof policy asks for a PIN gets one.
func (s *Stops) Add(ctx context.Context, id string, a trip.Actor, in trip.StopInput, position *int, ifMatch int64) (trip.Snapshot, error) {
	if err := in.Validate("stop"); err != nil {
		return trip.Snapshot{}, err
	}
	return s.edit(ctx, id, a, ifMatch, trip.EventStopAdded, func(t trip.Trip, m map[string]string) ([]trip.Stop, []string, map[string]any, error) {
		seq := stopSeq(m, t) + 1
		st := in.Stop("s" + strconv.Itoa(seq))
		stops, at, err := trip.InsertStop(t.Stops, st, position)
		pairs := []string{"stopseq", strconv.Itoa(seq)}
		if st.Proof != nil && st.Proof.PIN {
			pairs = append(pairs, pinPairs(t.ID, st.ID, trip.NewPIN())...)
		}
		return stops, pairs, map[string]any{"stop": st, "position": at}, err
	})
}

// Remove removes pending stop stopID of trip id (stop.removed).
func (s *Stops) Remove(ctx context.Context, id, stopID string, a trip.Actor, ifMatch int64) (trip.Snapshot, error) {
	return s.edit(ctx, id, a, ifMatch, trip.EventStopRemoved, func(t trip.Trip, _ map[string]string) ([]trip.Stop, []string, map[string]any, error) {
		i, err := findStop(t, stopID)
		if err != nil {
			return nil, nil, nil, err
		}
		stops, err := trip.RemoveStop(t.Stops, i)
		return stops, pinPairs(t.ID, stopID, ""), map[string]any{"stop_id": stopID}, err
	})
}

// Reorder puts trip id's pending stops in the order given, which must name
// each of them once; the other stops keep their places (stop.reordered,
// with the whole new order).
func (s *Stops) Reorder(ctx context.Context, id string, a trip.Actor, order []string, ifMatch int64) (trip.Snapshot, error) {
	if len(order) == 0 || len(order) > trip.MaxStops {
		return trip.Snapshot{}, fmt.Errorf("%w: order must name the trip's pending stops", trip.ErrInvalid)
	}
	return s.edit(ctx, id, a, ifMatch, trip.EventStopReordered, func(t trip.Trip, _ map[string]string) ([]trip.Stop, []string, map[string]any, error) {
		stops, err := trip.ReorderStops(t.Stops, order)
		ids := make([]string, len(stops))
		for i, st := range stops {
			ids[i] = st.ID
		}
		return stops, nil, map[string]any{"order": ids}, err
	})
}

// Complete completes stop stopID of trip id for its driver (or ops),
// after stopGuard.check: geotag, proofs, PIN; ops may complete with
// Override (no check, recorded on the stop and in its event). Completing
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
		d, err := s.guard.check(ctx, t, m, st, in)
		extra["distance_m"] = d
		return err
	}
	return s.stopAct(ctx, id, stopID, a, trip.StopsUnderWay, check, func(t trip.Trip, i int) (stopWrite, string) {
		return s.closeStop(t, i, trip.StopCompleted, a, extra)
	})
}

// maxReason bounds a failure or skip reason, in bytes.
const maxReason = 200

// Fail marks stop stopID failed (the driver could not deliver), with a
// reason (required); the last open stop failing completes the trip.
func (s *Stops) Fail(ctx context.Context, id, stopID string, a trip.Actor, reason string) (trip.Snapshot, error) {
	if a.Role != trip.RoleDriver && a.Role != trip.RoleOps && a.Role != trip.RoleSystem {
		return trip.Snapshot{}, fmt.Errorf("%w: only the trip's driver or ops fail a stop", trip.ErrForbidden)
	}
	if len(reason) == 0 || len(reason) > maxReason {
		return trip.Snapshot{}, fmt.Errorf("%w: a reason of 1-%d bytes is required", trip.ErrInvalid, maxReason)
	}
	none := func(trip.Trip, map[string]string, trip.Stop) error { return nil }
	return s.stopAct(ctx, id, stopID, a, trip.StopsUnderWay, none, func(t trip.Trip, i int) (stopWrite, string) {
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
		if trip.OpenStops(t.Stops) == 1 && !slices.Contains(trip.StopsUnderWay, t.Status) {
			return fmt.Errorf("%w: stop %s is the trip's last open stop; cancel the trip instead", trip.ErrInvalid, st.ID)
		}
		return nil
	}
	extra := map[string]any{}
	if reason != "" {
		extra["reason"] = reason
	}
	return s.stopAct(ctx, id, stopID, a, trip.StopsEditable, check, func(t trip.Trip, i int) (stopWrite, string) {
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

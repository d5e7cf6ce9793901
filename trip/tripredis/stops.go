package tripredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/trip"
)

// Stops changes a trip's stops: the rider's and ops' edits of pending
// stops (Add, Remove, Reorder, conditional on If-Match), the driver's
// completion, failure and ops' or the rider's skip (stopact.go), the PINs
// of drop stops (pin.go). Each change is one stopScript: the stops, the
// version and the durable events together. It is safe for concurrent use.
type Stops struct {
	*base
	store   *Store
	commits *commits
	drivers Drivers
	proofs  trip.ProofFiles  // nil: photo and signature proofs are never found
	est     driver.Estimator // stop.approaching's ETA; nil: CitySpeed
}

// editable are the trip statuses in which stops may be edited.
var editable = []string{trip.StatusAwaitingPayment, trip.StatusRequested, trip.StatusAssigned, trip.StatusArrived, trip.StatusInProgress}

// decodeStops reads a trip's stops from its hash; a trip stored before
// trips had stops gets its pickup and dropoff as s1 and s2, their statuses
// from the trip's.
func decodeStops(m map[string]string, t trip.Trip) []trip.Stop {
	if raw := m["stops"]; raw != "" {
		var stops []trip.Stop
		if json.Unmarshal([]byte(raw), &stops) == nil {
			return stops
		}
	}
	if t.Pickup == (trip.Place{}) {
		return nil
	}
	st := func(done bool) string {
		switch {
		case done:
			return trip.StopCompleted
		case trip.Terminal(t.Status):
			return trip.StopSkipped
		}
		return trip.StopPending
	}
	return []trip.Stop{
		{ID: "s1", Kind: trip.StopPickup, Location: trip.LatLng{Lat: t.Pickup.Lat, Lng: t.Pickup.Lng}, Address: t.Pickup.Address,
			Status: st(t.Status == trip.StatusInProgress || t.Status == trip.StatusCompleted)},
		{ID: "s2", Kind: trip.StopDrop, Location: trip.LatLng{Lat: t.Dropoff.Lat, Lng: t.Dropoff.Lng}, Address: t.Dropoff.Address,
			Status: st(t.Status == trip.StatusCompleted)},
	}
}

// load reads trip id with its raw hash.
func (s *Stops) load(ctx context.Context, id string) (trip.Trip, map[string]string, error) {
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
func (s *Stops) change(ctx context.Context, id string, ifMatch int64,
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
	for i, s := range t.Stops {
		if s.ID == id {
			return i, nil
		}
	}
	return -1, fmt.Errorf("%w: stop %q of trip %s", trip.ErrNotFound, clip(id), t.ID)
}

// firstMovable is the index after the last stop that is not pending: the
// stops before it stay where they are.
func firstMovable(stops []trip.Stop) int {
	n := 0
	for i, s := range stops {
		if s.Status != trip.StopPending {
			n = i + 1
		}
	}
	return n
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

// Add adds a pending stop to trip id at position (nil: last), which must
// not be before a stop that is no longer pending.
func (s *Stops) Add(ctx context.Context, id string, a trip.Actor, in trip.StopInput, position *int, ifMatch int64) (trip.Snapshot, error) {
	if err := in.Validate("stop"); err != nil {
		return trip.Snapshot{}, err
	}
	_, _, err := s.change(ctx, id, ifMatch, func(t trip.Trip, m map[string]string) (stopWrite, error) {
		if err := mayEdit(a, t); err != nil {
			return stopWrite{}, err
		}
		if len(t.Stops) >= trip.MaxStops {
			return stopWrite{}, fmt.Errorf("%w: a trip has at most %d stops", trip.ErrInvalid, trip.MaxStops)
		}
		pos, lo := len(t.Stops), firstMovable(t.Stops)
		if position != nil {
			pos = *position
		}
		if pos < lo || pos > len(t.Stops) {
			return stopWrite{}, fmt.Errorf("%w: position must be within [%d, %d]", trip.ErrInvalid, lo, len(t.Stops))
		}
		seq := stopSeq(m, t)
		st := in.Stop("s" + strconv.Itoa(seq+1))
		stops := slices.Insert(slices.Clone(t.Stops), pos, st)
		if err := trip.CheckStops(stops); err != nil {
			return stopWrite{}, err
		}
		pairs := append(endPairs(t, stops), "stopseq", strconv.Itoa(seq+1))
		if st.Proof != nil && st.Proof.PIN {
			pairs = append(pairs, pinPairs(t.ID, st.ID, newPIN())...)
		}
		return stopWrite{allowed: editable, stops: stops, pairs: pairs, events: []stopEvent{{trip.EventStopAdded,
			map[string]any{"stop": st, "position": pos, "by": roleName(a.Role)}}}}, nil
	})
	if err != nil {
		return trip.Snapshot{}, err
	}
	return s.store.Snapshot(ctx, id, a)
}

// stopSeq is the number of the last stop ID given out.
func stopSeq(m map[string]string, t trip.Trip) int {
	if n, err := strconv.Atoi(m["stopseq"]); err == nil {
		return n
	}
	return len(t.Stops)
}

// Remove removes pending stop stopID of trip id.
func (s *Stops) Remove(ctx context.Context, id, stopID string, a trip.Actor, ifMatch int64) (trip.Snapshot, error) {
	_, _, err := s.change(ctx, id, ifMatch, func(t trip.Trip, _ map[string]string) (stopWrite, error) {
		if err := mayEdit(a, t); err != nil {
			return stopWrite{}, err
		}
		i, err := findStop(t, stopID)
		if err != nil {
			return stopWrite{}, err
		}
		if st := t.Stops[i].Status; st != trip.StopPending {
			return stopWrite{}, fmt.Errorf("%w: stop %s is %s; only pending stops are removed", trip.ErrStopStatus, stopID, st)
		}
		stops := slices.Delete(slices.Clone(t.Stops), i, i+1)
		if err := trip.CheckStops(stops); err != nil {
			return stopWrite{}, err
		}
		pairs := append(endPairs(t, stops), pinPairs(t.ID, stopID, "")...)
		return stopWrite{allowed: editable, stops: stops, pairs: pairs, events: []stopEvent{{trip.EventStopRemoved,
			map[string]any{"stop_id": stopID, "by": roleName(a.Role)}}}}, nil
	})
	if err != nil {
		return trip.Snapshot{}, err
	}
	return s.store.Snapshot(ctx, id, a)
}

// Reorder puts trip id's pending stops in the order given, which must name
// each of them once; the other stops keep their places.
func (s *Stops) Reorder(ctx context.Context, id string, a trip.Actor, order []string, ifMatch int64) (trip.Snapshot, error) {
	if len(order) == 0 || len(order) > trip.MaxStops {
		return trip.Snapshot{}, fmt.Errorf("%w: order must name the trip's pending stops", trip.ErrInvalid)
	}
	_, _, err := s.change(ctx, id, ifMatch, func(t trip.Trip, _ map[string]string) (stopWrite, error) {
		if err := mayEdit(a, t); err != nil {
			return stopWrite{}, err
		}
		byID := map[string]trip.Stop{}
		var pending []string
		for _, st := range t.Stops {
			if st.Status == trip.StopPending {
				byID[st.ID] = st
				pending = append(pending, st.ID)
			}
		}
		seen := map[string]bool{}
		for _, sid := range order {
			if _, ok := byID[sid]; !ok || seen[sid] {
				if _, err := findStop(t, sid); err == nil && !seen[sid] {
					return stopWrite{}, fmt.Errorf("%w: stop %s is not pending; only pending stops are reordered", trip.ErrStopStatus, sid)
				}
				return stopWrite{}, fmt.Errorf("%w: order names %q twice or it is no stop of the trip", trip.ErrInvalid, clip(sid))
			}
			seen[sid] = true
		}
		if len(seen) != len(pending) {
			return stopWrite{}, fmt.Errorf("%w: order must name every pending stop (%d) once", trip.ErrInvalid, len(pending))
		}
		stops, k := slices.Clone(t.Stops), 0
		ids := make([]string, len(stops))
		for i, st := range stops {
			if st.Status == trip.StopPending {
				stops[i] = byID[order[k]]
				k++
			}
			ids[i] = stops[i].ID
		}
		if err := trip.CheckStops(stops); err != nil {
			return stopWrite{}, err
		}
		return stopWrite{allowed: editable, stops: stops, pairs: endPairs(t, stops), events: []stopEvent{{trip.EventStopReordered,
			map[string]any{"order": ids, "by": roleName(a.Role)}}}}, nil
	})
	if err != nil {
		return trip.Snapshot{}, err
	}
	return s.store.Snapshot(ctx, id, a)
}

package trip

import (
	"fmt"
	"slices"
	"time"
)

// The rules of a trip's list of stops, in plain Go: tripredis reads the
// list, applies one of these and commits the result conditional on the
// version it read.

// StopsUnderWay are the trip statuses in which its driver works its stops;
// StopsEditable those in which the rider and ops edit them.
var (
	StopsUnderWay = []string{StatusAssigned, StatusArrived, StatusInProgress}
	StopsEditable = []string{StatusAwaitingPayment, StatusRequested, StatusAssigned, StatusArrived, StatusInProgress}
)

// FindStop returns the index of stop id in stops, -1 if none.
func FindStop(stops []Stop, id string) int {
	return slices.IndexFunc(stops, func(s Stop) bool { return s.ID == id })
}

// FirstMovable is the index after the last stop that is not pending: the
// stops before it stay where they are.
func FirstMovable(stops []Stop) int {
	n := 0
	for i, s := range stops {
		if s.Status != StopPending {
			n = i + 1
		}
	}
	return n
}

// InsertStop returns stops with s at pos (nil: last), which must not be
// before a stop that is no longer pending, and where it went.
func InsertStop(stops []Stop, s Stop, pos *int) ([]Stop, int, error) {
	if len(stops) >= MaxStops {
		return nil, 0, fmt.Errorf("%w: a trip has at most %d stops", ErrInvalid, MaxStops)
	}
	at, lo := len(stops), FirstMovable(stops)
	if pos != nil {
		at = *pos
	}
	if at < lo || at > len(stops) {
		return nil, 0, fmt.Errorf("%w: position must be within [%d, %d]", ErrInvalid, lo, len(stops))
	}
	out := slices.Insert(slices.Clone(stops), at, s)
	return out, at, CheckStops(out)
}

// RemoveStop returns stops without pending stop i.
func RemoveStop(stops []Stop, i int) ([]Stop, error) {
	if st := stops[i]; st.Status != StopPending {
		return nil, fmt.Errorf("%w: stop %s is %s; only pending stops are removed", ErrStopStatus, st.ID, st.Status)
	}
	out := slices.Delete(slices.Clone(stops), i, i+1)
	return out, CheckStops(out)
}

// ReorderStops puts the pending stops in order, which must name each of
// them once; the other stops keep their places.
func ReorderStops(stops []Stop, order []string) ([]Stop, error) {
	byID := map[string]Stop{}
	for _, st := range stops {
		if st.Status == StopPending {
			byID[st.ID] = st
		}
	}
	seen := map[string]bool{}
	for _, id := range order {
		if _, ok := byID[id]; !ok || seen[id] {
			if i := FindStop(stops, id); i >= 0 && !seen[id] {
				return nil, fmt.Errorf("%w: stop %s is %s; only pending stops are reordered", ErrStopStatus, id, stops[i].Status)
			}
			return nil, fmt.Errorf("%w: order names %q twice or it is no stop of the trip", ErrInvalid, clipID(id))
		}
		seen[id] = true
	}
	if len(seen) != len(byID) {
		return nil, fmt.Errorf("%w: order must name every pending stop (%d) once", ErrInvalid, len(byID))
	}
	out, k := slices.Clone(stops), 0
	for i, st := range out {
		if st.Status == StopPending {
			out[i] = byID[order[k]]
			k++
		}
	}
	return out, CheckStops(out)
}

func clipID(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// CloseStop moves stop i of t to `to` (completed, failed or skipped) at
// now, and says what it does to the trip: completed when no stop is left
// open (ActComplete), in progress when it was a pickup completed before
// (ActPickup), else nothing ("").
func CloseStop(t Trip, i int, to, reason string, override bool, now time.Time) (stops []Stop, tripTo, action string) {
	stops = slices.Clone(t.Stops)
	st := &stops[i]
	st.Status, st.Override = to, override
	if to == StopCompleted {
		at := now.UTC().Truncate(time.Millisecond)
		st.CompletedAt = &at
	}
	if to == StopFailed {
		st.FailureReason = reason
	}
	switch {
	case NextOpen(stops) < 0 && slices.Contains(StopsUnderWay, t.Status):
		return stops, StatusCompleted, ActComplete
	case st.Kind == StopPickup && to == StopCompleted && (t.Status == StatusAssigned || t.Status == StatusArrived):
		return stops, StatusInProgress, ActPickup
	}
	return stops, "", ""
}

// StopRank orders a stop's statuses: pending, arriving, arrived, then the
// final ones.
func StopRank(status string) int {
	switch status {
	case StopPending:
		return 0
	case StopArriving:
		return 1
	case StopArrived:
		return 2
	}
	return 3
}

// RideStops are the stops of a trip stored before trips had stops: its
// pickup and dropoff as s1 and s2, their statuses from the trip's.
func RideStops(t Trip) []Stop {
	if t.Pickup == (Place{}) {
		return nil
	}
	st := func(done bool) string {
		switch {
		case done:
			return StopCompleted
		case Terminal(t.Status):
			return StopSkipped
		}
		return StopPending
	}
	return []Stop{
		{ID: "s1", Kind: StopPickup, Location: LatLng{Lat: t.Pickup.Lat, Lng: t.Pickup.Lng}, Address: t.Pickup.Address,
			Status: st(t.Status == StatusInProgress || t.Status == StatusCompleted)},
		{ID: "s2", Kind: StopDrop, Location: LatLng{Lat: t.Dropoff.Lat, Lng: t.Dropoff.Lng}, Address: t.Dropoff.Address,
			Status: st(t.Status == StatusCompleted)},
	}
}

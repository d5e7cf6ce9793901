package webhook

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/payment"
	"github.com/hextrack/hextrack/pod"
	"github.com/hextrack/hextrack/trip"
)

// EventTypes are the event types an endpoint can receive: the durable
// events of a trip's feed (topic "trip:<id>"), as the archive holds them.
// trip.location is not one: it is live only, never archived.
var EventTypes = []string{
	trip.EventCreated, trip.EventStatus, trip.EventAssigned, trip.EventCancelled,
	trip.EventAddressChanged, trip.EventMessage, trip.EventETA,
	trip.EventStopAdded, trip.EventStopRemoved, trip.EventStopReordered, trip.EventStopStatus,
	trip.EventStopApproaching, trip.EventStopArrived, pod.EventProof,
	dispatch.EventArriving,
	payment.EventStatus,
}

// Filter is an endpoint's event-type filter: exact types
// ("payment.status") or prefix wildcards ("trip.*", "*"). An event is
// sent when one pattern matches its type.
type Filter []string

// ParseFilter checks patterns: each must be "*", an exact type of
// EventTypes, or "<prefix>.*" matching at least one of them. An empty
// filter is ["*"]. Duplicates are dropped.
func ParseFilter(patterns []string) (Filter, error) {
	if len(patterns) == 0 {
		return Filter{"*"}, nil
	}
	if len(patterns) > 50 {
		return nil, fmt.Errorf("%w: at most 50 patterns", ErrInvalidEventType)
	}
	var f Filter
	for _, p := range patterns {
		if !known(p) {
			return nil, fmt.Errorf("%w: %q: not one of %s, a prefix of them followed by .* or *",
				ErrInvalidEventType, clip(p), strings.Join(EventTypes, ", "))
		}
		if !slices.Contains(f, p) {
			f = append(f, p)
		}
	}
	return f, nil
}

func known(p string) bool {
	if p == "*" || slices.Contains(EventTypes, p) {
		return true
	}
	prefix, ok := strings.CutSuffix(p, "*")
	if !ok || !strings.HasSuffix(prefix, ".") {
		return false
	}
	return slices.ContainsFunc(EventTypes, func(t string) bool { return strings.HasPrefix(t, prefix) })
}

// Match reports whether an event of type typ passes the filter.
func (f Filter) Match(typ string) bool {
	for _, p := range f {
		if p == "*" || p == typ {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(typ, prefix) {
			return true
		}
	}
	return false
}

// clip bounds user input quoted back in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

package sink

import (
	"context"
	"fmt"

	"github.com/hextrack/hextrack/client"
)

// Event is one event of a trip's history: what the gap check compares.
type Event struct {
	ID   string
	Type string
}

// History reads a trip's durable events, oldest first.
type History interface {
	TripEvents(ctx context.Context, tripID string) ([]Event, error)
}

// ServerHistory reads trips' histories from a hextrack server (GET
// /v1/trips/{id}/events, paged): c carries an ops token or an API key with
// trips:read.
type ServerHistory struct{ C *client.Client }

var _ History = ServerHistory{}

// maxHistory bounds the events read of one trip.
const maxHistory = 100_000

// TripEvents pages through the trip's events.
func (h ServerHistory) TripEvents(ctx context.Context, tripID string) ([]Event, error) {
	var out []Event
	after := "" // from the oldest event kept
	for len(out) < maxHistory {
		p, err := h.C.TripEvents(ctx, tripID, after, 1000, 0)
		if err != nil {
			return nil, fmt.Errorf("events after %s: %w", after, err)
		}
		for _, e := range p.Events {
			if e.ID != "" {
				out = append(out, Event{ID: e.ID, Type: e.Type})
			}
		}
		if len(p.Events) == 0 || p.Next == "" || p.Next == after {
			return out, nil
		}
		after = p.Next
	}
	return out, nil
}

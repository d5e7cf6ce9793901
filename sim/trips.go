package sim

import (
	"context"

	"github.com/hextrack/hextrack/client"
)

// Trip statuses the simulator acts on.
const (
	StatusRequested       = "requested"
	StatusAwaitingPayment = "awaiting_payment"
	StatusAssigned        = "driver_assigned"
	StatusArrived         = "driver_arrived"
	StatusInProgress      = "in_progress"
	StatusCompleted       = "completed"
	StatusCancelled       = "cancelled"
	StatusExpired         = "expired"
)

// Terminal reports whether a trip in status can no longer change.
func Terminal(status string) bool {
	return status == StatusCompleted || status == StatusCancelled || status == StatusExpired
}

// History returns the IDs of every durable event the server holds for a
// trip, in order, read page by page (client.TripEvents): the truth the
// Checker verifies against.
func History(ctx context.Context, c *client.Client, id string) ([]string, error) {
	const page = 1000
	var ids []string
	after := "0"
	for {
		p, err := c.TripEvents(ctx, id, after, page, 0)
		if err != nil {
			return ids, err
		}
		for _, e := range p.Events {
			if e.ID != "" {
				ids = append(ids, e.ID)
			}
		}
		if len(p.Events) < page || p.Next == "" || p.Next == after {
			return ids, nil
		}
		after = p.Next
	}
}

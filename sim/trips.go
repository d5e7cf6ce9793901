package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hextrack/hextrack/api/client"
)

// The trip endpoints, spoken through client.Do (the public API only).

// Event is the envelope every transport carries.
type Event struct {
	ID    string          `json:"id,omitempty"`
	Type  string          `json:"type"`
	Topic string          `json:"topic"`
	TS    time.Time       `json:"ts"`
	Data  json.RawMessage `json:"data"`
}

// Place is a pickup or dropoff.
type Place struct {
	Lat     float64 `json:"lat"`
	Lng     float64 `json:"lng"`
	Address string  `json:"address,omitempty"`
}

// Trip is the part of a trip the simulator reads.
type Trip struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Status   string `json:"status"`
	RiderID  string `json:"rider_id"`
	DriverID string `json:"driver_id"`
	Pickup   Place  `json:"pickup"`
	Dropoff  Place  `json:"dropoff"`
	Version  int64  `json:"version"`
}

// Location is a trip's driver position as riders see it.
type Location struct {
	TripID   string    `json:"trip_id"`
	Seq      int64     `json:"seq"`
	DriverID string    `json:"driver_id"`
	Lat      float64   `json:"lat"`
	Lng      float64   `json:"lng"`
	TS       time.Time `json:"ts"`
}

// Snapshot is a trip's full state.
type Snapshot struct {
	Trip         Trip      `json:"trip"`
	Location     *Location `json:"location"`
	Version      int64     `json:"version"`
	FeedPosition string    `json:"feed_position"`
}

// Trip statuses the simulator acts on.
const (
	StatusRequested  = "requested"
	StatusAssigned   = "driver_assigned"
	StatusArrived    = "driver_arrived"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusCancelled  = "cancelled"
	StatusExpired    = "expired"
)

// Terminal reports whether a trip in status can no longer change.
func Terminal(status string) bool {
	return status == StatusCompleted || status == StatusCancelled || status == StatusExpired
}

func tripPath(id string) string { return "/v1/trips/" + url.PathEscape(id) }

// CreateTrip requests a ride or delivery (cash), idempotent by key.
func CreateTrip(ctx context.Context, c *client.Client, key, kind string, pickup, dropoff Place) (Snapshot, error) {
	var s Snapshot
	_, _, err := c.Do(ctx, http.MethodPost, "/v1/trips",
		map[string]any{"kind": kind, "pickup": pickup, "dropoff": dropoff, "payment": "cash"},
		&s, http.Header{"Idempotency-Key": {key}})
	return s, err
}

// GetTrip reads a trip's snapshot.
func GetTrip(ctx context.Context, c *client.Client, id string) (Snapshot, error) {
	var s Snapshot
	_, _, err := c.Do(ctx, http.MethodGet, tripPath(id), nil, &s, nil)
	return s, err
}

// TripAction is a lifecycle action: accept, decline, arrived, pickup,
// complete, cancel.
func TripAction(ctx context.Context, c *client.Client, id, action, reason string) (Snapshot, error) {
	var s Snapshot
	var body any
	if reason != "" {
		body = map[string]string{"reason": reason}
	}
	_, _, err := c.Do(ctx, http.MethodPost, tripPath(id)+"/"+action, body, &s, nil)
	return s, err
}

// ChangeDropoff moves a trip's dropoff if the trip is still at version
// (412 otherwise).
func ChangeDropoff(ctx context.Context, c *client.Client, id string, p Place, version int64) (Snapshot, error) {
	var s Snapshot
	var h http.Header
	if version > 0 {
		h = http.Header{"If-Match": {strconv.FormatInt(version, 10)}}
	}
	_, _, err := c.Do(ctx, http.MethodPost, tripPath(id)+"/dropoff", p, &s, h)
	return s, err
}

// PostMessage sends a chat message (clientID dedupes retries).
func PostMessage(ctx context.Context, c *client.Client, id, clientID, text string) error {
	_, _, err := c.Do(ctx, http.MethodPost, tripPath(id)+"/messages",
		map[string]string{"client_id": clientID, "text": text}, nil, nil)
	return err
}

// Poll is one long-poll (or history) page of a trip's feed.
type Poll struct {
	Events   []Event   `json:"events"`
	Next     string    `json:"next"`
	Location *Location `json:"location"`
}

// PollEvents reads the trip's events after a cursor, waiting up to wait
// for new ones (0: answer at once). A cursor older than retention is a
// *client.Error with status 410 whose Details is a snapshot.
func PollEvents(ctx context.Context, c *client.Client, id, after string, limit int, wait time.Duration) (Poll, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if wait > 0 {
		q.Set("wait", strconv.FormatFloat(wait.Seconds(), 'f', 1, 64))
	}
	var p Poll
	_, _, err := c.Do(ctx, http.MethodGet, tripPath(id)+"/events?"+q.Encode(), nil, &p, nil)
	return p, err
}

// History returns the IDs of every durable event the server holds for a
// trip, in order: the truth the Checker verifies against.
func History(ctx context.Context, c *client.Client, id string) ([]string, error) {
	var ids []string
	after := "0"
	for {
		p, err := PollEvents(ctx, c, id, after, 1000, 0)
		if err != nil {
			return ids, err
		}
		for _, e := range p.Events {
			if e.ID != "" {
				ids = append(ids, e.ID)
			}
		}
		if len(p.Events) < 1000 || p.Next == "" || p.Next == after {
			return ids, nil
		}
		after = p.Next
	}
}

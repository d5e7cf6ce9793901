package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Place is a pickup or dropoff.
type Place struct {
	Lat     float64 `json:"lat"`
	Lng     float64 `json:"lng"`
	Address string  `json:"address,omitempty"`
}

// Trip is a ride or delivery.
type Trip struct {
	ID           string    `json:"id"`
	Kind         string    `json:"kind"`
	Status       string    `json:"status"`
	RiderID      string    `json:"rider_id"`
	DriverID     string    `json:"driver_id"`
	Pickup       Place     `json:"pickup"`
	Dropoff      Place     `json:"dropoff"`
	Stops        []Stop    `json:"stops"`
	Payment      string    `json:"payment"`
	CancelReason string    `json:"cancel_reason"`
	CancelledBy  string    `json:"cancelled_by"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	Version      int64     `json:"version"`
}

// TripLocation is the latest fix of a trip's driver (highest Seq wins).
type TripLocation struct {
	TripID   string    `json:"trip_id,omitempty"`
	Seq      int64     `json:"seq"`
	DriverID string    `json:"driver_id"`
	Lat      float64   `json:"lat"`
	Lng      float64   `json:"lng"`
	TS       time.Time `json:"ts"`
	Heading  *float64  `json:"heading"`
	Speed    *float64  `json:"speed"`
}

// Snapshot is a trip's full state up to FeedPosition.
type Snapshot struct {
	Trip   Trip `json:"trip"`
	Driver *struct {
		ID string `json:"id"`
	} `json:"driver"`
	Location     *TripLocation   `json:"location"`
	ETA          json.RawMessage `json:"eta"`
	Version      int64           `json:"version"`
	FeedPosition string          `json:"feed_position"`
}

// CreateTripRequest is a new trip: a pickup and a dropoff, or Stops.
type CreateTripRequest struct {
	Kind    string      `json:"kind,omitempty"`
	Pickup  Place       `json:"pickup"`
	Dropoff Place       `json:"dropoff"`
	Stops   []StopInput `json:"stops,omitempty"`
	Payment string      `json:"payment,omitempty"`
}

// LatLng is a stop's location.
type LatLng struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// StopProof is a drop stop's proof-of-delivery policy.
type StopProof struct {
	PIN       bool `json:"pin,omitempty"`
	Photo     bool `json:"photo,omitempty"`
	Signature bool `json:"signature,omitempty"`
}

// StopInput is a stop of a create request ("pickup" or "drop").
type StopInput struct {
	Kind     string     `json:"kind"`
	Location LatLng     `json:"location"`
	Address  string     `json:"address,omitempty"`
	Proof    *StopProof `json:"proof,omitempty"`
}

// Stop is one stop of a trip (docs/deliveries.md); PIN is set only for
// the trip's rider and its share links.
type Stop struct {
	ID       string     `json:"id"`
	Kind     string     `json:"kind"`
	Location LatLng     `json:"location"`
	Status   string     `json:"status"`
	Proof    *StopProof `json:"proof"`
	PIN      string     `json:"pin"`
	Override bool       `json:"override"`
}

// CompleteStopRequest completes a stop: where the driver is (nil: its
// last fix), the recipient's PIN, ops' override.
type CompleteStopRequest struct {
	Lat      *float64 `json:"lat,omitempty"`
	Lng      *float64 `json:"lng,omitempty"`
	PIN      string   `json:"pin,omitempty"`
	Override bool     `json:"override,omitempty"`
}

// CompleteStop completes stop stopID of trip id (the trip's driver, or
// ops); completing the last open stop completes the trip.
func (c *Client) CompleteStop(ctx context.Context, id, stopID string, r CompleteStopRequest) (Snapshot, error) {
	return call[Snapshot](ctx, c, http.MethodPost, tripPath(id, "stops", url.PathEscape(stopID), "complete"), r, nil)
}

func tripPath(id string, rest ...string) string {
	p := "/v1/trips/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// CreateTrip creates a trip; with idemKey a retry returns the same trip.
func (c *Client) CreateTrip(ctx context.Context, r CreateTripRequest, idemKey string) (Snapshot, error) {
	h := http.Header{}
	if idemKey != "" {
		h.Set("Idempotency-Key", idemKey)
	}
	return call[Snapshot](ctx, c, http.MethodPost, "/v1/trips", r, h)
}

// Poll is the answer to GetTrip.
type Poll struct {
	Snapshot    Snapshot
	ETag        string
	NotModified bool
	// Every is the server's polling hint (X-Poll-Interval).
	Every time.Duration
}

// GetTrip fetches the snapshot; with etag (from the last Poll) an unchanged
// trip answers NotModified without a body.
func (c *Client) GetTrip(ctx context.Context, id, etag string) (Poll, error) {
	var p Poll
	h := http.Header{}
	if etag != "" {
		h.Set("If-None-Match", etag)
	}
	hdr, status, err := c.Do(ctx, http.MethodGet, tripPath(id), nil, &p.Snapshot, h)
	if err != nil {
		return p, err
	}
	p.ETag = hdr.Get("ETag")
	p.NotModified = status == http.StatusNotModified
	if n, err := strconv.Atoi(hdr.Get("X-Poll-Interval")); err == nil {
		p.Every = time.Duration(n) * time.Second
	}
	return p, nil
}

// TripAction posts a lifecycle action (accept, decline, arrived, pickup,
// complete, cancel, reassign) with an optional reason.
func (c *Client) TripAction(ctx context.Context, id, action, reason string) (Snapshot, error) {
	var body any
	if reason != "" {
		body = map[string]string{"reason": reason}
	}
	return call[Snapshot](ctx, c, http.MethodPost, tripPath(id, action), body, nil)
}

// CancelTrip cancels (or, for its driver, hands back) a trip.
func (c *Client) CancelTrip(ctx context.Context, id, reason string) (Snapshot, error) {
	return c.TripAction(ctx, id, "cancel", reason)
}

// ChangeDropoff changes the dropoff; ifMatch > 0 makes it conditional on
// the trip version (a 412 *Error otherwise).
func (c *Client) ChangeDropoff(ctx context.Context, id string, p Place, ifMatch int64) (Snapshot, error) {
	h := http.Header{}
	if ifMatch > 0 {
		h.Set("If-Match", strconv.FormatInt(ifMatch, 10))
	}
	return call[Snapshot](ctx, c, http.MethodPost, tripPath(id, "dropoff"), p, h)
}

// Posted is the answer to SendMessage.
type Posted struct {
	EventID   string `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
}

// SendMessage posts a chat message; clientID makes retries safe.
func (c *Client) SendMessage(ctx context.Context, id, clientID, text string) (Posted, error) {
	return call[Posted](ctx, c, http.MethodPost, tripPath(id, "messages"), map[string]string{"client_id": clientID, "text": text}, nil)
}

// ShareLink is a viewer link to one trip.
type ShareLink struct {
	ID        string    `json:"id"`
	TripID    string    `json:"trip_id"`
	ExpiresAt time.Time `json:"expires_at"`
	Token     string    `json:"token"`
	URL       string    `json:"url"`
}

// ShareTrip creates a share link (ttl 0: the server's default).
func (c *Client) ShareTrip(ctx context.Context, id string, ttl time.Duration) (ShareLink, error) {
	var body any
	if ttl > 0 {
		body = map[string]string{"ttl": ttl.String()}
	}
	return call[ShareLink](ctx, c, http.MethodPost, tripPath(id, "share"), body, nil)
}

// RevokeShare revokes a share link.
func (c *Client) RevokeShare(ctx context.Context, id, shareID string) error {
	_, _, err := c.Do(ctx, http.MethodDelete, tripPath(id, "share", url.PathEscape(shareID)), nil, nil, nil)
	return err
}

// Event is the envelope of every feed event.
type Event struct {
	ID    string          `json:"id,omitempty"`
	Type  string          `json:"type"`
	Topic string          `json:"topic"`
	TS    time.Time       `json:"ts"`
	Data  json.RawMessage `json:"data"`
}

// EventPage is one long-poll answer.
type EventPage struct {
	Events   []Event       `json:"events"`
	Next     string        `json:"next"`
	Location *TripLocation `json:"location"`
}

// TripEvents long-polls the trip's feed: events after `after` ("" = from
// the oldest retained), at most limit (0: server default), waiting up to
// wait. A cursor too old is an *Error with Status 410 whose Details is a
// Snapshot (see GoneSnapshot).
func (c *Client) TripEvents(ctx context.Context, id, after string, limit int, wait time.Duration) (EventPage, error) {
	q := pageQuery(after, limit, wait)
	return call[EventPage](ctx, c, http.MethodGet, tripPath(id, "events")+"?"+q.Encode(), nil, http.Header{"Accept": {"application/json"}})
}

// pageQuery is the query of a long-poll: after a cursor ("": none), at
// most limit (0: the server's default), waiting up to wait (0: none).
func pageQuery(after string, limit int, wait time.Duration) url.Values {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if wait > 0 {
		q.Set("wait", strconv.FormatFloat(wait.Seconds(), 'f', -1, 64))
	}
	return q
}

// GoneSnapshot returns the snapshot carried by a 410 from TripEvents.
func GoneSnapshot(err error) (Snapshot, bool) {
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusGone {
		return Snapshot{}, false
	}
	var s Snapshot
	return s, json.Unmarshal(e.Details, &s) == nil
}

// Crumb is one breadcrumb.
type Crumb struct {
	Lat float64   `json:"lat"`
	Lng float64   `json:"lng"`
	TS  time.Time `json:"ts"`
}

// TripPath returns the trip's breadcrumbs (limit 0: all kept).
func (c *Client) TripPath(ctx context.Context, id string, limit int) ([]Crumb, error) {
	p := tripPath(id, "path")
	if limit > 0 {
		p += "?limit=" + strconv.Itoa(limit)
	}
	out, err := call[struct {
		Points []Crumb `json:"points"`
	}](ctx, c, http.MethodGet, p, nil, nil)
	return out.Points, err
}

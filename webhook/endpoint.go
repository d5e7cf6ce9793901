package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/hextrack/hextrack/feed"
)

// Endpoint statuses (Endpoint.Status).
const (
	// StatusActive: deliveries are sent; the last attempt succeeded.
	StatusActive = "active"
	// StatusFailing: deliveries are sent, every attempt since FailingSince
	// failed; at Config.PauseAfter of that the endpoint is paused.
	StatusFailing = "failing"
	// StatusPaused: failing for too long, deliveries wait (queued) until
	// ops enable it again (PATCH enabled=true).
	StatusPaused = "paused"
	// StatusDisabled: enabled=false; no event is queued for it.
	StatusDisabled = "disabled"
)

// Endpoint is a receiver of webhooks. Its Secret is returned once, at
// creation; it is never logged (Secret's LogValue) nor sent again.
type Endpoint struct {
	ID      string
	URL     string
	Filter  Filter
	Secret  Secret
	Enabled bool
	Paused  bool
	// FailingSince is the first failed attempt of the current run of
	// failures (zero: the last attempt succeeded).
	FailingSince time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Status is the endpoint's status: one of the Status* constants.
func (e Endpoint) Status() string {
	switch {
	case !e.Enabled:
		return StatusDisabled
	case e.Paused:
		return StatusPaused
	case !e.FailingSince.IsZero():
		return StatusFailing
	}
	return StatusActive
}

// Secret is an endpoint's signing secret, "whsec_<base64 of 32 bytes>"
// (Standard Webhooks' form). It prints and logs as [redacted].
type Secret string

// NewSecret returns a new random secret.
func NewSecret() Secret {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return Secret("whsec_" + base64.StdEncoding.EncodeToString(b[:]))
}

// String keeps the secret out of fmt's output.
func (Secret) String() string { return "[redacted]" }

// LogValue keeps the secret out of logs.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Reveal returns the secret itself: for signing and the one creation
// response.
func (s Secret) Reveal() string { return string(s) }

// NewID returns a new endpoint ID, "we_<24 hex digits>".
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "we_" + hex.EncodeToString(b[:])
}

// Delivery states.
const (
	// StatePending: queued or being retried.
	StatePending = "pending"
	// StateDelivered: the endpoint answered 2xx.
	StateDelivered = "delivered"
	// StateDead: retried for Config.DeadAfter without success; the
	// trip's later events went on.
	StateDead = "dead"
)

// Delivery is one event's delivery to one endpoint: the event and the
// last attempt.
type Delivery struct {
	EndpointID string
	Event      feed.Event
	TripID     string
	State      string
	// Gen counts the replays of this delivery.
	Gen          int64
	Attempts     int64
	FirstAttempt time.Time
	LastAttempt  time.Time
	// StatusCode is the last attempt's HTTP status (0: none, e.g. refused,
	// timed out).
	StatusCode int
	Latency    time.Duration
	Error      string
	// Response is the start of the last answer's body (ResponseCap).
	Response string
	// Done is when it was delivered or dead-lettered.
	Done time.Time
}

// MessageID is the delivery's webhook-id: "<topic>/<event id>", since a
// feed event ID is unique only within its topic (the same as the NATS
// export's Nats-Msg-Id). A retry or replay of an event keeps it.
func MessageID(ev feed.Event) string { return ev.Topic + "/" + ev.ID }

// Body is what a delivery posts: the feed's envelope of the event (as SSE
// and the NATS export send it).
func Body(ev feed.Event) ([]byte, error) {
	if ev.Data == nil {
		ev.Data = json.RawMessage("null")
	}
	return json.Marshal(ev)
}

// Head is the oldest pending delivery of one queue (an endpoint and a
// trip's topic): the only one of the queue that may be sent now.
type Head struct {
	EndpointID string
	Topic      string
	EventID    string
	Gen        int64
}

// Outcome is what one attempt did to a delivery.
type Outcome struct {
	// State is the delivery's new state (State*).
	State  string
	At     time.Time
	Result Result
	// NextAttempt is when a delivery left pending may be tried again
	// (zero: at once).
	NextAttempt time.Time
}

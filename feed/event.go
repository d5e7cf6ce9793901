package feed

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event is the envelope every transport sends, byte for byte:
//
//	{"id":"1732521600000-0","type":"trip.status","topic":"trip:t_123","ts":"2024-11-25T08:00:00.123456789Z","data":{...}}
//
// ID is the Redis Stream ID of a durable event; it is empty (and omitted)
// for live-only messages such as trip.location, which are never stored and
// cannot be resumed. TS is when the publisher created the event; it also
// feeds the publish→delivery lag metric.
type Event struct {
	ID    string          `json:"id,omitempty"`
	Type  string          `json:"type"`
	Topic string          `json:"topic"`
	TS    time.Time       `json:"ts"`
	Data  json.RawMessage `json:"data"`
	// Seq is a live message's sequence (feedredis: hx_publish_live, PublishSeq; a
	// trip.location's position sequence): a receiver drops a message not
	// newer than the last it delivered. 0 for durable events and for live
	// messages sent without one. It is not part of the envelope: a
	// publisher whose clients need it puts it in Data too.
	Seq int64 `json:"-"`
}

// Durable reports whether e is a stored, resumable event (it has an ID).
func (e Event) Durable() bool { return e.ID != "" }

// Item is what a subscription (feedredis.Subscription) delivers: either
// an event, or a reset.
//
// A reset (Reset true) means continuity from the client's last ID cannot be
// proven (the ID was trimmed away, unknown, malformed or from the future, or
// a gap could not be repaired). Position is then the stream's current last
// ID: the receiver takes a fresh snapshot AFTER receiving the reset, sends it
// with Position as its feed position, and keeps consuming; the events that
// follow are exactly those after Position.
type Item struct {
	Event    Event
	Reset    bool
	Position string

	enc []byte // Event's JSON, shared by the subscribers of a live message
}

// JSON returns the event's envelope, exactly json.Marshal(it.Event). A
// message received live is encoded once per node and the bytes are shared
// by every subscriber of its topic: they must not be modified.
func (it Item) JSON() ([]byte, error) {
	if it.enc != nil {
		return it.enc, nil
	}
	return json.Marshal(it.Event)
}

// EncodedItem returns the Item of a live event whose envelope enc was
// already encoded (json.Marshal(ev)) once for every subscriber of its
// topic: JSON returns enc itself, so it must not be modified. A nil enc is
// Item{Event: ev}.
func EncodedItem(ev Event, enc []byte) Item { return Item{Event: ev, enc: enc} }

// Publication is one durable event to publish.
type Publication struct {
	Topic string
	// Type is a short dotted name ("trip.status"): letters, digits, . _ -.
	Type string
	// Data is the event payload; it must be valid JSON. nil means {}.
	Data json.RawMessage
	// Key, if set, makes the publish idempotent: publishing again with the
	// same Topic and Key within the publisher's DedupeTTL
	// (feedredis.Config) returns the first ID and publishes nothing.
	Key string
	// TS is the event time; zero means now.
	TS time.Time
}

// CheckEvent validates an event about to be published: topic (ParseTopic:
// ErrInvalidTopic), typ, a short dotted name like "trip.status" (letters,
// digits, . _ -), and data, which must be valid JSON (else
// ErrInvalidEvent). It returns data, or {} when data is empty.
func CheckEvent(topic, typ string, data json.RawMessage) (json.RawMessage, error) {
	if _, _, err := ParseTopic(topic); err != nil {
		return nil, err
	}
	if !validType(typ) {
		return nil, fmt.Errorf("%w: type %q", ErrInvalidEvent, clip(typ))
	}
	if len(data) == 0 {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("%w: data is not valid JSON", ErrInvalidEvent)
	}
	return data, nil
}

// validType: event types are short dotted names like "trip.status".
func validType(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

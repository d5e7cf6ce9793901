package feed

import (
	"encoding/json"
	"strconv"
	"strings"
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
	// Seq is a live message's sequence (hx_publish_live, PublishSeq; a
	// trip.location's position sequence): a receiver drops a message not
	// newer than the last it delivered. 0 for durable events and for live
	// messages sent without one. It is not part of the envelope: a
	// publisher whose clients need it puts it in Data too.
	Seq int64 `json:"-"`
}

// Durable reports whether e is a stored, resumable event (it has an ID).
func (e Event) Durable() bool { return e.ID != "" }

// Item is what a Subscription delivers: either an event, or a reset.
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

// The pub/sub wire format (internal; written by the Lua publish functions
// hx_publish and hx_publish_live, PublishLive and PublishSeq, read by the
// hub). Fields are newline separated and data, which may contain newlines,
// is last:
//
//	hx1\n<id>\n<prev id>\n<type>\n<ts RFC3339Nano>\n<data JSON>
//
// prev is the stream's last entry before this one (empty if unknown), which
// lets a subscriber prove that a live event directly follows the last one it
// delivered; otherwise it re-reads the stream (gap recovery). A live-only
// message has no id, and its prev field carries its sequence instead
// (Event.Seq; empty: none).
const wireMagic = "hx1"

type wireMsg struct {
	ev      Event
	enc     []byte // json.Marshal(ev), set once when there are subscribers
	id      ID     // parsed ev.ID (durable only)
	prev    ID
	hasPrev bool
}

func encodeWire(id, prev, typ, ts string, data []byte) string {
	var sb strings.Builder
	sb.Grow(len(wireMagic) + len(id) + len(prev) + len(typ) + len(ts) + len(data) + 5)
	sb.WriteString(wireMagic)
	for _, s := range [...]string{id, prev, typ, ts} {
		sb.WriteByte('\n')
		sb.WriteString(s)
	}
	sb.WriteByte('\n')
	sb.Write(data)
	return sb.String()
}

// decodeWire parses a pub/sub payload for topic. ok is false for anything
// malformed (it is then ignored: a durable event it might have been is
// recovered from the stream by the next gap check).
func decodeWire(topic, payload string) (m *wireMsg, ok bool) {
	parts := strings.SplitN(payload, "\n", 6)
	if len(parts) != 6 || parts[0] != wireMagic {
		return nil, false
	}
	ts, err := time.Parse(time.RFC3339Nano, parts[4])
	if err != nil {
		return nil, false
	}
	m = &wireMsg{ev: Event{ID: parts[1], Type: parts[3], Topic: topic, TS: ts, Data: json.RawMessage(parts[5])}}
	if m.ev.ID == "" && parts[2] != "" {
		if m.ev.Seq, err = strconv.ParseInt(parts[2], 10, 64); err != nil {
			return nil, false
		}
	}
	if m.ev.ID != "" {
		if m.id, err = ParseID(m.ev.ID); err != nil {
			return nil, false
		}
		if parts[2] != "" {
			if m.prev, err = ParseID(parts[2]); err != nil {
				return nil, false
			}
			m.hasPrev = true
		}
	}
	return m, true
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

package driverws

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/internal/jsonscan"
	"github.com/hextrack/hextrack/trip"
)

// wsMessage is a client → server message.
type wsMessage struct {
	Type   string          `json:"type"`
	Ref    string          `json:"ref,omitempty"`
	LastID string          `json:"last_id,omitempty"`
	Pings  json.RawMessage `json:"pings,omitempty"`
	ID     string          `json:"id,omitempty"`
	Trip   string          `json:"trip,omitempty"`
	Reason string          `json:"reason,omitempty"`

	// pingsUnchecked: Pings was only delimited, not checked to be valid
	// JSON (decodeWSFast); DecodePingList checks what it decodes.
	pingsUnchecked bool
}

// wsFields are wsMessage's keys.
var wsFields = [...]string{"type", "ref", "last_id", "pings", "id", "trip", "reason"}

// decodeWSFast decodes the common message shape without encoding/json,
// giving what json.Unmarshal gives: plain keys spelled like wsMessage's,
// each once, plain strings (printable ASCII, no escapes) for the string
// fields, an array for pings, which is only delimited (pingsUnchecked) and
// only for a locations message. ok is false for anything else, and
// encoding/json decides. A locations batch is then read once, by
// DecodePingList, instead of three times.
func decodeWSFast(b []byte) (m wsMessage, ok bool) {
	var seen uint8
	s := jsonscan.Open(b)
	for s.Next() {
		var dst *string
		var bit uint8
		switch string(s.Key) {
		case "type":
			bit, dst = 1<<0, &m.Type
		case "ref":
			bit, dst = 1<<1, &m.Ref
		case "last_id":
			bit, dst = 1<<2, &m.LastID
		case "pings":
			bit = 1 << 3
		case "id":
			bit, dst = 1<<4, &m.ID
		case "trip":
			bit, dst = 1<<5, &m.Trip
		case "reason":
			bit, dst = 1<<6, &m.Reason
		default:
			if !s.Ignorable(wsFields[:]) {
				return wsMessage{}, false
			}
			continue
		}
		if seen&bit != 0 {
			return wsMessage{}, false
		}
		seen |= bit
		if dst == nil {
			if s.Kind != jsonscan.Array {
				return wsMessage{}, false
			}
			m.Pings, m.pingsUnchecked = s.Val, true
			continue
		}
		if s.Kind != jsonscan.String || !s.Plain {
			return wsMessage{}, false
		}
		*dst = string(s.Val[1 : len(s.Val)-1])
	}
	if !s.OK() || m.pingsUnchecked && m.Type != "locations" {
		return wsMessage{}, false
	}
	return m, true
}

// MessageError is a client message refused: Code ("invalid_json",
// "invalid_message") and Message are what the client is told, in an
// error reply; the connection stays open.
type MessageError struct {
	Code    string
	Message string
}

func (e *MessageError) Error() string { return e.Code + ": " + e.Message }

func malformedWSMessage() error {
	return &MessageError{Code: "invalid_json", Message: "malformed JSON message"}
}

var wsTripActions = map[string]bool{trip.ActAccept: true, trip.ActDecline: true, trip.ActArrived: true,
	trip.ActPickup: true, trip.ActComplete: true, trip.ActCancel: true}

func invalidMsg(msg string) error {
	return &MessageError{Code: "invalid_message", Message: msg}
}

// decodeWSMessage parses and validates one client message (untrusted).
// Unknown fields are ignored (newer clients), unknown types are errors.
//
// A message decodeWSFast decodes and checkWSMessage accepts is taken as is;
// anything else is decoded again by encoding/json, whose errors are the
// reference.
func decodeWSMessage(b []byte) (wsMessage, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return wsMessage{}, &MessageError{Code: "invalid_json", Message: "a message is one JSON object"}
	}
	if m, ok := decodeWSFast(b); ok {
		if m, err := checkWSMessage(m); err == nil {
			return m, nil
		}
	}
	var m wsMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return wsMessage{}, malformedWSMessage()
	}
	return checkWSMessage(m)
}

// checkWSMessage validates a decoded message.
func checkWSMessage(m wsMessage) (wsMessage, error) {
	if len(m.Ref) > 64 {
		m.Ref = ""
		return m, invalidMsg("ref is at most 64 characters")
	}
	switch {
	case m.Type == "hello":
		if m.LastID != "" {
			if _, err := feed.ParseID(m.LastID); err != nil {
				return m, invalidMsg("last_id must be a command id like 1732521600000-0")
			}
		}
	case m.Type == "locations":
		p := bytes.TrimSpace(m.Pings)
		if len(p) == 0 || p[0] != '[' {
			return m, invalidMsg("locations needs pings: [...]")
		}
	case m.Type == "ack":
		if _, err := feed.ParseID(m.ID); err != nil {
			return m, invalidMsg("ack needs the command id")
		}
	case wsTripActions[m.Type]:
		if !trip.ValidID(m.Trip) {
			return m, invalidMsg(m.Type + " needs trip: the trip id")
		}
		if len(m.Reason) > 200 {
			return m, invalidMsg("reason is at most 200 characters")
		}
	case m.Type == "":
		return m, invalidMsg("type is required")
	default:
		t := m.Type
		if len(t) > 32 {
			t = t[:32]
		}
		return m, invalidMsg(fmt.Sprintf("unknown message type %q", t))
	}
	return m, nil
}

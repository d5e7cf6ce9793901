package trip

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hextrack/hextrack/feed"
)

// MessageRequest is a chat message sent on a trip. ClientID is chosen by the
// sender's app and makes retries safe: the same sender and ClientID give the
// first message's event, nothing new is appended.
type MessageRequest struct {
	ClientID string `json:"client_id"`
	Text     string `json:"text"`
}

// Message is a trip.message event's data.
type Message struct {
	TripID   string    `json:"trip_id"`
	ClientID string    `json:"client_id"`
	From     Sender    `json:"from"`
	Text     string    `json:"text"`
	SentAt   time.Time `json:"sent_at"`
}

// Sender names a message's author.
type Sender struct {
	Role string `json:"role"`
	ID   string `json:"id"`
}

// Posted is the answer to PostMessage: the message's event ID, and whether
// it was a retry of an earlier message (nothing new appended).
type Posted struct {
	EventID   string `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
}

// ValidateMessage checks a chat message: ClientID 1-64 of [A-Za-z0-9_-],
// text valid UTF-8, 1..maxLen characters after trimming, no control
// characters other than newline and tab. It returns the trimmed text.
func ValidateMessage(r MessageRequest, maxLen int) (string, error) {
	if !ValidID(r.ClientID) {
		return "", fmt.Errorf("%w: client_id must be 1-64 characters of [A-Za-z0-9_-]", ErrInvalid)
	}
	if !utf8.ValidString(r.Text) {
		return "", fmt.Errorf("%w: text must be valid UTF-8", ErrInvalid)
	}
	text := strings.TrimSpace(r.Text)
	if text == "" {
		return "", fmt.Errorf("%w: text is empty", ErrInvalid)
	}
	if n := utf8.RuneCountInString(text); n > maxLen {
		return "", fmt.Errorf("%w: text has %d characters, at most %d", ErrInvalid, n, maxLen)
	}
	for _, c := range text {
		if c != '\n' && c != '\t' && (unicode.IsControl(c) || c == '\u2028' || c == '\u2029') {
			return "", fmt.Errorf("%w: text contains control character %U", ErrInvalid, c)
		}
	}
	return text, nil
}

// Chat posts trip messages (trip.message events; no transition).
type Chat struct {
	*base
	store *Store
}

// PostMessage appends a trip.message to the trip's feed. Riders post on
// their trips, drivers on the trips assigned to them, ops on any; not once
// the trip is over (a retry of a message already posted still answers with
// its ID). Messages are not transitions: the version does not change.
func (s *Chat) PostMessage(ctx context.Context, id string, a Actor, r MessageRequest) (Posted, error) {
	if err := CheckID(id); err != nil {
		return Posted{}, err
	}
	text, err := ValidateMessage(r, s.cfg.MaxMessageLen)
	if err != nil {
		return Posted{}, err
	}
	if a.Role != RoleRider && a.Role != RoleDriver && a.Role != RoleOps {
		return Posted{}, fmt.Errorf("%w: %s may not post messages", ErrForbidden, roleName(a.Role))
	}
	t, err := s.store.Get(ctx, id)
	if err != nil {
		return Posted{}, err
	}
	if !canSee(a, t) {
		return Posted{}, fmt.Errorf("%w: trip %s is not yours", ErrForbidden, id)
	}
	now := s.now()
	m := Message{TripID: id, ClientID: r.ClientID, From: Sender{Role: a.Role, ID: a.ID}, Text: text, SentAt: now.UTC()}
	data, _ := json.Marshal(m)
	fkeys, fargs, err := s.feed.PublishParams(feed.Publication{Topic: Topic(id), Type: EventMessage, Data: data,
		Key: "msg\x00" + a.Role + "\x00" + a.ID + "\x00" + r.ClientID, TS: now})
	if err != nil {
		return Posted{}, err
	}
	res, err := runScript(ctx, s.rdb, messageScript, append([]string{tripKey(s.cfg.Prefix, id)}, fkeys...), fargs...)
	if err != nil {
		return Posted{}, fmt.Errorf("trip: message %s: %w", id, err)
	}
	switch res[0] {
	case "ok":
		return Posted{EventID: res[1]}, nil
	case "dup":
		return Posted{EventID: res[1], Duplicate: true}, nil
	case "notfound":
		return Posted{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	case "conflict":
		return Posted{}, &TransitionError{Action: "message", Current: res[1], Version: t.Version}
	}
	return Posted{}, fmt.Errorf("trip: message %s: unexpected reply %v", id, res)
}

package trip

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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

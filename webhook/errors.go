package webhook

import "errors"

// Errors of the webhook endpoints; api's error table maps them.
var (
	// ErrInvalidURL: an endpoint URL that is not an absolute http(s) URL
	// (400 invalid_url).
	ErrInvalidURL = errors.New("invalid webhook url")
	// ErrURLNotAllowed: a URL the delivery policy refuses: plain HTTP
	// outside dev mode, a loopback, private, link-local or cloud metadata
	// address (400 url_not_allowed).
	ErrURLNotAllowed = errors.New("webhook url not allowed")
	// ErrInvalidEventType: a filter naming an event type hextrack never
	// sends (400 invalid_event_type).
	ErrInvalidEventType = errors.New("invalid event type")
	// ErrInvalid: any other bad input: a replay without a starting point,
	// a bad cursor or limit (400 invalid_argument).
	ErrInvalid = errors.New("invalid webhook request")
	// ErrNotFound: no such endpoint (404).
	ErrNotFound = errors.New("webhook endpoint not found")
	// ErrNoStore: this node has no archive open, where endpoints live
	// (503).
	ErrNoStore = errors.New("webhooks need the archive, which this node has not opened; retry shortly")
)

package payment

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a webhook's signature:
//
//	Hextrack-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">
//
// More than one v1 may be given (a gateway rotating its secret signs with
// both); any one valid is enough.
const SignatureHeader = "Hextrack-Signature"

// Webhook event types.
const (
	WebhookSucceeded = "payment.succeeded"
	WebhookFailed    = "payment.failed"
)

// MaxWebhookBody bounds a webhook body, bytes.
const MaxWebhookBody = 64 << 10

// Signature is a parsed Hextrack-Signature header.
type Signature struct {
	T  int64
	V1 [][]byte
}

// maxSignatures bounds the v1 entries checked (each costs one HMAC per
// secret).
const maxSignatures = 8

// ParseSignature parses "t=<unix>,v1=<hex>[,v1=<hex>…]". Unknown keys are
// ignored (future schemes); a missing t or v1, a bad number or bad hex is
// ErrSignature.
func ParseSignature(h string) (Signature, error) {
	var sig Signature
	if h == "" {
		return sig, fmt.Errorf("%w: missing %s header", ErrSignature, SignatureHeader)
	}
	if len(h) > 2048 {
		return sig, fmt.Errorf("%w: header too long", ErrSignature)
	}
	hasT := false
	for part := range strings.SplitSeq(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Signature{}, fmt.Errorf("%w: garbled header", ErrSignature)
		}
		switch k {
		case "t":
			t, err := strconv.ParseInt(v, 10, 64)
			if err != nil || t <= 0 || hasT {
				return Signature{}, fmt.Errorf("%w: bad timestamp", ErrSignature)
			}
			sig.T, hasT = t, true
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return Signature{}, fmt.Errorf("%w: v1 must be 64 hex digits", ErrSignature)
			}
			if len(sig.V1) < maxSignatures {
				sig.V1 = append(sig.V1, b)
			}
		}
	}
	if !hasT || len(sig.V1) == 0 {
		return Signature{}, fmt.Errorf("%w: t and v1 are required", ErrSignature)
	}
	return sig, nil
}

// Sign returns the Hextrack-Signature value of body signed with secret at t
// (the gateway side; tests and drivesim gateway use it).
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks header against body: well formed, its timestamp
// within tolerance of now (either way: an old one is a replay), and one v1
// equal, in constant time, to the HMAC with one of secrets.
func VerifySignature(header string, body []byte, secrets [][]byte, now time.Time, tolerance time.Duration) error {
	sig, err := ParseSignature(header)
	if err != nil {
		return err
	}
	age := now.Sub(time.Unix(sig.T, 0))
	if age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: timestamp outside the %s tolerance", ErrSignature, tolerance)
	}
	ts := strconv.FormatInt(sig.T, 10)
	ok := false
	for _, s := range secrets {
		want := mac(s, ts, body)
		for _, got := range sig.V1 {
			// Every comparison runs: no early exit tells which matched.
			if hmac.Equal(want, got) {
				ok = true
			}
		}
	}
	if !ok {
		return fmt.Errorf("%w: no signature matches", ErrSignature)
	}
	return nil
}

// WebhookEvent is a gateway event:
//
//	{"id":"evt_…","type":"payment.succeeded"|"payment.failed","created":<unix>,
//	 "data":{"payment_id":"…","amount":…,"currency":"…"}}
//
// Unknown fields are allowed (gateways add fields); the raw body is what is
// stored.
type WebhookEvent struct {
	ID      string      `json:"id"`
	Type    string      `json:"type"`
	Created int64       `json:"created"`
	Data    WebhookData `json:"data"`
}

// WebhookData is the payment an event is about. Amount is in minor units.
type WebhookData struct {
	PaymentID string `json:"payment_id"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
}

var (
	eventIDPattern  = regexp.MustCompile(`^evt_[A-Za-z0-9_-]{1,120}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// ParseEvent decodes and validates a webhook body; anything else is
// ErrInvalidEvent (400).
func ParseEvent(body []byte) (WebhookEvent, error) {
	var e WebhookEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&e); err != nil {
		return WebhookEvent{}, fmt.Errorf("%w: malformed JSON", ErrInvalidEvent)
	}
	if dec.More() {
		return WebhookEvent{}, fmt.Errorf("%w: trailing data after the JSON value", ErrInvalidEvent)
	}
	switch {
	case !eventIDPattern.MatchString(e.ID):
		return WebhookEvent{}, fmt.Errorf("%w: id must be evt_ and 1-120 of [A-Za-z0-9_-]", ErrInvalidEvent)
	case e.Type != WebhookSucceeded && e.Type != WebhookFailed:
		return WebhookEvent{}, fmt.Errorf("%w: type must be %s or %s", ErrInvalidEvent, WebhookSucceeded, WebhookFailed)
	case e.Created <= 0:
		return WebhookEvent{}, fmt.Errorf("%w: created must be a unix time", ErrInvalidEvent)
	case !paymentIDPattern.MatchString(e.Data.PaymentID):
		return WebhookEvent{}, fmt.Errorf("%w: data.payment_id is not a payment id", ErrInvalidEvent)
	case e.Data.Amount < 0:
		return WebhookEvent{}, fmt.Errorf("%w: data.amount must not be negative", ErrInvalidEvent)
	case !currencyPattern.MatchString(e.Data.Currency):
		return WebhookEvent{}, fmt.Errorf("%w: data.currency must be an ISO 4217 code", ErrInvalidEvent)
	}
	return e, nil
}

// Webhook outcomes: what a verified event did.
const (
	// OutcomeApplied: the event made the pending payment final (and moved
	// the trip, if it was still awaiting payment).
	OutcomeApplied = "applied"
	// OutcomeDuplicate: the event ID was seen before; nothing changed.
	OutcomeDuplicate = "duplicate"
	// OutcomeIgnored: the payment was already final with the same status.
	OutcomeIgnored = "ignored"
	// OutcomeConflict: the payment was already final with the other
	// status: a final status never reverts; the event is stored for ops
	// (e.g. to refund).
	OutcomeConflict = "conflict"
	// OutcomeMismatch: amount or currency differ from the payment's; the
	// payment stays pending.
	OutcomeMismatch = "mismatch"
)

// WebhookResult says what a webhook did.
type WebhookResult struct {
	EventID   string `json:"event_id"`
	PaymentID string `json:"payment_id"`
	Outcome   string `json:"outcome"`
	// Status is the payment's status after the event.
	Status string `json:"status"`
	// TripStatus is the trip's status after an applied event ("" if the
	// trip was not awaiting payment any more and so did not move).
	TripStatus string `json:"trip_status,omitempty"`
}

// StoredEvent is one webhook event as received: its arrival order, time,
// outcome and the raw body.
type StoredEvent struct {
	Seq      int64           `json:"seq"`
	Received time.Time       `json:"received"`
	Outcome  string          `json:"outcome"`
	Event    json.RawMessage `json:"event"`
}

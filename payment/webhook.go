package payment

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/internal/rscript"
	"github.com/hextrack/hextrack/trip"
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

// Webhook verifies a gateway webhook (header, raw body) and applies it.
//
// Ordering rule: the first verified final event of a pending payment wins
// and a final status never reverts. Any later event for a final payment is
// stored and acknowledged but changes nothing (outcome ignored, or conflict
// when it says the opposite). Events are deduplicated by ID: a redelivery
// changes nothing and gets the first outcome's payment status.
//
// An applied event changes, in ONE script on the trip's slot, the payment,
// the trip (awaiting_payment → requested on success, → cancelled on
// failure) and appends payment.status (and the trip's status event) to the
// trip's feed. Dispatch is then told about the requested trip.
func (p *Service) Webhook(ctx context.Context, header string, body []byte) (WebhookResult, error) {
	now := p.cfg.Now()
	if err := VerifySignature(header, body, p.cfg.Secrets, now, p.cfg.Tolerance); err != nil {
		return WebhookResult{}, err
	}
	ev, err := ParseEvent(body)
	if err != nil {
		return WebhookResult{}, err
	}
	tripID, _ := TripOf(ev.Data.PaymentID)
	status, tripTo, action := StatusSucceeded, trip.StatusRequested, trip.ActPaid
	if ev.Type == WebhookFailed {
		status, tripTo, action = StatusFailed, trip.StatusCancelled, trip.ActUnpaid
	}
	// Event data: the script fills the versions (first placeholders, so no
	// text of ours can be taken for one).
	payData, _ := json.Marshal(map[string]any{"payment_id": ev.Data.PaymentID, "trip_id": tripID, "status": status,
		"amount": ev.Data.Amount, "currency": ev.Data.Currency, "event_id": ev.ID})
	tripBody := map[string]any{"trip_id": tripID, "status": tripTo, "payment_id": ev.Data.PaymentID}
	if tripTo == trip.StatusCancelled {
		tripBody["by"], tripBody["reason"] = trip.RoleSystem, "payment failed"
	}
	tripRest, _ := json.Marshal(tripBody)
	pk, pargs, err := p.feed.PublishParams(feed.Publication{Topic: trip.Topic(tripID), Type: EventStatus, TS: now})
	if err != nil {
		return WebhookResult{}, err
	}
	_, targs, err := p.feed.PublishParams(feed.Publication{Topic: trip.Topic(tripID), Type: trip.EventType(action, tripTo), TS: now})
	if err != nil {
		return WebhookResult{}, err
	}
	args := []any{ev.ID, status, ev.Data.Amount, ev.Data.Currency, nowMS(now), p.ttl(), string(body),
		`{"version":__VERSION__,` + string(payData[1:]), `{"version":__VERSION__,"from":"__FROM__",` + string(tripRest[1:]),
		tripTo, ev.Data.PaymentID}
	args = append(append(args, pargs...), targs...)
	keys := append([]string{p.trips.Key(tripID), paymentKey(p.cfg.Prefix, tripID),
		paymentEventsKey(p.cfg.Prefix, tripID)}, pk...)
	res, err := rscript.Run(ctx, p.rdb, paymentWebhookScript, keys, args...)
	if err != nil {
		return WebhookResult{}, fmt.Errorf("payment: webhook %s: %w", ev.ID, err)
	}
	r := WebhookResult{EventID: ev.ID, PaymentID: ev.Data.PaymentID, Outcome: res[0]}
	if r.Outcome == "unknown" {
		return WebhookResult{}, fmt.Errorf("%w: %s", ErrNotFound, ev.Data.PaymentID)
	}
	if len(res) > 1 {
		r.Status = res[1]
	}
	if r.Outcome != OutcomeApplied {
		if r.Outcome != OutcomeDuplicate {
			p.cfg.Logger.Info("payment: payment webhook changed nothing", "event", ev.ID, "payment", ev.Data.PaymentID,
				"type", ev.Type, "outcome", r.Outcome, "status", r.Status)
		}
		return r, nil
	}
	// res: applied, status, payment version, trip event id ("" if the trip
	// did not move), old trip status, new trip version.
	if len(res) >= 6 && res[3] != "" {
		r.TripStatus = tripTo
		tver, _ := strconv.ParseInt(res[5], 10, 64)
		if t, err := p.trips.Get(ctx, tripID); err == nil {
			t.Status, t.Version = res[4], tver-1 // as it was before, for the hook
			p.trips.Changed(ctx, trip.Change{Trip: t, Action: action, From: res[4], To: tripTo,
				Actor: trip.Actor{Role: trip.RoleSystem, ID: "payments"}, EventID: res[3]}) // dispatch starts on requested
		} else {
			p.cfg.Logger.Warn("payment: payment applied, trip unreadable for dispatch", "trip", tripID, "err", err)
		}
	}
	return r, nil
}

// Events returns the webhook events stored for payment id, in arrival
// order (ops and tests; no authorization here).
func (p *Service) Events(ctx context.Context, id string) ([]StoredEvent, error) {
	tripID, ok := TripOf(id)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, clip(id))
	}
	m, err := p.rdb.HGetAll(ctx, paymentEventsKey(p.cfg.Prefix, tripID)).Result()
	if err != nil {
		return nil, fmt.Errorf("payment: payment events %s: %w", id, err)
	}
	out := make([]StoredEvent, 0, len(m))
	for _, v := range m {
		var raw struct {
			Seq      int64           `json:"seq"`
			Received int64           `json:"received"`
			Outcome  string          `json:"outcome"`
			Event    json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal([]byte(v), &raw); err != nil {
			return nil, fmt.Errorf("payment: payment events %s: %w", id, err)
		}
		out = append(out, StoredEvent{Seq: raw.Seq, Received: time.UnixMilli(raw.Received).UTC(), Outcome: raw.Outcome, Event: raw.Event})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

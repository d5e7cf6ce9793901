package paymentredis

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/internal/rscript"
	"github.com/hextrack/hextrack/payment"
	"github.com/hextrack/hextrack/trip"
)

// Webhooks applies the payment gateway's verified events to payments and
// their trips and keeps every verified event (Service creates payments
// and serves them). It is safe for concurrent use.
type Webhooks struct {
	rdb   redis.UniversalClient
	feed  Feed
	trips payment.Trips
	cfg   Config
}

// NewWebhooks returns the webhook door of the payments of trips, stored
// in rdb; cfg is the Service's.
func NewWebhooks(rdb redis.UniversalClient, f Feed, trips payment.Trips, cfg Config) *Webhooks {
	return &Webhooks{rdb: rdb, feed: f, trips: trips, cfg: cfg.withDefaults()}
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
func (p *Webhooks) Webhook(ctx context.Context, header string, body []byte) (payment.WebhookResult, error) {
	now := p.cfg.Now()
	if err := payment.VerifySignature(header, body, p.cfg.Secrets, now, p.cfg.Tolerance); err != nil {
		return payment.WebhookResult{}, err
	}
	ev, err := payment.ParseEvent(body)
	if err != nil {
		return payment.WebhookResult{}, err
	}
	tripID, _ := payment.TripOf(ev.Data.PaymentID)
	status, tripTo, action := payment.StatusSucceeded, trip.StatusRequested, trip.ActPaid
	if ev.Type == payment.WebhookFailed {
		status, tripTo, action = payment.StatusFailed, trip.StatusCancelled, trip.ActUnpaid
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
	pk, pargs, err := p.feed.PublishParams(ctx, feed.Publication{Topic: trip.Topic(tripID), Type: payment.EventStatus, TS: now})
	if err != nil {
		return payment.WebhookResult{}, err
	}
	_, targs, err := p.feed.PublishParams(ctx, feed.Publication{Topic: trip.Topic(tripID), Type: trip.EventType(action, tripTo), TS: now})
	if err != nil {
		return payment.WebhookResult{}, err
	}
	args := []any{ev.ID, status, ev.Data.Amount, ev.Data.Currency, nowMS(now), ttl(p.cfg), string(body),
		`{"version":__VERSION__,` + string(payData[1:]), `{"version":__VERSION__,"from":"__FROM__",` + string(tripRest[1:]),
		tripTo, ev.Data.PaymentID}
	args = append(append(args, pargs...), targs...)
	keys := append([]string{p.trips.Key(tripID), paymentKey(p.cfg.Prefix, tripID),
		paymentEventsKey(p.cfg.Prefix, tripID)}, pk...)
	if p.feed.ArchiveGrace() > 0 {
		keys = append(keys, feedredis.RecordKey(p.cfg.Prefix, trip.Topic(tripID), feedredis.RecordWebhooks))
	}
	res, err := rscript.Run(ctx, p.rdb, paymentWebhookScript, keys, args...)
	if err != nil {
		return payment.WebhookResult{}, fmt.Errorf("payment: webhook %s: %w", ev.ID, err)
	}
	r := payment.WebhookResult{EventID: ev.ID, PaymentID: ev.Data.PaymentID, Outcome: res[0]}
	if r.Outcome == "unknown" {
		return payment.WebhookResult{}, fmt.Errorf("%w: %s", payment.ErrNotFound, ev.Data.PaymentID)
	}
	if len(res) > 1 {
		r.Status = res[1]
	}
	if r.Outcome != payment.OutcomeApplied {
		if r.Outcome != payment.OutcomeDuplicate {
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
func (p *Webhooks) Events(ctx context.Context, id string) ([]payment.StoredEvent, error) {
	tripID, ok := payment.TripOf(id)
	if !ok {
		return nil, fmt.Errorf("%w: %s", payment.ErrNotFound, clip(id))
	}
	m, err := p.rdb.HGetAll(ctx, paymentEventsKey(p.cfg.Prefix, tripID)).Result()
	if err != nil {
		return nil, fmt.Errorf("payment: payment events %s: %w", id, err)
	}
	out := make([]payment.StoredEvent, 0, len(m))
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
		out = append(out, payment.StoredEvent{Seq: raw.Seq, Received: time.UnixMilli(raw.Received).UTC(), Outcome: raw.Outcome, Event: raw.Event})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

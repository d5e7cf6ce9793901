package paymentredis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/internal/autopipe"
	"github.com/hextrack/hextrack/internal/rscript"
	"github.com/hextrack/hextrack/payment"
	"github.com/hextrack/hextrack/trip"
)

// Feed gives the parameters of a durable event for a script made with
// feedredis.Script (feedredis.Broker), marking the topic for the archive;
// ArchiveGrace > 0 when it archives (webhook events are then also appended
// to the trip's webhooks record stream for the ledger).
type Feed interface {
	PublishParams(ctx context.Context, p feed.Publication) (keys []string, args []any, err error)
	ArchiveGrace() time.Duration
}

// Service creates payments and serves their status (Webhooks applies the
// gateway's events). It is safe for concurrent use.
type Service struct {
	rdb   redis.UniversalClient
	feed  Feed
	trips payment.Trips
	reads *autopipe.Cmds // polls' HMGETs, batched
	cfg   Config

	mu    sync.RWMutex               // polls of final payments read final concurrently
	final map[string]payment.Payment // final payments by ID (immutable)
}

// New returns the payments of trips, stored in rdb.
func New(rdb redis.UniversalClient, f Feed, trips payment.Trips, cfg Config) *Service {
	return &Service{rdb: rdb, feed: f, trips: trips, reads: autopipe.NewCmds(rdb), cfg: cfg.withDefaults(), final: map[string]payment.Payment{}}
}

// Config returns the effective configuration.
func (p *Service) Config() Config { return p.cfg }

// Create creates the payment of an online-paid delivery waiting for it
// (awaiting_payment), status pending, with a checkout URL on the gateway
// that returns the customer to returnURL (may be empty), and appends a
// payment.status event. A trip has one payment: asking again returns the
// existing one (created false), whatever its status. A trip that is not
// awaiting payment is a *TransitionError.
func (p *Service) Create(ctx context.Context, tripID string, a trip.Actor, returnURL string) (payment.Payment, bool, error) {
	if err := trip.CheckID(tripID); err != nil {
		return payment.Payment{}, false, err
	}
	if a.Role != trip.RoleRider && a.Role != trip.RoleOps && a.Role != trip.RoleSystem {
		return payment.Payment{}, false, fmt.Errorf("%w: only the trip's rider pays", trip.ErrForbidden)
	}
	t, err := p.trips.Get(ctx, tripID)
	if err != nil {
		return payment.Payment{}, false, err
	}
	if !trip.Owns(a, t, "pay") {
		return payment.Payment{}, false, fmt.Errorf("%w: trip %s is not yours", trip.ErrForbidden, tripID)
	}
	if t.Payment != trip.PaymentOnline {
		return payment.Payment{}, false, fmt.Errorf("%w: trip %s is not paid online", trip.ErrInvalid, tripID)
	}
	now := p.cfg.Now()
	amount := payment.Price(t.Pickup, t.Dropoff, p.cfg.BaseFare, p.cfg.PerKm)
	pay := payment.Payment{ID: payment.NewID(tripID), TripID: tripID, Amount: amount, Currency: p.cfg.Currency,
		Status: payment.StatusPending, Version: 1, RiderID: t.RiderID, CreatedAt: now.UTC().Truncate(time.Millisecond)}
	pay.UpdatedAt = pay.CreatedAt
	q := url.Values{"amount": {strconv.FormatInt(pay.Amount, 10)}, "currency": {pay.Currency}}
	if returnURL != "" {
		q.Set("return", returnURL)
	}
	pay.CheckoutURL = p.cfg.GatewayURL + "/checkout/" + pay.ID + "?" + q.Encode()
	data, _ := json.Marshal(paymentEventData(pay))
	fkeys, fargs, err := p.feed.PublishParams(ctx, feed.Publication{Topic: trip.Topic(tripID), Type: payment.EventStatus, Data: data, TS: now})
	if err != nil {
		return payment.Payment{}, false, err
	}
	pairs := []any{"id", pay.ID, "trip", tripID, "rider", t.RiderID, "amount", pay.Amount, "currency", pay.Currency,
		"status", pay.Status, "checkout", pay.CheckoutURL, "created", nowMS(now), "updated", nowMS(now), "version", 1}
	args := append([]any{ttl(p.cfg), len(pairs) / 2}, pairs...)
	keys := append([]string{p.trips.Key(tripID), paymentKey(p.cfg.Prefix, tripID)}, fkeys...)
	res, err := rscript.Run(ctx, p.rdb, paymentCreateScript, keys, append(args, fargs...)...)
	if err != nil {
		return payment.Payment{}, false, fmt.Errorf("payment: create payment %s: %w", tripID, err)
	}
	switch res[0] {
	case "ok":
		return pay, true, nil
	case "exists":
		old, err := p.load(ctx, tripID)
		return old, false, err
	case "notfound":
		return payment.Payment{}, false, fmt.Errorf("%w: %s", payment.ErrNotFound, tripID)
	case "conflict":
		v, _ := strconv.ParseInt(res[2], 10, 64)
		return payment.Payment{}, false, &trip.TransitionError{Action: "pay", Current: res[1], Version: v}
	}
	return payment.Payment{}, false, fmt.Errorf("payment: create payment %s: unexpected reply %v", tripID, res)
}

// Get returns payment id for a: the trip's rider, ops or the system. A
// final payment is served from memory; a pending one costs one Redis read.
func (p *Service) Get(ctx context.Context, id string, a trip.Actor) (payment.Payment, error) {
	tripID, ok := payment.TripOf(id)
	if !ok {
		return payment.Payment{}, fmt.Errorf("%w: %s", payment.ErrNotFound, clip(id))
	}
	p.mu.RLock()
	pay, cached := p.final[id]
	p.mu.RUnlock()
	if !cached {
		var err error
		if pay, err = p.load(ctx, tripID); err != nil {
			return payment.Payment{}, err
		}
		if pay.ID != id {
			return payment.Payment{}, fmt.Errorf("%w: %s", payment.ErrNotFound, clip(id))
		}
		if pay.Final() {
			p.remember(pay)
		}
	}
	if err := pay.CheckAccess(a); err != nil {
		return payment.Payment{}, err
	}
	return pay, nil
}

// Tag returns the ETag that Get(ctx, id, a) would carry and whether the
// payment is final, after the same checks (same errors). A final payment
// is served from memory; a pending one costs one HMGET of the four fields
// the tag and the access check need, not the whole payment. A poller's
// If-None-Match is compared with it before the payment is loaded.
func (p *Service) Tag(ctx context.Context, id string, a trip.Actor) (etag string, final bool, err error) {
	tripID, ok := payment.TripOf(id)
	if !ok {
		return "", false, fmt.Errorf("%w: %s", payment.ErrNotFound, clip(id))
	}
	p.mu.RLock()
	pay, cached := p.final[id]
	p.mu.RUnlock()
	if !cached {
		var f [4]string
		if err := p.reads.HMGet(ctx, payTagArgs, paymentKey(p.cfg.Prefix, tripID), f[:]); err != nil {
			return "", false, fmt.Errorf("payment: payment of %s: %w", tripID, err)
		}
		if f[0] == "" {
			return "", false, fmt.Errorf("%w: trip %s has no payment", payment.ErrNotFound, tripID)
		}
		// Partial: never remembered as a final payment.
		pay = payment.Payment{ID: f[0], RiderID: f[1], Status: f[2]}
		pay.Version, _ = strconv.ParseInt(f[3], 10, 64)
		if pay.ID != id {
			return "", false, fmt.Errorf("%w: %s", payment.ErrNotFound, clip(id))
		}
		if pay.Final() {
			// Final now: load it whole once, so that it joins the cache
			// like through Get and later polls read no Redis.
			full, err := p.load(ctx, tripID)
			if err != nil {
				return "", false, err
			}
			if full.ID == id && full.Final() {
				p.remember(full)
				pay = full
			}
		}
	}
	if err := pay.CheckAccess(a); err != nil {
		return "", false, err
	}
	return pay.ETag(), pay.Final(), nil
}

// payTagArgs is the HMGET of Tag: the fields a payment's ETag and its
// access check depend on.
var payTagArgs = autopipe.HMGetArgs("id", "rider", "status", "version")

// ForTrip returns the payment of trip tripID (for its rider, ops or the
// system), payment.ErrNotFound if it has none yet.
func (p *Service) ForTrip(ctx context.Context, tripID string, a trip.Actor) (payment.Payment, error) {
	if err := trip.CheckID(tripID); err != nil {
		return payment.Payment{}, err
	}
	pay, err := p.load(ctx, tripID)
	if err != nil {
		return payment.Payment{}, err
	}
	return p.Get(ctx, pay.ID, a)
}

// remember caches a final payment; when full, an arbitrary entry goes.
func (p *Service) remember(pay payment.Payment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.final) >= p.cfg.CacheSize {
		for k := range p.final {
			delete(p.final, k)
			break
		}
	}
	p.final[pay.ID] = pay
}

// load reads the payment of a trip: one HGETALL.
func (p *Service) load(ctx context.Context, tripID string) (payment.Payment, error) {
	m, err := p.rdb.HGetAll(ctx, paymentKey(p.cfg.Prefix, tripID)).Result()
	if err != nil {
		return payment.Payment{}, fmt.Errorf("payment: payment of %s: %w", tripID, err)
	}
	if len(m) == 0 {
		return payment.Payment{}, fmt.Errorf("%w: trip %s has no payment", payment.ErrNotFound, tripID)
	}
	return decodePayment(m), nil
}

func decodePayment(m map[string]string) payment.Payment {
	pay := payment.Payment{ID: m["id"], TripID: m["trip"], Currency: m["currency"], Status: m["status"],
		CheckoutURL: m["checkout"], EventID: m["event"], RiderID: m["rider"],
		CreatedAt: msTime(m["created"]), UpdatedAt: msTime(m["updated"])}
	pay.Amount, _ = strconv.ParseInt(m["amount"], 10, 64)
	pay.Version, _ = strconv.ParseInt(m["version"], 10, 64)
	return pay
}

// paymentEventData is the data of a payment.status event.
func paymentEventData(pay payment.Payment) map[string]any {
	d := map[string]any{"payment_id": pay.ID, "trip_id": pay.TripID, "status": pay.Status,
		"amount": pay.Amount, "currency": pay.Currency, "version": pay.Version}
	if pay.EventID != "" {
		d["event_id"] = pay.EventID
	}
	return d
}

func ttl(cfg Config) int64 { return int64(cfg.TTL / time.Second) }

func nowMS(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

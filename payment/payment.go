package payment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/autopipe"
	"github.com/hextrack/hextrack/internal/rscript"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// Payment statuses. Succeeded and failed are final: no event moves a
// payment out of them.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// EventStatus is the durable event appended to the trip's feed on every
// change of its payment (created pending, succeeded, failed).
const EventStatus = "payment.status"

// Errors of payments (see error.go for the trip errors they sit beside).
var (
	// ErrNotFound: no such payment (404).
	ErrNotFound = errors.New("payment not found")
	// ErrSignature: a webhook whose Hextrack-Signature is missing, garbled,
	// stale or made with none of the configured secrets (401).
	ErrSignature = errors.New("invalid webhook signature")
	// ErrInvalidEvent: a correctly signed webhook whose body is not a
	// payment event (400).
	ErrInvalidEvent = errors.New("invalid webhook event")
)

// Config configures Service. Zero values are documented per field.
type Config struct {
	// GatewayURL is the base URL of the payment gateway's checkout pages;
	// a payment's checkout URL is <GatewayURL>/checkout/<payment id>?….
	// Zero: "http://localhost:8090" (drivesim gateway's default).
	GatewayURL string
	// Currency of every payment (ISO 4217). Zero: "EUR".
	Currency string
	// BaseFare and PerKm price a delivery in minor units (cents): BaseFare
	// + PerKm × straight-line km from pickup to dropoff. Zero: 250 and 120.
	BaseFare, PerKm int64
	// Secrets verify webhook signatures; any one matching is enough, so a
	// secret is rotated by configuring the new one beside the old one until
	// the gateway signs with the new one. Empty: every webhook gets 401.
	Secrets [][]byte
	// Tolerance is the largest distance of a signature's timestamp from now
	// (either way) before it counts as a replay. Zero: 5 minutes.
	Tolerance time.Duration
	// CacheSize bounds the in-process cache of final payments (they never
	// change, so polls of them need no Redis read). Zero: 10,000.
	CacheSize int
	// Prefix is prepended to every Redis key; it must be the trip
	// service's. Zero: "".
	Prefix string
	// TTL is how long a payment's keys live after the last write; it
	// should be the trips' (tripredis.Config.TripTTL). Zero: 7 days.
	TTL time.Duration
	// Now returns the current time. Zero: time.Now.
	Now func() time.Time
	// Logger. Zero: slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.GatewayURL == "" {
		c.GatewayURL = "http://localhost:8090"
	}
	c.GatewayURL = strings.TrimRight(c.GatewayURL, "/")
	if c.Currency == "" {
		c.Currency = "EUR"
	}
	if c.BaseFare <= 0 {
		c.BaseFare = 250
	}
	if c.PerKm <= 0 {
		c.PerKm = 120
	}
	if c.Tolerance <= 0 {
		c.Tolerance = 5 * time.Minute
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 10000
	}
	if c.TTL <= 0 {
		c.TTL = 7 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Payment is the online payment of a delivery. Amount is in minor units of
// Currency (cents).
type Payment struct {
	ID          string    `json:"id"`
	TripID      string    `json:"trip_id"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Status      string    `json:"status"`
	CheckoutURL string    `json:"checkout_url"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// EventID is the webhook event that made the payment final.
	EventID string `json:"event_id,omitempty"`
	// Version increases by one with every status change (1 when created).
	Version int64 `json:"version"`

	riderID string
}

// Final reports whether the payment's status can no longer change.
func (p Payment) Final() bool { return p.Status == StatusSucceeded || p.Status == StatusFailed }

// ETag is a strong validator of the payment: "p<version>" (quoted).
func (p Payment) ETag() string { return `"p` + strconv.FormatInt(p.Version, 10) + `"` }

// Trips is what payments need of the trip service (tripredis.Service): the
// trip, its hash key (a payment and its trip change in one script on the
// trip's slot) and the report of a trip change that script made.
type Trips interface {
	Get(ctx context.Context, id string) (trip.Trip, error)
	Key(id string) string
	Changed(ctx context.Context, c trip.Change)
}

var _ Trips = (*tripredis.Service)(nil)

// Feed gives the parameters of a durable event for a script made with
// feed.Script (feed.Broker).
type Feed interface {
	PublishParams(p feed.Publication) (keys []string, args []any, err error)
}

// Service creates payments, applies verified gateway webhooks to them
// and to their trips, and serves payment status. It is safe for
// concurrent use.
type Service struct {
	rdb   redis.UniversalClient
	feed  Feed
	trips Trips
	reads *autopipe.Cmds // polls' HMGETs, batched
	cfg   Config

	mu    sync.RWMutex       // polls of final payments read final concurrently
	final map[string]Payment // final payments by ID (immutable)
}

// New returns the payments of trips, stored in rdb.
func New(rdb redis.UniversalClient, f Feed, trips Trips, cfg Config) *Service {
	return &Service{rdb: rdb, feed: f, trips: trips, reads: autopipe.NewCmds(rdb), cfg: cfg.withDefaults(), final: map[string]Payment{}}
}

func (p *Service) ttl() int64 { return int64(p.cfg.TTL / time.Second) }

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

// Config returns the effective configuration.
func (p *Service) Config() Config { return p.cfg }

// paymentID: "pay_<16 hex>_<trip id>". The trip ID inside lets every
// lookup go straight to the keys of the trip's slot (one read to poll).
var paymentIDPattern = regexp.MustCompile(`^pay_[0-9a-f]{16}_([A-Za-z0-9_-]{1,64})$`)

func newPaymentID(tripID string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "pay_" + hex.EncodeToString(b[:]) + "_" + tripID
}

// PaymentTrip returns the trip ID inside a payment ID; ok is false for a
// malformed ID.
// It is paymentIDPattern spelled out (every poll of a payment calls it).
func TripOf(id string) (tripID string, ok bool) {
	const head = len("pay_") + 16 + len("_")
	if len(id) <= head || len(id) > head+64 || id[:4] != "pay_" || id[head-1] != '_' {
		return "", false
	}
	for i := 4; i < head-1; i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	if !trip.ValidID(id[head:]) {
		return "", false
	}
	return id[head:], true
}

// Price returns the amount (minor units) of a delivery from pickup to
// dropoff: BaseFare + PerKm per straight-line km, rounded to the unit.
func (p *Service) Price(pickup, dropoff trip.Place) int64 {
	km := geo.Distance(geo.Point{Lat: pickup.Lat, Lng: pickup.Lng}, geo.Point{Lat: dropoff.Lat, Lng: dropoff.Lng}) / 1000
	return p.cfg.BaseFare + int64(math.Round(float64(p.cfg.PerKm)*km))
}

// Create creates the payment of an online-paid delivery waiting for it
// (awaiting_payment), status pending, with a checkout URL on the gateway
// that returns the customer to returnURL (may be empty), and appends a
// payment.status event. A trip has one payment: asking again returns the
// existing one (created false), whatever its status. A trip that is not
// awaiting payment is a *TransitionError.
func (p *Service) Create(ctx context.Context, tripID string, a trip.Actor, returnURL string) (Payment, bool, error) {
	if err := trip.CheckID(tripID); err != nil {
		return Payment{}, false, err
	}
	if a.Role != trip.RoleRider && a.Role != trip.RoleOps && a.Role != trip.RoleSystem {
		return Payment{}, false, fmt.Errorf("%w: only the trip's rider pays", trip.ErrForbidden)
	}
	t, err := p.trips.Get(ctx, tripID)
	if err != nil {
		return Payment{}, false, err
	}
	if !trip.Owns(a, t, "pay") {
		return Payment{}, false, fmt.Errorf("%w: trip %s is not yours", trip.ErrForbidden, tripID)
	}
	if t.Payment != trip.PaymentOnline {
		return Payment{}, false, fmt.Errorf("%w: trip %s is not paid online", trip.ErrInvalid, tripID)
	}
	now := p.cfg.Now()
	pay := Payment{ID: newPaymentID(tripID), TripID: tripID, Amount: p.Price(t.Pickup, t.Dropoff),
		Currency: p.cfg.Currency, Status: StatusPending, Version: 1, riderID: t.RiderID,
		CreatedAt: now.UTC().Truncate(time.Millisecond)}
	pay.UpdatedAt = pay.CreatedAt
	q := url.Values{"amount": {strconv.FormatInt(pay.Amount, 10)}, "currency": {pay.Currency}}
	if returnURL != "" {
		q.Set("return", returnURL)
	}
	pay.CheckoutURL = p.cfg.GatewayURL + "/checkout/" + pay.ID + "?" + q.Encode()
	data, _ := json.Marshal(paymentEventData(pay))
	fkeys, fargs, err := p.feed.PublishParams(feed.Publication{Topic: trip.Topic(tripID), Type: EventStatus, Data: data, TS: now})
	if err != nil {
		return Payment{}, false, err
	}
	pairs := []any{"id", pay.ID, "trip", tripID, "rider", t.RiderID, "amount", pay.Amount, "currency", pay.Currency,
		"status", pay.Status, "checkout", pay.CheckoutURL, "created", nowMS(now), "updated", nowMS(now), "version", 1}
	args := append([]any{p.ttl(), len(pairs) / 2}, pairs...)
	keys := append([]string{p.trips.Key(tripID), paymentKey(p.cfg.Prefix, tripID)}, fkeys...)
	res, err := rscript.Run(ctx, p.rdb, paymentCreateScript, keys, append(args, fargs...)...)
	if err != nil {
		return Payment{}, false, fmt.Errorf("payment: create payment %s: %w", tripID, err)
	}
	switch res[0] {
	case "ok":
		return pay, true, nil
	case "exists":
		old, err := p.load(ctx, tripID)
		return old, false, err
	case "notfound":
		return Payment{}, false, fmt.Errorf("%w: %s", ErrNotFound, tripID)
	case "conflict":
		v, _ := strconv.ParseInt(res[2], 10, 64)
		return Payment{}, false, &trip.TransitionError{Action: "pay", Current: res[1], Version: v}
	}
	return Payment{}, false, fmt.Errorf("payment: create payment %s: unexpected reply %v", tripID, res)
}

// Get returns payment id for a: the trip's rider, ops or the system. A
// final payment is served from memory; a pending one costs one Redis read.
func (p *Service) Get(ctx context.Context, id string, a trip.Actor) (Payment, error) {
	tripID, ok := TripOf(id)
	if !ok {
		return Payment{}, fmt.Errorf("%w: %s", ErrNotFound, clip(id))
	}
	p.mu.RLock()
	pay, cached := p.final[id]
	p.mu.RUnlock()
	if !cached {
		var err error
		if pay, err = p.load(ctx, tripID); err != nil {
			return Payment{}, err
		}
		if pay.ID != id {
			return Payment{}, fmt.Errorf("%w: %s", ErrNotFound, clip(id))
		}
		if pay.Final() {
			p.remember(pay)
		}
	}
	if err := paymentAccess(pay, a, id); err != nil {
		return Payment{}, err
	}
	return pay, nil
}

// paymentAccess: a payment is seen by its trip's rider, ops and the system.
func paymentAccess(pay Payment, a trip.Actor, id string) error {
	switch {
	case a.Role == trip.RoleOps || a.Role == trip.RoleSystem:
	case a.Role == trip.RoleRider && a.ID != "" && a.ID == pay.riderID:
	default:
		return fmt.Errorf("%w: %s may not see payment %s", trip.ErrForbidden, a.Role, clip(id))
	}
	return nil
}

// Tag returns the ETag that Get(ctx, id, a) would carry and whether the
// payment is final, after the same checks (same errors). A final payment
// is served from memory; a pending one costs one HMGET of the four fields
// the tag and the access check need, not the whole payment. A poller's
// If-None-Match is compared with it before the payment is loaded.
func (p *Service) Tag(ctx context.Context, id string, a trip.Actor) (etag string, final bool, err error) {
	tripID, ok := TripOf(id)
	if !ok {
		return "", false, fmt.Errorf("%w: %s", ErrNotFound, clip(id))
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
			return "", false, fmt.Errorf("%w: trip %s has no payment", ErrNotFound, tripID)
		}
		// Partial: never remembered as a final payment.
		pay = Payment{ID: f[0], riderID: f[1], Status: f[2]}
		pay.Version, _ = strconv.ParseInt(f[3], 10, 64)
		if pay.ID != id {
			return "", false, fmt.Errorf("%w: %s", ErrNotFound, clip(id))
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
	if err := paymentAccess(pay, a, id); err != nil {
		return "", false, err
	}
	return pay.ETag(), pay.Final(), nil
}

// payTagArgs is the HMGET of Tag: the fields a payment's ETag and its
// access check depend on.
var payTagArgs = autopipe.HMGetArgs("id", "rider", "status", "version")

// ForTrip returns the payment of trip tripID (for its rider, ops or the
// system), ErrNotFound if it has none yet.
func (p *Service) ForTrip(ctx context.Context, tripID string, a trip.Actor) (Payment, error) {
	if err := trip.CheckID(tripID); err != nil {
		return Payment{}, err
	}
	pay, err := p.load(ctx, tripID)
	if err != nil {
		return Payment{}, err
	}
	return p.Get(ctx, pay.ID, a)
}

// remember caches a final payment; when full, an arbitrary entry goes.
func (p *Service) remember(pay Payment) {
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
func (p *Service) load(ctx context.Context, tripID string) (Payment, error) {
	m, err := p.rdb.HGetAll(ctx, paymentKey(p.cfg.Prefix, tripID)).Result()
	if err != nil {
		return Payment{}, fmt.Errorf("payment: payment of %s: %w", tripID, err)
	}
	if len(m) == 0 {
		return Payment{}, fmt.Errorf("%w: trip %s has no payment", ErrNotFound, tripID)
	}
	return decodePayment(m), nil
}

func decodePayment(m map[string]string) Payment {
	pay := Payment{ID: m["id"], TripID: m["trip"], Currency: m["currency"], Status: m["status"],
		CheckoutURL: m["checkout"], EventID: m["event"], riderID: m["rider"],
		CreatedAt: msTime(m["created"]), UpdatedAt: msTime(m["updated"])}
	pay.Amount, _ = strconv.ParseInt(m["amount"], 10, 64)
	pay.Version, _ = strconv.ParseInt(m["version"], 10, 64)
	return pay
}

// paymentEventData is the data of a payment.status event.
func paymentEventData(pay Payment) map[string]any {
	d := map[string]any{"payment_id": pay.ID, "trip_id": pay.TripID, "status": pay.Status,
		"amount": pay.Amount, "currency": pay.Currency, "version": pay.Version}
	if pay.EventID != "" {
		d["event_id"] = pay.EventID
	}
	return d
}

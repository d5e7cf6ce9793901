package rider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/geo"
)

// Payment statuses. Succeeded and failed are final: no event moves a
// payment out of them.
const (
	PaymentPending   = "pending"
	PaymentSucceeded = "succeeded"
	PaymentFailed    = "failed"
)

// EventPayment is the durable event appended to the trip's feed on every
// change of its payment (created pending, succeeded, failed).
const EventPayment = "payment.status"

// Errors of payments (see error.go for the trip errors they sit beside).
var (
	// ErrPaymentNotFound: no such payment (404).
	ErrPaymentNotFound = errors.New("payment not found")
	// ErrSignature: a webhook whose Hextrack-Signature is missing, garbled,
	// stale or made with none of the configured secrets (401).
	ErrSignature = errors.New("invalid webhook signature")
	// ErrInvalidEvent: a correctly signed webhook whose body is not a
	// payment event (400).
	ErrInvalidEvent = errors.New("invalid webhook event")
)

// PaymentConfig configures Payments. Zero values are documented per field.
type PaymentConfig struct {
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
}

func (c PaymentConfig) withDefaults() PaymentConfig {
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
func (p Payment) Final() bool { return p.Status == PaymentSucceeded || p.Status == PaymentFailed }

// ETag is a strong validator of the payment: "p<version>" (quoted).
func (p Payment) ETag() string { return `"p` + strconv.FormatInt(p.Version, 10) + `"` }

// Payments creates payments, applies verified gateway webhooks to them
// and to their trips, and serves payment status. It is safe for
// concurrent use.
type Payments struct {
	s   *Service
	cfg PaymentConfig

	mu    sync.RWMutex       // polls of final payments read final concurrently
	final map[string]Payment // final payments by ID (immutable)
}

// NewPayments returns the payments of the trips of s.
func NewPayments(s *Service, cfg PaymentConfig) *Payments {
	return &Payments{s: s, cfg: cfg.withDefaults(), final: map[string]Payment{}}
}

// Config returns the effective configuration.
func (p *Payments) Config() PaymentConfig { return p.cfg }

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
func PaymentTrip(id string) (tripID string, ok bool) {
	const head = len("pay_") + 16 + len("_")
	if len(id) <= head || len(id) > head+64 || id[:4] != "pay_" || id[head-1] != '_' {
		return "", false
	}
	for i := 4; i < head-1; i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	if !ValidID(id[head:]) {
		return "", false
	}
	return id[head:], true
}

// Price returns the amount (minor units) of a delivery from pickup to
// dropoff: BaseFare + PerKm per straight-line km, rounded to the unit.
func (p *Payments) Price(pickup, dropoff Place) int64 {
	km := geo.Distance(geo.Point{Lat: pickup.Lat, Lng: pickup.Lng}, geo.Point{Lat: dropoff.Lat, Lng: dropoff.Lng}) / 1000
	return p.cfg.BaseFare + int64(math.Round(float64(p.cfg.PerKm)*km))
}

// Create creates the payment of an online-paid delivery waiting for it
// (awaiting_payment), status pending, with a checkout URL on the gateway
// that returns the customer to returnURL (may be empty), and appends a
// payment.status event. A trip has one payment: asking again returns the
// existing one (created false), whatever its status. A trip that is not
// awaiting payment is a *TransitionError.
func (p *Payments) Create(ctx context.Context, tripID string, a Actor, returnURL string) (Payment, bool, error) {
	if err := checkTripID(tripID); err != nil {
		return Payment{}, false, err
	}
	if a.Role != RoleRider && a.Role != RoleOps && a.Role != RoleSystem {
		return Payment{}, false, fmt.Errorf("%w: only the trip's rider pays", ErrForbidden)
	}
	t, err := p.s.Get(ctx, tripID)
	if err != nil {
		return Payment{}, false, err
	}
	if !owns(a, t, "pay") {
		return Payment{}, false, fmt.Errorf("%w: trip %s is not yours", ErrForbidden, tripID)
	}
	if t.Payment != PaymentOnline {
		return Payment{}, false, fmt.Errorf("%w: trip %s is not paid online", ErrInvalid, tripID)
	}
	now := p.s.now()
	pay := Payment{ID: newPaymentID(tripID), TripID: tripID, Amount: p.Price(t.Pickup, t.Dropoff),
		Currency: p.cfg.Currency, Status: PaymentPending, Version: 1, riderID: t.RiderID,
		CreatedAt: now.UTC().Truncate(time.Millisecond)}
	pay.UpdatedAt = pay.CreatedAt
	q := url.Values{"amount": {strconv.FormatInt(pay.Amount, 10)}, "currency": {pay.Currency}}
	if returnURL != "" {
		q.Set("return", returnURL)
	}
	pay.CheckoutURL = p.cfg.GatewayURL + "/checkout/" + pay.ID + "?" + q.Encode()
	data, _ := json.Marshal(paymentEventData(pay))
	fkeys, fargs, err := p.s.feed.PublishParams(feed.Publication{Topic: Topic(tripID), Type: EventPayment, Data: data, TS: now})
	if err != nil {
		return Payment{}, false, err
	}
	pairs := []any{"id", pay.ID, "trip", tripID, "rider", t.RiderID, "amount", pay.Amount, "currency", pay.Currency,
		"status", pay.Status, "checkout", pay.CheckoutURL, "created", nowMS(now), "updated", nowMS(now), "version", 1}
	args := append([]any{p.s.ttl(), len(pairs) / 2}, pairs...)
	keys := append([]string{tripKey(p.s.cfg.Prefix, tripID), paymentKey(p.s.cfg.Prefix, tripID)}, fkeys...)
	res, err := runScript(ctx, p.s.rdb, paymentCreateScript, keys, append(args, fargs...)...)
	if err != nil {
		return Payment{}, false, fmt.Errorf("rider: create payment %s: %w", tripID, err)
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
		return Payment{}, false, &TransitionError{Action: "pay", Current: res[1], Version: v}
	}
	return Payment{}, false, fmt.Errorf("rider: create payment %s: unexpected reply %v", tripID, res)
}

// Get returns payment id for a: the trip's rider, ops or the system. A
// final payment is served from memory; a pending one costs one Redis read.
func (p *Payments) Get(ctx context.Context, id string, a Actor) (Payment, error) {
	tripID, ok := PaymentTrip(id)
	if !ok {
		return Payment{}, fmt.Errorf("%w: %s", ErrPaymentNotFound, clip(id))
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
			return Payment{}, fmt.Errorf("%w: %s", ErrPaymentNotFound, clip(id))
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
func paymentAccess(pay Payment, a Actor, id string) error {
	switch {
	case a.Role == RoleOps || a.Role == RoleSystem:
	case a.Role == RoleRider && a.ID != "" && a.ID == pay.riderID:
	default:
		return fmt.Errorf("%w: %s may not see payment %s", ErrForbidden, roleName(a.Role), clip(id))
	}
	return nil
}

// Tag returns the ETag that Get(ctx, id, a) would carry and whether the
// payment is final, after the same checks (same errors). A final payment
// is served from memory; a pending one costs one HMGET of the four fields
// the tag and the access check need, not the whole payment. A poller's
// If-None-Match is compared with it before the payment is loaded.
func (p *Payments) Tag(ctx context.Context, id string, a Actor) (etag string, final bool, err error) {
	tripID, ok := PaymentTrip(id)
	if !ok {
		return "", false, fmt.Errorf("%w: %s", ErrPaymentNotFound, clip(id))
	}
	p.mu.RLock()
	pay, cached := p.final[id]
	p.mu.RUnlock()
	if !cached {
		var f [4]string
		if err := hmget(ctx, p.s.reads, payTagArgs, paymentKey(p.s.cfg.Prefix, tripID), f[:]); err != nil {
			return "", false, fmt.Errorf("rider: payment of %s: %w", tripID, err)
		}
		if f[0] == "" {
			return "", false, fmt.Errorf("%w: trip %s has no payment", ErrPaymentNotFound, tripID)
		}
		// Partial: never remembered as a final payment.
		pay = Payment{ID: f[0], riderID: f[1], Status: f[2]}
		pay.Version, _ = strconv.ParseInt(f[3], 10, 64)
		if pay.ID != id {
			return "", false, fmt.Errorf("%w: %s", ErrPaymentNotFound, clip(id))
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
var payTagArgs = hmgetArgs("id", "rider", "status", "version")

// ForTrip returns the payment of trip tripID (for its rider, ops or the
// system), ErrPaymentNotFound if it has none yet.
func (p *Payments) ForTrip(ctx context.Context, tripID string, a Actor) (Payment, error) {
	if err := checkTripID(tripID); err != nil {
		return Payment{}, err
	}
	pay, err := p.load(ctx, tripID)
	if err != nil {
		return Payment{}, err
	}
	return p.Get(ctx, pay.ID, a)
}

// remember caches a final payment; when full, an arbitrary entry goes.
func (p *Payments) remember(pay Payment) {
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
func (p *Payments) load(ctx context.Context, tripID string) (Payment, error) {
	m, err := p.s.rdb.HGetAll(ctx, paymentKey(p.s.cfg.Prefix, tripID)).Result()
	if err != nil {
		return Payment{}, fmt.Errorf("rider: payment of %s: %w", tripID, err)
	}
	if len(m) == 0 {
		return Payment{}, fmt.Errorf("%w: trip %s has no payment", ErrPaymentNotFound, tripID)
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

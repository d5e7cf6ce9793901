package trip

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/internal/autopipe"
)

// Drivers claims and releases drivers for trips (driverredis.Service). Claim is
// atomic in Redis: a driver never holds two trips.
type Drivers interface {
	Claim(ctx context.Context, driverID, tripID string) error
	Release(ctx context.Context, driverID, tripID, status string) error
}

// Feed gives the parameters of a durable event (hx_publish) or of a live
// one (hx_publish_live) for a script made with feed.Script, and publishes
// sequenced live-only messages (feed.Broker).
type Feed interface {
	PublishParams(p feed.Publication) (keys []string, args []any, err error)
	LiveParams(topic, typ string, ts time.Time) ([]any, error)
	PublishSeq(ctx context.Context, topic, typ string, seq int64, data json.RawMessage) error
}

// Config configures a Service. Zero values are documented per field.
type Config struct {
	// Prefix is prepended to every Redis key. Zero: "".
	Prefix string
	// TripTTL is how long a trip's keys live after its last write. Zero: 7 days.
	TripTTL time.Duration
	// MaxMessageLen bounds a chat message, in characters. Zero: 1000.
	MaxMessageLen int
	// LocationEvery is the conflation period of trip.location per trip
	// (across all nodes). Zero: 1s.
	LocationEvery time.Duration
	// CrumbEvery and CrumbMeters sample breadcrumbs: a fix becomes one when
	// the last is this old or this far away. Zero: 5s and 25 m.
	CrumbEvery  time.Duration
	CrumbMeters float64
	// MaxCrumbs caps a trip's breadcrumbs (oldest dropped). Zero: 2000.
	MaxCrumbs int
	// ShareTTL is a share link's default lifetime; MaxShareTTL its largest.
	// Zero: 4h and 48h.
	ShareTTL    time.Duration
	MaxShareTTL time.Duration
	// Workers handle queued driver moves. Zero: 64. A move costs a few
	// Redis round trips and no CPU to speak of, so workers bound the
	// location rate: 4 delivered ~400 trips/s under make bench's fan-out
	// (2,500 pings/s) and the per-trip queue added seconds.
	Workers int
	// Now returns the current time. Zero: time.Now.
	Now func() time.Time
	// Logger. Zero: slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.TripTTL <= 0 {
		c.TripTTL = 7 * 24 * time.Hour
	}
	if c.MaxMessageLen <= 0 {
		c.MaxMessageLen = 1000
	}
	if c.LocationEvery <= 0 {
		c.LocationEvery = time.Second
	}
	if c.CrumbEvery <= 0 {
		c.CrumbEvery = 5 * time.Second
	}
	if c.CrumbMeters <= 0 {
		c.CrumbMeters = 25
	}
	if c.MaxCrumbs <= 0 {
		c.MaxCrumbs = 2000
	}
	if c.ShareTTL <= 0 {
		c.ShareTTL = 4 * time.Hour
	}
	if c.MaxShareTTL <= 0 {
		c.MaxShareTTL = 48 * time.Hour
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// base is what every part of the trip service shares: the Redis client,
// the feed, the configuration and the metric hooks.
type base struct {
	rdb     redis.UniversalClient
	feed    Feed
	cfg     Config
	metrics Metrics
	// reads batches the HMGETs of polls into pipelines (internal/autopipe).
	reads *autopipe.Cmds
}

func (b *base) ttl() int64 { return int64(b.cfg.TripTTL / time.Second) }

func (b *base) now() time.Time { return b.cfg.Now() }

// Key is the Redis key of trip id's hash. Other packages' scripts that must
// change a trip atomically with their own keys (payment) use it; the
// fields they may touch are documented where they do.
func (b *base) Key(id string) string { return tripKey(b.cfg.Prefix, id) }

// Service runs the trip lifecycle: create, accept/assign, the other
// actions, dropoff changes. The other parts of a trip are reached through
// it: Store (reads), Shares (share links), Chat, Tracker (live location)
// and ETAs (the storage of live ETAs). It is safe for concurrent use.
type Service struct {
	*base
	*changes // observers and the dispatch hook (hook.go)
	drivers  Drivers
	store    *Store
	shares   *Shares
	chat     *Chat
	tracker  *Tracker
	etas     *ETAs
}

// Metrics receives figures; a nil func is skipped.
type Metrics struct {
	Transition func(action, to string)
	Location   func(published bool)
}

// NewService returns a trip service storing trips in rdb, appending events
// through f and claiming drivers through d.
func NewService(rdb redis.UniversalClient, f Feed, d Drivers, cfg Config) *Service {
	b := &base{rdb: rdb, feed: f, cfg: cfg.withDefaults(), reads: autopipe.NewCmds(rdb)}
	s := &Service{base: b, changes: &changes{}, drivers: d, store: &Store{base: b}, chat: &Chat{base: b}, etas: &ETAs{base: b}}
	s.shares = &Shares{base: b, store: s.store}
	s.store.shares = s.shares
	s.chat.store = s.store
	s.tracker = newTracker(b)
	return s
}

// Store reads trips (snapshots, ETags, access checks, location, path).
func (s *Service) Store() *Store { return s.store }

// Shares manages share links.
func (s *Service) Shares() *Shares { return s.shares }

// Chat posts trip messages.
func (s *Service) Chat() *Chat { return s.chat }

// Tracker keeps trips' live location (a driver.Listener; run it).
func (s *Service) Tracker() *Tracker { return s.tracker }

// ETAs stores live ETAs in trips (for live.Service).
func (s *Service) ETAs() *ETAs { return s.etas }

// SetMetrics sets the metric hooks. Call before serving.
func (s *Service) SetMetrics(m Metrics) { s.metrics = m }

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Get returns a trip without any authorization check (Store.Get).
func (s *Service) Get(ctx context.Context, id string) (Trip, error) { return s.store.Get(ctx, id) }

// Excluded returns the drivers dispatch skips for the trip (Store.Excluded).
func (s *Service) Excluded(ctx context.Context, id string) ([]string, error) {
	return s.store.Excluded(ctx, id)
}

// ArrivalView reads what the arrival check needs (Store.ArrivalView).
func (s *Service) ArrivalView(ctx context.Context, id string) (Trip, error) {
	return s.store.ArrivalView(ctx, id)
}

func nowMS(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// newTripID is random, or derived from the key prefix, the rider and the
// idempotency key so that a retried create lands on the same trip
// atomically. The prefix is part of it because feed keys are not prefixed:
// two deployments (or test runs) sharing a Redis must not share a feed.
func newTripID(prefix, riderID, idemKey string) string {
	if idemKey == "" {
		var b [10]byte
		_, _ = rand.Read(b[:])
		return "t_" + hex.EncodeToString(b[:])
	}
	sum := sha256.Sum256([]byte(prefix + "\x00" + riderID + "\x00" + idemKey))
	return "t_" + hex.EncodeToString(sum[:10])
}

// MaxIdempotencyKey bounds an Idempotency-Key's length.
const MaxIdempotencyKey = 255

// Create makes a trip for rider a (a rider, or ops acting for a rider ID).
// With an idempotency key, the same key and the same request give the same
// trip (created false on a replay); the same key with another request is
// ErrIdempotencyMismatch.
func (s *Service) Create(ctx context.Context, a Actor, idemKey string, r CreateRequest) (Snapshot, bool, error) {
	if a.Role != RoleRider && a.Role != RoleOps && a.Role != RoleSystem {
		return Snapshot{}, false, fmt.Errorf("%w: only riders create trips", ErrForbidden)
	}
	if !ValidID(a.ID) {
		return Snapshot{}, false, fmt.Errorf("%w: rider id must be 1-64 characters of [A-Za-z0-9_-]", ErrInvalid)
	}
	if len(idemKey) > MaxIdempotencyKey {
		return Snapshot{}, false, fmt.Errorf("%w: Idempotency-Key is longer than %d bytes", ErrInvalid, MaxIdempotencyKey)
	}
	if err := r.normalize(); err != nil {
		return Snapshot{}, false, err
	}
	canon, _ := json.Marshal(r)
	sum := sha256.Sum256(canon)
	reqHash := hex.EncodeToString(sum[:])
	id := newTripID(s.cfg.Prefix, a.ID, idemKey)
	now := s.now()
	t := Trip{ID: id, Kind: r.Kind, Status: r.initialStatus(), RiderID: a.ID, Pickup: r.Pickup,
		Dropoff: r.Dropoff, Payment: r.Payment, CreatedAt: now.UTC().Truncate(time.Millisecond), Version: 1}
	t.UpdatedAt = t.CreatedAt
	pick, _ := json.Marshal(r.Pickup)
	drop, _ := json.Marshal(r.Dropoff)
	pairs := []string{"id", id, "kind", t.Kind, "status", t.Status, "rider", t.RiderID, "pickup", string(pick),
		"dropoff", string(drop), "payment", t.Payment, "created", nowMS(now), "updated", nowMS(now)}
	data, _ := json.Marshal(map[string]any{"trip_id": id, "trip": t, "status": t.Status, "version": 1})
	fkeys, fargs, err := s.feed.PublishParams(feed.Publication{Topic: Topic(id), Type: EventCreated, Data: data, TS: now})
	if err != nil {
		return Snapshot{}, false, err
	}
	args := []any{reqHash, s.ttl(), len(pairs) / 2}
	for _, p := range pairs {
		args = append(args, p)
	}
	res, err := runScript(ctx, s.rdb, createScript, append([]string{tripKey(s.cfg.Prefix, id)}, fkeys...), append(args, fargs...)...)
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("trip: create: %w", err)
	}
	switch res[0] {
	case "mismatch":
		return Snapshot{}, false, fmt.Errorf("%w: key %q was used for another trip request", ErrIdempotencyMismatch, clip(idemKey))
	case "exists":
		snap, err := s.store.snapshot(ctx, id)
		return snap, false, err
	}
	s.count(ActCreate, t.Status)
	s.notify(ctx, Change{Trip: t, Action: ActCreate, To: t.Status, Actor: a, EventID: res[1], At: now}) // observers, dispatch
	snap, err := s.store.snapshot(ctx, id)
	return snap, true, err
}

// ActCreate is the metric action of Create.
const ActCreate = "create"

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

func (s *Service) count(action, to string) {
	if s.metrics.Transition != nil {
		s.metrics.Transition(action, to)
	}
}

// Accept gives a requested trip to the driver a (until dispatch exists any
// driver may accept any requested trip; then only the offered driver).
func (s *Service) Accept(ctx context.Context, id string, a Actor) (Snapshot, error) {
	if a.Role != RoleDriver && a.Role != RoleSystem {
		return Snapshot{}, fmt.Errorf("%w: only drivers accept trips", ErrForbidden)
	}
	if err := s.checkAccept(ctx, id, a); err != nil { // dispatch hook: only the offered driver
		return Snapshot{}, err
	}
	if err := s.Assign(ctx, id, a.ID); err != nil {
		return Snapshot{}, err
	}
	return s.store.snapshot(ctx, id)
}

// Assign gives requested trip tripID to driverID atomically: the driver is
// claimed first (ErrConflict from Drivers when it is busy or offline), then
// the trip moves to driver_assigned with one trip.assigned event; if that
// fails (the trip is no longer requested) the claim is released. Dispatch
// calls it when a driver accepts an offer.
func (s *Service) Assign(ctx context.Context, tripID, driverID string) error {
	if err := CheckID(tripID); err != nil {
		return err
	}
	if !ValidID(driverID) {
		return fmt.Errorf("%w: driver id must be 1-64 characters of [A-Za-z0-9_-]", ErrInvalid)
	}
	t, err := s.Get(ctx, tripID)
	if err != nil {
		return err
	}
	if t.Status != StatusRequested {
		return &TransitionError{Action: ActAccept, Current: t.Status, Version: t.Version}
	}
	if err := s.drivers.Claim(ctx, driverID, tripID); err != nil {
		return err
	}
	_, err = s.transition(ctx, t, Actor{Role: RoleSystem}, ActAccept, []string{StatusRequested}, StatusAssigned, "", 0,
		map[string]any{"driver_id": driverID}, "driver", driverID)
	if err != nil {
		if rerr := s.drivers.Release(ctx, driverID, tripID, ""); rerr != nil {
			s.cfg.Logger.Warn("trip: release after failed assign", "trip", tripID, "driver", driverID, "err", rerr)
		}
		return err
	}
	return nil
}

// Act performs a lifecycle action other than accept and dropoff changes:
// arrived, pickup, complete, cancel, decline, reassign, expire,
// payment_succeeded, payment_failed. The rules are in Rules. A driver's
// cancel or decline (and a reassign) returns the trip to requested and
// remembers the driver as excluded for dispatch. The trip's driver is
// released when it leaves it.
func (s *Service) Act(ctx context.Context, id string, a Actor, action, reason string) (Snapshot, error) {
	if err := CheckID(id); err != nil {
		return Snapshot{}, err
	}
	if action == ActAccept {
		return s.Accept(ctx, id, a)
	}
	if action == ActDropoff || action == ActCreate {
		return Snapshot{}, fmt.Errorf("%w: unknown action %q", ErrInvalid, action)
	}
	if len(reason) > 200 {
		reason = reason[:200]
	}
	rule, ok := ruleFor(action, a.Role)
	if !ok {
		return Snapshot{}, fmt.Errorf("%w: %s may not %s", ErrForbidden, roleName(a.Role), action)
	}
	t, err := s.Get(ctx, id)
	if err != nil {
		return Snapshot{}, err
	}
	if !Owns(a, t, action) {
		if a.Role == RoleDriver {
			return Snapshot{}, fmt.Errorf("%w: trip %s is not assigned to you", ErrForbidden, id)
		}
		return Snapshot{}, fmt.Errorf("%w: trip %s is not yours", ErrForbidden, id)
	}
	if a.Role == RoleDriver && action == ActDecline && t.Status == StatusRequested {
		// Declining an unassigned trip changes nothing but is remembered
		// for dispatch (no transition, no event).
		if err := s.rdb.HSet(ctx, tripKey(s.cfg.Prefix, id), "x:"+a.ID, "1").Err(); err != nil {
			return Snapshot{}, fmt.Errorf("trip: decline %s: %w", id, err)
		}
		return s.store.snapshot(ctx, id)
	}
	leaving := rule.To == StatusRequested || rule.To == StatusCancelled || rule.To == StatusCompleted || rule.To == StatusExpired
	requiredDriver := ""
	if a.Role == RoleDriver {
		requiredDriver = a.ID
	}
	extra, pairs := actionWrites(t, a, rule.To, reason, s.now())
	res, err := s.transition(ctx, t, a, action, rule.From, rule.To, requiredDriver, 0, extra, pairs...)
	if err != nil {
		return Snapshot{}, err
	}
	if leaving && res.oldDriver != "" {
		if err := s.drivers.Release(ctx, res.oldDriver, id, ""); err != nil {
			s.cfg.Logger.Warn("trip: release driver", "trip", id, "driver", res.oldDriver, "err", err)
		}
	}
	return s.store.snapshot(ctx, id)
}

// actionWrites returns what an action moving t to `to` adds to its event
// data (extra) and changes in the trip hash (pairs) besides the status: a
// return to requested releases the driver (remembered as excluded for
// dispatch), a cancel records who and why, and the ETA state follows
// (etaPairs).
func actionWrites(t Trip, a Actor, to, reason string, now time.Time) (map[string]any, []string) {
	extra := map[string]any{}
	var pairs []string
	switch to {
	case StatusRequested:
		if t.DriverID != "" {
			pairs = append(pairs, "driver", "", "x:"+t.DriverID, "1")
			extra["released_driver_id"] = t.DriverID
		}
	case StatusCancelled:
		by := roleName(a.Role)
		pairs = append(pairs, "cancelled_by", by, "cancel_reason", reason)
		extra["by"] = by
	}
	if reason != "" {
		extra["reason"] = reason
	}
	return extra, append(pairs, etaPairs(to, now)...) // eta.go
}

func roleName(r string) string {
	if r == "" {
		return "anonymous"
	}
	return r
}

// Convenience wrappers of Act.

// Cancel cancels the trip (rider before pickup, ops anytime) or, for its
// driver, hands it back to dispatch.
func (s *Service) Cancel(ctx context.Context, id string, a Actor, reason string) (Snapshot, error) {
	return s.Act(ctx, id, a, ActCancel, reason)
}

// Expire ends a requested trip nobody accepted (dispatch timeout).
func (s *Service) Expire(ctx context.Context, id string) (Snapshot, error) {
	return s.Act(ctx, id, Actor{Role: RoleSystem}, ActExpire, "no driver accepted")
}

// PaymentResult moves an awaiting_payment trip to requested (ok) or
// cancelled; the payments webhook calls it once the payment is verified.
func (s *Service) PaymentResult(ctx context.Context, id string, ok bool, reason string) (Snapshot, error) {
	if ok {
		return s.Act(ctx, id, Actor{Role: RoleSystem}, ActPaid, reason)
	}
	return s.Act(ctx, id, Actor{Role: RoleSystem}, ActUnpaid, reason)
}

// ChangeDropoff changes the dropoff of a trip that is not over. ifMatch, if
// not zero, must be the trip's current version (ErrVersionMismatch, a
// *VersionError, otherwise).
func (s *Service) ChangeDropoff(ctx context.Context, id string, a Actor, p Place, ifMatch int64) (Snapshot, error) {
	if err := CheckID(id); err != nil {
		return Snapshot{}, err
	}
	if err := p.validate("dropoff"); err != nil {
		return Snapshot{}, err
	}
	rule, ok := ruleFor(ActDropoff, a.Role)
	if !ok {
		return Snapshot{}, fmt.Errorf("%w: %s may not change the dropoff", ErrForbidden, roleName(a.Role))
	}
	t, err := s.Get(ctx, id)
	if err != nil {
		return Snapshot{}, err
	}
	if !Owns(a, t, ActDropoff) {
		return Snapshot{}, fmt.Errorf("%w: trip %s is not yours", ErrForbidden, id)
	}
	drop, _ := json.Marshal(p)
	_, err = s.transition(ctx, t, a, ActDropoff, rule.From, "", "", ifMatch,
		map[string]any{"dropoff": p, "by": roleName(a.Role)}, append([]string{"dropoff", string(drop)}, etaForgetDropoff...)...)
	if err != nil {
		return Snapshot{}, err
	}
	return s.store.snapshot(ctx, id)
}

type transitionResult struct {
	eventID   string
	version   int64
	from      string
	oldDriver string
}

// transition runs transitionScript. extra goes into the event data besides
// trip_id, status, from and version.
func (s *Service) transition(ctx context.Context, t Trip, a Actor, action string, from []string, to, requiredDriver string,
	ifMatch int64, extra map[string]any, pairs ...string) (transitionResult, error) {
	now := s.now()
	status := to
	if status == "" {
		status = t.Status // an address change: the event says the current status
	}
	body := map[string]any{"trip_id": t.ID}
	if to != "" {
		body["status"] = to
	}
	for k, v := range extra {
		body[k] = v
	}
	rest, _ := json.Marshal(body)
	// The script fills version and from; they come first so that no text of
	// the body (an address) can be taken for a placeholder.
	data := `{"version":__VERSION__,"from":"__FROM__",` + string(rest[1:])
	typ := EventType(action, to)
	fkeys, fargs, err := s.feed.PublishParams(feed.Publication{Topic: Topic(t.ID), Type: typ, TS: now})
	if err != nil {
		return transitionResult{}, err
	}
	allowed := "|" + strings.Join(from, "|") + "|"
	ver := ""
	if ifMatch > 0 {
		ver = strconv.FormatInt(ifMatch, 10)
	}
	args := []any{allowed, to, requiredDriver, ver, nowMS(now), s.ttl(), data, len(pairs) / 2}
	for _, p := range pairs {
		args = append(args, p)
	}
	res, err := runScript(ctx, s.rdb, transitionScript, append([]string{tripKey(s.cfg.Prefix, t.ID)}, fkeys...), append(args, fargs...)...)
	if err != nil {
		return transitionResult{}, fmt.Errorf("trip: %s %s: %w", action, t.ID, err)
	}
	switch res[0] {
	case "ok":
		v, _ := strconv.ParseInt(res[2], 10, 64)
		s.count(action, status)
		c := Change{Trip: t, Action: action, From: res[3], To: status, OldDriver: res[4], Actor: a, EventID: res[1], At: now}
		s.notify(ctx, c) // observers (ops index, live ETA), then dispatch
		return transitionResult{eventID: res[1], version: v, from: res[3], oldDriver: res[4]}, nil
	case "notfound":
		return transitionResult{}, fmt.Errorf("%w: %s", ErrNotFound, t.ID)
	case "driver":
		return transitionResult{}, fmt.Errorf("%w: trip %s is not assigned to you", ErrForbidden, t.ID)
	case "conflict":
		v, _ := strconv.ParseInt(res[2], 10, 64)
		return transitionResult{}, &TransitionError{Action: action, Current: res[1], Version: v}
	case "stale":
		v, _ := strconv.ParseInt(res[2], 10, 64)
		return transitionResult{}, &VersionError{Want: ifMatch, Current: v}
	}
	return transitionResult{}, fmt.Errorf("trip: %s %s: unexpected reply %v", action, t.ID, res)
}

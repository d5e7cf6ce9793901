package tripredis

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/internal/autopipe"
	"github.com/hextrack/hextrack/trip"
)

// Drivers claims and releases drivers for trips (driverredis.Service). Claim is
// atomic in Redis: a driver never holds two trips.
type Drivers interface {
	Claim(ctx context.Context, driverID, tripID string) error
	Release(ctx context.Context, driverID, tripID, status string) error
}

// Feed gives the parameters of a durable event (hx_publish) or of a live
// one (hx_publish_live) for a script made with feedredis.Script, and publishes
// sequenced live-only messages (feedredis.Broker).
type Feed interface {
	PublishParams(ctx context.Context, p feed.Publication) (keys []string, args []any, err error)
	LiveParams(topic, typ string, ts time.Time) ([]any, error)
	PublishSeq(ctx context.Context, topic, typ string, seq int64, data json.RawMessage) error
	// ArchiveGrace is how long after Mark an append may land (0: the feed
	// does not archive, no trail is kept); Mark announces an append to a
	// topic's record stream (the trail) to the archive.
	ArchiveGrace() time.Duration
	Mark(ctx context.Context, topic string) error
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
	// Stops (docs/deliveries.md): a stop completed farther than
	// StopCompleteRadius (m) is refused unless ops override;
	// stop.approaching when the ETA to the next open stop first falls
	// under StopApproachingETA (CitySpeed m/s without an estimator);
	// stop.arrived within StopArrivedRadius (m) for StopArrivedDwell.
	// Zero: 150, 2m, 8.3, 50, 20s.
	StopCompleteRadius, CitySpeed, StopArrivedRadius float64
	StopApproachingETA, StopArrivedDwell             time.Duration
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
	if c.StopCompleteRadius <= 0 {
		c.StopCompleteRadius = 150
	}
	if c.StopApproachingETA <= 0 {
		c.StopApproachingETA = 2 * time.Minute
	}
	if c.StopArrivedRadius <= 0 {
		c.StopArrivedRadius = 50
	}
	if c.StopArrivedDwell <= 0 {
		c.StopArrivedDwell = 20 * time.Second
	}
	if c.CitySpeed <= 0 {
		c.CitySpeed = 8.3
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
	*commits // the transition script, the observers and the dispatch hook (commits.go)
	drivers  Drivers
	store    *Store
	shares   *Shares
	chat     *Chat
	tracker  *Tracker
	etas     *ETAs
	stops    *Stops
	watch    *StopWatch
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
	s := &Service{base: b, commits: &commits{base: b}, drivers: d, store: &Store{base: b}, chat: &Chat{base: b}, etas: &ETAs{base: b}}
	s.shares = &Shares{base: b, store: s.store}
	s.store.shares = s.shares
	s.chat.store = s.store
	s.tracker = newTracker(b)
	s.stops = &Stops{&stopBase{base: b, store: s.store, commits: s.commits, drivers: d, guard: &stopGuard{base: b}}}
	s.watch = newStopWatch(s.stops)
	return s
}

// Stops changes trips' stops.
func (s *Service) Stops() *Stops { return s.stops }

// StopWatch fires stop.approaching and stop.arrived (a driver.Listener;
// run it).
func (s *Service) StopWatch() *StopWatch { return s.watch }

// SetProofFiles installs the store of proof-of-delivery uploads asked
// when a drop stop's policy requires a photo or a signature (nil: none is
// ever found). Call before serving.
func (s *Service) SetProofFiles(p trip.ProofFiles) { s.stops.guard.proofs = p }

// SetEstimator sets the ETA engine of stop.approaching (nil: the straight
// line at Config.CitySpeed). Call before serving.
func (s *Service) SetEstimator(e driver.Estimator) { s.watch.est = e }

// DropStop checks that stopID is an open drop stop of trip tripID driven
// by driverID (Stops.DropStop): proof uploads call it.
func (s *Service) DropStop(ctx context.Context, tripID, stopID, driverID string) error {
	return s.stops.DropStop(ctx, tripID, stopID, driverID)
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
func (s *Service) Get(ctx context.Context, id string) (trip.Trip, error) { return s.store.Get(ctx, id) }

// Excluded returns the drivers dispatch skips for the trip (Store.Excluded).
func (s *Service) Excluded(ctx context.Context, id string) ([]string, error) {
	return s.store.Excluded(ctx, id)
}

// ArrivalView reads what the arrival check needs (Store.ArrivalView).
func (s *Service) ArrivalView(ctx context.Context, id string) (trip.Trip, error) {
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

// Create makes a trip for rider a (a rider, or ops acting for a rider ID).
// With an idempotency key, the same key and the same request give the same
// trip (created false on a replay); the same key with another request is
// trip.ErrIdempotencyMismatch.
func (s *Service) Create(ctx context.Context, a trip.Actor, idemKey string, r trip.CreateRequest) (trip.Snapshot, bool, error) {
	if a.Role != trip.RoleRider && a.Role != trip.RoleOps && a.Role != trip.RoleSystem {
		return trip.Snapshot{}, false, fmt.Errorf("%w: only riders create trips", trip.ErrForbidden)
	}
	if !trip.ValidID(a.ID) {
		return trip.Snapshot{}, false, fmt.Errorf("%w: rider id must be 1-64 characters of [A-Za-z0-9_-]", trip.ErrInvalid)
	}
	if len(idemKey) > trip.MaxIdempotencyKey {
		return trip.Snapshot{}, false, fmt.Errorf("%w: Idempotency-Key is longer than %d bytes", trip.ErrInvalid, trip.MaxIdempotencyKey)
	}
	if err := r.Normalize(); err != nil {
		return trip.Snapshot{}, false, err
	}
	canon, _ := json.Marshal(r)
	sum := sha256.Sum256(canon)
	reqHash := hex.EncodeToString(sum[:])
	id := newTripID(s.cfg.Prefix, a.ID, idemKey)
	now := s.now()
	t := trip.Trip{ID: id, Kind: r.Kind, Status: r.InitialStatus(), RiderID: a.ID, Pickup: r.Pickup,
		Dropoff: r.Dropoff, Payment: r.Payment, CreatedAt: now.UTC().Truncate(time.Millisecond), Version: 1}
	t.UpdatedAt = t.CreatedAt
	pick, _ := json.Marshal(r.Pickup)
	drop, _ := json.Marshal(r.Dropoff)
	ins := r.StopInputs()
	t.Stops = make([]trip.Stop, len(ins))
	for i, in := range ins {
		t.Stops[i] = in.Stop("s" + strconv.Itoa(i+1))
	}
	stops, _ := json.Marshal(t.Stops)
	pairs := []string{"id", id, "kind", t.Kind, "status", t.Status, "rider", t.RiderID, "pickup", string(pick),
		"dropoff", string(drop), "payment", t.Payment, "created", nowMS(now), "updated", nowMS(now),
		"stops", string(stops), "stopseq", strconv.Itoa(len(t.Stops))}
	for _, st := range t.Stops {
		if st.Proof != nil && st.Proof.PIN {
			pairs = append(pairs, pinPairs(id, st.ID, trip.NewPIN())...)
		}
	}
	data, _ := json.Marshal(map[string]any{"trip_id": id, "trip": t, "status": t.Status, "version": 1})
	fkeys, fargs, err := s.feed.PublishParams(ctx, feed.Publication{Topic: trip.Topic(id), Type: trip.EventCreated, Data: data, TS: now})
	if err != nil {
		return trip.Snapshot{}, false, err
	}
	args := []any{reqHash, s.ttl(), len(pairs) / 2}
	for _, p := range pairs {
		args = append(args, p)
	}
	res, err := runScript(ctx, s.rdb, createScript, append([]string{tripKey(s.cfg.Prefix, id)}, fkeys...), append(args, fargs...)...)
	if err != nil {
		return trip.Snapshot{}, false, fmt.Errorf("trip: create: %w", err)
	}
	switch res[0] {
	case "mismatch":
		return trip.Snapshot{}, false, fmt.Errorf("%w: key %q was used for another trip request", trip.ErrIdempotencyMismatch, clip(idemKey))
	case "exists":
		snap, err := s.creatorSnapshot(ctx, id)
		return snap, false, err
	}
	s.count(trip.ActCreate, t.Status)
	s.notify(ctx, trip.Change{Trip: t, Action: trip.ActCreate, To: t.Status, Actor: a, EventID: res[1], At: now}) // observers, dispatch
	snap, err := s.creatorSnapshot(ctx, id)
	return snap, true, err
}

// creatorSnapshot is a new trip's snapshot for its creator: with the PINs
// of its drop stops.
func (s *Service) creatorSnapshot(ctx context.Context, id string) (trip.Snapshot, error) {
	snap, err := s.store.snapshot(ctx, id)
	if err != nil {
		return snap, err
	}
	return snap, s.withPINs(ctx, &snap)
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// Accept gives a requested trip to the driver a (until dispatch exists any
// driver may accept any requested trip; then only the offered driver).
func (s *Service) Accept(ctx context.Context, id string, a trip.Actor) (trip.Snapshot, error) {
	if a.Role != trip.RoleDriver && a.Role != trip.RoleSystem {
		return trip.Snapshot{}, fmt.Errorf("%w: only drivers accept trips", trip.ErrForbidden)
	}
	if err := s.checkAccept(ctx, id, a); err != nil { // dispatch hook: only the offered driver
		return trip.Snapshot{}, err
	}
	if err := s.Assign(ctx, id, a.ID); err != nil {
		return trip.Snapshot{}, err
	}
	return s.store.snapshot(ctx, id)
}

// Assign gives requested trip tripID to driverID atomically: the driver is
// claimed first (ErrConflict from Drivers when it is busy or offline), then
// the trip moves to driver_assigned with one trip.assigned event; if that
// fails (the trip is no longer requested) the claim is released. Dispatch
// calls it when a driver accepts an offer.
func (s *Service) Assign(ctx context.Context, tripID, driverID string) error {
	if err := trip.CheckID(tripID); err != nil {
		return err
	}
	if !trip.ValidID(driverID) {
		return fmt.Errorf("%w: driver id must be 1-64 characters of [A-Za-z0-9_-]", trip.ErrInvalid)
	}
	t, err := s.Get(ctx, tripID)
	if err != nil {
		return err
	}
	if t.Status != trip.StatusRequested {
		return &trip.TransitionError{Action: trip.ActAccept, Current: t.Status, Version: t.Version}
	}
	if err := s.drivers.Claim(ctx, driverID, tripID); err != nil {
		return err
	}
	_, err = s.transition(ctx, t, trip.Actor{Role: trip.RoleSystem}, trip.ActAccept, []string{trip.StatusRequested}, trip.StatusAssigned, "", 0,
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
// payment_succeeded, payment_failed. The rules are in trip.Rules. A driver's
// cancel or decline (and a reassign) returns the trip to requested and
// remembers the driver as excluded for dispatch. The trip's driver is
// released when it leaves it.
func (s *Service) Act(ctx context.Context, id string, a trip.Actor, action, reason string) (trip.Snapshot, error) {
	if err := trip.CheckID(id); err != nil {
		return trip.Snapshot{}, err
	}
	if action == trip.ActAccept {
		return s.Accept(ctx, id, a)
	}
	if action == trip.ActDropoff || action == trip.ActCreate {
		return trip.Snapshot{}, fmt.Errorf("%w: unknown action %q", trip.ErrInvalid, action)
	}
	if len(reason) > 200 {
		reason = reason[:200]
	}
	rule, ok := trip.RuleFor(action, a.Role)
	if !ok {
		return trip.Snapshot{}, fmt.Errorf("%w: %s may not %s", trip.ErrForbidden, roleName(a.Role), action)
	}
	t, err := s.Get(ctx, id)
	if err != nil {
		return trip.Snapshot{}, err
	}
	if !trip.Owns(a, t, action) {
		if a.Role == trip.RoleDriver {
			return trip.Snapshot{}, fmt.Errorf("%w: trip %s is not assigned to you", trip.ErrForbidden, id)
		}
		return trip.Snapshot{}, fmt.Errorf("%w: trip %s is not yours", trip.ErrForbidden, id)
	}
	if a.Role == trip.RoleDriver && action == trip.ActDecline && t.Status == trip.StatusRequested {
		// Declining an unassigned trip changes nothing but is remembered
		// for dispatch (no transition, no event).
		if err := s.rdb.HSet(ctx, tripKey(s.cfg.Prefix, id), "x:"+a.ID, "1").Err(); err != nil {
			return trip.Snapshot{}, fmt.Errorf("trip: decline %s: %w", id, err)
		}
		return s.store.snapshot(ctx, id)
	}
	if rule.Action == trip.ActPickup || rule.Action == trip.ActComplete {
		// The ride's pickup and complete move its stops too (stopact.go).
		if snap, handled, err := s.stops.legacy(ctx, t, a, rule); handled {
			return snap, err
		}
	}
	leaving := rule.To == trip.StatusRequested || rule.To == trip.StatusCancelled || rule.To == trip.StatusCompleted || rule.To == trip.StatusExpired
	requiredDriver := ""
	if a.Role == trip.RoleDriver {
		requiredDriver = a.ID
	}
	extra, pairs := actionWrites(t, a, rule.To, reason, s.now())
	res, err := s.transition(ctx, t, a, action, rule.From, rule.To, requiredDriver, 0, extra, pairs...)
	if err != nil {
		return trip.Snapshot{}, err
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
func actionWrites(t trip.Trip, a trip.Actor, to, reason string, now time.Time) (map[string]any, []string) {
	extra := map[string]any{}
	var pairs []string
	switch to {
	case trip.StatusRequested:
		if t.DriverID != "" {
			pairs = append(pairs, "driver", "", "x:"+t.DriverID, "1")
			extra["released_driver_id"] = t.DriverID
		}
	case trip.StatusCancelled:
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
func (s *Service) Cancel(ctx context.Context, id string, a trip.Actor, reason string) (trip.Snapshot, error) {
	return s.Act(ctx, id, a, trip.ActCancel, reason)
}

// Expire ends a requested trip nobody accepted (dispatch timeout).
func (s *Service) Expire(ctx context.Context, id string) (trip.Snapshot, error) {
	return s.Act(ctx, id, trip.Actor{Role: trip.RoleSystem}, trip.ActExpire, "no driver accepted")
}

// PaymentResult moves an awaiting_payment trip to requested (ok) or
// cancelled; the payments webhook calls it once the payment is verified.
func (s *Service) PaymentResult(ctx context.Context, id string, ok bool, reason string) (trip.Snapshot, error) {
	if ok {
		return s.Act(ctx, id, trip.Actor{Role: trip.RoleSystem}, trip.ActPaid, reason)
	}
	return s.Act(ctx, id, trip.Actor{Role: trip.RoleSystem}, trip.ActUnpaid, reason)
}

// ChangeDropoff changes the dropoff of a trip that is not over. ifMatch, if
// not zero, must be the trip's current version (trip.ErrVersionMismatch, a
// *trip.VersionError, otherwise).
func (s *Service) ChangeDropoff(ctx context.Context, id string, a trip.Actor, p trip.Place, ifMatch int64) (trip.Snapshot, error) {
	if err := trip.CheckID(id); err != nil {
		return trip.Snapshot{}, err
	}
	if err := p.Validate("dropoff"); err != nil {
		return trip.Snapshot{}, err
	}
	rule, ok := trip.RuleFor(trip.ActDropoff, a.Role)
	if !ok {
		return trip.Snapshot{}, fmt.Errorf("%w: %s may not change the dropoff", trip.ErrForbidden, roleName(a.Role))
	}
	t, err := s.Get(ctx, id)
	if err != nil {
		return trip.Snapshot{}, err
	}
	if !trip.Owns(a, t, trip.ActDropoff) {
		return trip.Snapshot{}, fmt.Errorf("%w: trip %s is not yours", trip.ErrForbidden, id)
	}
	if err := s.stops.changeDropoff(ctx, t, a, rule, p, ifMatch); err != nil { // the last drop stop moves too
		return trip.Snapshot{}, err
	}
	return s.store.snapshot(ctx, id)
}

package driver

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/autopipe"
)

// Driver statuses.
const (
	StatusOffline   = "offline"
	StatusAvailable = "available"
	StatusOnTrip    = "on_trip"
)

// State is a driver's current state as stored in Redis.
type State struct {
	ID       string     `json:"id"`
	Status   string     `json:"status"`
	TripID   string     `json:"trip_id,omitempty"`
	Location *Location  `json:"location"`
	LastSeq  int64      `json:"last_seq"`
	Cell     string     `json:"cell,omitempty"`
	Fresh    bool       `json:"fresh"`
	Seen     *time.Time `json:"last_seen,omitempty"`
}

// Location is a driver's latest accepted fix.
type Location struct {
	Lat      float64   `json:"lat"`
	Lng      float64   `json:"lng"`
	TS       time.Time `json:"ts"`
	Accuracy *float64  `json:"accuracy,omitempty"`
	Speed    *float64  `json:"speed,omitempty"`
	Heading  *float64  `json:"heading,omitempty"`
}

// Rejection is one ping that was not accepted.
type Rejection struct {
	Index  int    `json:"index"`
	Reason string `json:"reason"`
}

// IngestResult is the reply to a batch of pings.
type IngestResult struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   []Rejection `json:"rejected"`
	LastSeq    int64       `json:"last_seq"`
}

// Move tells listeners that a driver's position changed.
type Move struct {
	DriverID string
	TripID   string
	Status   string
	From     geo.Cell
	Pos      geo.Point
	TS       time.Time
	Seq      int64
	Heading  float64 // NaN when unknown
	Speed    float64 // NaN when unknown
	// Accepted holds every accepted ping of the batch in ts order, applied or
	// not (older fixes are still observations, e.g. for speed learning).
	Accepted []Ping
}

// Listener is told about every applied move. It must return quickly (queue
// work, never block on I/O): it runs on the ingest path.
type Listener interface {
	DriverMoved(ctx context.Context, m Move)
}

// Estimator gives a driving time between two points (the ETA engine).
type Estimator interface {
	EstimateSeconds(ctx context.Context, from, to geo.Point) (float64, error)
}

// Config configures a Service. Zero values are documented per field.
type Config struct {
	// Prefix is prepended to every Redis key. Zero: "".
	Prefix string
	// Limits bounds accepted pings (see Limits for its zero values).
	Limits Limits
	// SeqWindow is how many recent seqs per driver are remembered for
	// duplicate detection; older seqs count as duplicates. Zero: 4096.
	SeqWindow int
	// StateTTL is how long an idle driver's state is kept. Zero: 7 days.
	StateTTL time.Duration
	// CitySpeed is the straight-line speed (m/s) used for eta_s when no
	// Estimator is set. Zero: 8.3 (30 km/h).
	CitySpeed float64
	// Now returns the current time. Zero: time.Now.
	Now func() time.Time
	// PingRate is each driver's sustained ping rate (pings/s, a token
	// bucket kept in Redis beside the driver's state, so it holds across
	// nodes); a batch costs its size. Zero: 10; negative: no limit.
	PingRate float64
	// PingBurst is the bucket size; it is raised to Limits.MaxBatch so a
	// full offline batch always fits an idle bucket. Zero: 2×MaxBatch.
	PingBurst int
	// MaxInflight bounds the ingest scripts in flight at once (and so the
	// index updates). Batches beyond it wait here instead of in the Redis
	// connection pool, where thousands of drivers sending at once would
	// delay every other command of the node behind them (feed liveness
	// probes, catch-up reads) for seconds; a few dozen in flight keep Redis
	// busy. They go in two pipelines of at most MaxInflight/2 (internal/autopipe).
	// Zero: 64.
	MaxInflight int
}

// Service manages drivers. It is safe for concurrent use.
type Service struct {
	rdb       redis.UniversalClient
	idx       *georedis.Index
	cfg       Config
	listeners []Listener
	est       Estimator
	metrics   Metrics
	// denied caches, per driver, until when the ping bucket is known to be
	// empty (ratelimit.go): a flood is refused without a Redis round trip.
	denied sync.Map
	// scripts and puts group the ingest scripts and the index updates of
	// concurrent batches into pipelines (internal/autopipe).
	scripts *autopipe.Pipe[*scriptJob]
	puts    *autopipe.Pipe[*putJob]
	// disks keeps drivers' last cell disks between batches (cells.go).
	disks diskCache
}

// Metrics receives ingest figures; a nil func is skipped.
type Metrics struct {
	Accepted func(n int)
	Rejected func(reason string)
	Ingest   func(d time.Duration)
	Nearby   func(d time.Duration)
}

// NewService returns a driver service storing state in rdb and positions in idx.
func NewService(rdb redis.UniversalClient, idx *georedis.Index, cfg Config) *Service {
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.SeqWindow <= 0 {
		cfg.SeqWindow = 4096
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = 7 * 24 * time.Hour
	}
	if cfg.CitySpeed <= 0 {
		cfg.CitySpeed = 8.3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PingRate == 0 {
		cfg.PingRate = 10
	}
	if cfg.PingBurst == 0 {
		cfg.PingBurst = 2 * cfg.Limits.MaxBatch
	}
	cfg.PingBurst = max(cfg.PingBurst, cfg.Limits.MaxBatch)
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 64
	}
	s := &Service{rdb: rdb, idx: idx, cfg: cfg, disks: newDiskCache()}
	s.scripts = autopipe.New(cfg.MaxInflight, s.sendScripts)
	s.puts = autopipe.New(cfg.MaxInflight, s.sendPuts)
	return s
}

// Listen adds a listener. Call before serving.
func (s *Service) Listen(l Listener) { s.listeners = append(s.listeners, l) }

// SetEstimator sets the ETA engine used for nearby eta_s. Call before serving.
func (s *Service) SetEstimator(e Estimator) { s.est = e }

// SetMetrics sets the metric hooks. Call before serving.
func (s *Service) SetMetrics(m Metrics) { s.metrics = m }

// Limits returns the effective ping limits.
func (s *Service) Limits() Limits { return s.cfg.Limits }

// ValidID reports whether id is an acceptable driver (or trip) identifier.
// It is 1–64 bytes of [A-Za-z0-9_.:-], checked byte by byte (it runs on
// every driver request).
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Service) checkID(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: driver id must be 1-64 characters of [A-Za-z0-9_.:-]", ErrInvalid)
	}
	return nil
}

// Ingest validates and applies decoded pings for one driver. Pings are
// applied in ts order; seqs already seen count as duplicates; a ping older
// than the current position is accepted but does not move the driver.
func (s *Service) Ingest(ctx context.Context, driverID string, pings []DecodedPing) (IngestResult, error) {
	start := time.Now()
	if err := s.checkID(driverID); err != nil {
		return IngestResult{}, err
	}
	if len(pings) > s.cfg.Limits.MaxBatch {
		return IngestResult{}, fmt.Errorf("%w: %d pings, at most %d per request", ErrTooManyPings, len(pings), s.cfg.Limits.MaxBatch)
	}
	now := s.cfg.Now()
	res := IngestResult{Rejected: []Rejection{}}
	// valid holds the indexes of the valid pings (not copies of them).
	var idx [64]int32
	valid := idx[:0]
	if len(pings) > len(idx) {
		valid = make([]int32, 0, len(pings))
	}
	for i := range pings {
		d := &pings[i]
		reason := ReasonMissingField
		if d.Missing == "" {
			reason = Validate(d.Ping, now, s.cfg.Limits)
		}
		if reason != "" {
			res.Rejected = append(res.Rejected, Rejection{Index: i, Reason: reason})
			s.countRejected(reason)
			continue
		}
		valid = append(valid, int32(i))
	}
	if err := s.limited(driverID, now); err != nil {
		return IngestResult{}, err
	}
	if len(valid) == 0 {
		// Invalid pings cost the bucket too: a client sending garbage in a
		// loop is slowed like one sending good pings.
		_, err := s.run(ctx, s.newIngestCall(driverID, now, len(pings), 0))
		if err != nil {
			return IngestResult{}, s.ingestErr(driverID, now, err)
		}
		return res, nil
	}
	byTime := func(a, b int32) int {
		pa, pb := &pings[a].Ping, &pings[b].Ping
		if c := pa.TS.Compare(pb.TS); c != 0 {
			return c
		}
		return cmp.Compare(pa.Seq, pb.Seq)
	}
	if !slices.IsSortedFunc(valid, byTime) { // apps send them in order
		slices.SortStableFunc(valid, byTime)
	}
	call := s.newIngestCall(driverID, now, len(pings), len(valid))
	var disk cellDisk
	var slot *atomic.Pointer[cellDisk]
	var cached *cellDisk
	if len(valid) >= cellDiskMinBatch {
		slot = s.disks.slot(driverID)
		if cached = slot.Load(); cached != nil {
			disk = *cached
		}
	}
	for _, i := range valid {
		p := &pings[i].Ping
		var cell geo.Cell
		if slot != nil {
			cell = disk.cellOf(p.Pos)
		} else {
			cell = geo.CellOf(p.Pos, geo.ResIndex)
		}
		call.ping(*p, cell)
	}
	if slot != nil && disk.cell != 0 && (cached == nil || cached.cell != disk.cell) {
		d := disk
		slot.Store(&d)
	}
	v, err := s.run(ctx, call)
	if err != nil {
		return IngestResult{}, s.ingestErr(driverID, now, err)
	}
	rep, err := parseIngestReply(v)
	if err != nil {
		return IngestResult{}, err
	}
	if len(rep.codes) != len(valid) {
		return IngestResult{}, fmt.Errorf("driver: ingest: %d codes for %d pings", len(rep.codes), len(valid))
	}
	var last Ping
	for k, code := range rep.codes {
		switch code {
		case codeApplied:
			res.Accepted++
			last = pings[valid[k]].Ping
		case codeOlder:
			res.Accepted++
		case codeDuplicate:
			res.Duplicates++
		case codeJump:
			res.Rejected = append(res.Rejected, Rejection{Index: int(valid[k]), Reason: ReasonImplausible})
			s.countRejected(ReasonImplausible)
		}
	}
	if len(res.Rejected) > 1 {
		slices.SortFunc(res.Rejected, func(a, b Rejection) int { return cmp.Compare(a.Index, b.Index) })
	}
	res.LastSeq = rep.maxSeq
	if s.metrics.Accepted != nil && res.Accepted > 0 {
		s.metrics.Accepted(res.Accepted)
	}
	if rep.applied {
		err := s.put(ctx, geo.Update{ID: driverID, Prev: rep.prev, Pos: rep.pos, Seen: rep.ts, Status: rep.status})
		if err != nil {
			return IngestResult{}, fmt.Errorf("driver: ingest: %w", err)
		}
		accepted := make([]Ping, 0, res.Accepted)
		for k, code := range rep.codes {
			if code == codeApplied || code == codeOlder {
				accepted = append(accepted, pings[valid[k]].Ping)
			}
		}
		m := Move{DriverID: driverID, TripID: rep.trip, Status: rep.status, From: rep.prev, Pos: rep.pos,
			TS: rep.ts, Seq: last.Seq, Heading: last.Heading, Speed: last.Speed, Accepted: accepted}
		for _, l := range s.listeners {
			l.DriverMoved(ctx, m)
		}
	}
	if s.metrics.Ingest != nil {
		s.metrics.Ingest(time.Since(start))
	}
	return res, nil
}

func (s *Service) countRejected(reason string) {
	if s.metrics.Rejected != nil {
		s.metrics.Rejected(reason)
	}
}

// SetStatus makes a driver available or offline. A driver on a trip cannot
// change status (ErrConflict): the trip ends or is reassigned first.
func (s *Service) SetStatus(ctx context.Context, driverID, status string) (State, error) {
	if err := s.checkID(driverID); err != nil {
		return State{}, err
	}
	if status != StatusAvailable && status != StatusOffline {
		return State{}, fmt.Errorf("%w: status must be %q or %q", ErrInvalid, StatusAvailable, StatusOffline)
	}
	v, err := runScript(ctx, s.rdb, statusScript, []string{stateKey(s.cfg.Prefix, driverID)}, status, int64(s.cfg.StateTTL/time.Second))
	if err != nil {
		return State{}, fmt.Errorf("driver: status: %w", err)
	}
	if arr, ok := v.([]any); ok && len(arr) == 3 {
		if c, err := geo.ParseCell(str(arr[2])); err == nil {
			if err := s.idx.SetStatus(ctx, driverID, c, status); err != nil {
				return State{}, err
			}
		}
	}
	return s.Get(ctx, driverID)
}

// Claim gives driverID to tripID if the driver is available and free; it
// is atomic in Redis, so one driver never holds two trips. Claiming again
// for the same trip succeeds. ErrConflict when the driver is not free.
func (s *Service) Claim(ctx context.Context, driverID, tripID string) error {
	if err := s.checkID(driverID); err != nil {
		return err
	}
	v, err := runScript(ctx, s.rdb, claimScript, []string{stateKey(s.cfg.Prefix, driverID)}, tripID)
	if err != nil {
		return fmt.Errorf("driver: claim: %w", err)
	}
	arr, _ := v.([]any)
	if len(arr) != 3 {
		return fmt.Errorf("driver: claim: unexpected reply %v", v)
	}
	if ok, _ := arr[0].(int64); ok != 1 {
		return fmt.Errorf("%w: driver %s is %s", ErrConflict, driverID, str(arr[1]))
	}
	if c, err := geo.ParseCell(str(arr[2])); err == nil {
		return s.idx.SetStatus(ctx, driverID, c, StatusOnTrip)
	}
	return nil
}

// Release frees a driver held by tripID (no-op if another trip holds it) and
// sets its status (available, or offline).
func (s *Service) Release(ctx context.Context, driverID, tripID, status string) error {
	if status == "" {
		status = StatusAvailable
	}
	v, err := runScript(ctx, s.rdb, releaseScript, []string{stateKey(s.cfg.Prefix, driverID)}, tripID, status)
	if err != nil {
		return fmt.Errorf("driver: release: %w", err)
	}
	arr, _ := v.([]any)
	if len(arr) == 2 {
		if ok, _ := arr[0].(int64); ok == 1 {
			if c, err := geo.ParseCell(str(arr[1])); err == nil {
				return s.idx.SetStatus(ctx, driverID, c, status)
			}
		}
	}
	return nil
}

// Get returns a driver's state, ErrNotFound if it has none.
func (s *Service) Get(ctx context.Context, driverID string) (State, error) {
	if err := s.checkID(driverID); err != nil {
		return State{}, err
	}
	m, err := s.rdb.HGetAll(ctx, stateKey(s.cfg.Prefix, driverID)).Result()
	if err != nil {
		return State{}, fmt.Errorf("driver: get: %w", err)
	}
	if len(m) == 0 {
		return State{}, fmt.Errorf("%w: %s", ErrNotFound, driverID)
	}
	st := State{ID: driverID, Status: m["status"], TripID: m["trip"], Cell: m["cell"]}
	if st.Status == "" {
		st.Status = StatusOffline
	}
	st.LastSeq, _ = strconv.ParseInt(m["seq"], 10, 64)
	if ms, err := strconv.ParseFloat(m["ts"], 64); err == nil && ms > 0 {
		lat, _ := strconv.ParseFloat(m["lat"], 64)
		lng, _ := strconv.ParseFloat(m["lng"], 64)
		ts := time.UnixMilli(int64(ms)).UTC()
		st.Location = &Location{Lat: lat, Lng: lng, TS: ts,
			Accuracy: optF(m["acc"]), Speed: optF(m["spd"]), Heading: optF(m["hdg"])}
		st.Seen = &ts
		st.Fresh = s.cfg.Now().Sub(ts) <= s.idx.Stale()
	}
	return st, nil
}

func optF(s string) *float64 {
	if s == "" {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil
	}
	return &f
}

// Nearby is one driver found near a point.
type Nearby struct {
	ID        string    `json:"id"`
	Lat       float64   `json:"lat"`
	Lng       float64   `json:"lng"`
	DistanceM float64   `json:"distance_m"`
	ETAS      float64   `json:"eta_s"`
	Seen      time.Time `json:"last_seen"`
}

// NearbyQuery asks for fresh available drivers around a point.
type NearbyQuery struct {
	Center  geo.Point
	RadiusM float64 // zero: 3000; at most 50,000
	Limit   int     // zero: 10; at most 100
	Exclude map[string]bool
}

// Nearby returns fresh available drivers, nearest first, with distance and
// an ETA (the Estimator's, or straight line at the city speed).
func (s *Service) Nearby(ctx context.Context, q NearbyQuery) ([]Nearby, error) {
	start := time.Now()
	if !q.Center.Valid() {
		return nil, fmt.Errorf("%w: lat must be within [-90,90] and lng within [-180,180]", ErrInvalid)
	}
	if q.RadiusM == 0 {
		q.RadiusM = 3000
	}
	if q.Limit == 0 {
		q.Limit = 10
	}
	if q.RadiusM < 0 || q.RadiusM > 50000 || math.IsNaN(q.RadiusM) {
		return nil, fmt.Errorf("%w: radius_m must be within (0, 50000]", ErrInvalid)
	}
	if q.Limit < 0 || q.Limit > 100 {
		return nil, fmt.Errorf("%w: limit must be within [1, 100]", ErrInvalid)
	}
	limit := q.Limit + len(q.Exclude)
	hits, err := s.idx.Nearby(ctx, geo.NearbyQuery{Center: q.Center, RadiusM: q.RadiusM, Limit: limit, Status: StatusAvailable})
	if err != nil {
		return nil, fmt.Errorf("driver: nearby: %w", err)
	}
	out := make([]Nearby, 0, len(hits))
	for _, h := range hits {
		if q.Exclude[h.ID] {
			continue
		}
		if len(out) == q.Limit {
			break
		}
		n := Nearby{ID: h.ID, Lat: h.Pos.Lat, Lng: h.Pos.Lng, DistanceM: math.Round(h.DistanceM*10) / 10, Seen: h.Seen.UTC()}
		n.ETAS = math.Round(h.DistanceM / s.cfg.CitySpeed)
		if s.est != nil {
			if sec, err := s.est.EstimateSeconds(ctx, h.Pos, q.Center); err == nil {
				n.ETAS = math.Round(sec)
			}
		}
		out = append(out, n)
	}
	if s.est != nil {
		sort.SliceStable(out, func(a, b int) bool { return out[a].DistanceM < out[b].DistanceM })
	}
	if s.metrics.Nearby != nil {
		s.metrics.Nearby(time.Since(start))
	}
	return out, nil
}

// Index exposes the position index (ops viewport scans, trims).
func (s *Service) Index() *georedis.Index { return s.idx }

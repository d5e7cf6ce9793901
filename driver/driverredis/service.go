package driverredis

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

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/autopipe"
)

// Service manages drivers. It is safe for concurrent use.
type Service struct {
	rdb       redis.UniversalClient
	idx       *geo.Index
	cfg       driver.Config
	listeners []driver.Listener
	est       driver.Estimator
	metrics   driver.Metrics
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

// NewService returns a driver service storing state in rdb and positions in idx.
func NewService(rdb redis.UniversalClient, idx *geo.Index, cfg driver.Config) *Service {
	cfg.Limits = cfg.Limits.WithDefaults()
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
func (s *Service) Listen(l driver.Listener) { s.listeners = append(s.listeners, l) }

// SetEstimator sets the ETA engine used for nearby eta_s. Call before serving.
func (s *Service) SetEstimator(e driver.Estimator) { s.est = e }

// SetMetrics sets the metric hooks. Call before serving.
func (s *Service) SetMetrics(m driver.Metrics) { s.metrics = m }

// Limits returns the effective ping limits.
func (s *Service) Limits() driver.Limits { return s.cfg.Limits }

// Ingest validates and applies decoded pings for one driver. Pings are
// applied in ts order; seqs already seen count as duplicates; a ping older
// than the current position is accepted but does not move the driver.
func (s *Service) Ingest(ctx context.Context, driverID string, pings []driver.DecodedPing) (driver.IngestResult, error) {
	start := time.Now()
	if err := driver.CheckID(driverID); err != nil {
		return driver.IngestResult{}, err
	}
	if len(pings) > s.cfg.Limits.MaxBatch {
		return driver.IngestResult{}, fmt.Errorf("%w: %d pings, at most %d per request", driver.ErrTooManyPings, len(pings), s.cfg.Limits.MaxBatch)
	}
	now := s.cfg.Now()
	res := driver.IngestResult{Rejected: []driver.Rejection{}}
	// valid holds the indexes of the valid pings (not copies of them).
	var idx [64]int32
	valid := idx[:0]
	if len(pings) > len(idx) {
		valid = make([]int32, 0, len(pings))
	}
	for i := range pings {
		d := &pings[i]
		reason := driver.ReasonMissingField
		if d.Missing == "" {
			reason = driver.Validate(d.Ping, now, s.cfg.Limits)
		}
		if reason != "" {
			res.Rejected = append(res.Rejected, driver.Rejection{Index: i, Reason: reason})
			s.countRejected(reason)
			continue
		}
		valid = append(valid, int32(i))
	}
	if err := s.limited(driverID, now); err != nil {
		return driver.IngestResult{}, err
	}
	if len(valid) == 0 {
		// Invalid pings cost the bucket too: a client sending garbage in a
		// loop is slowed like one sending good pings.
		_, err := s.run(ctx, s.newIngestCall(driverID, now, len(pings), 0))
		if err != nil {
			return driver.IngestResult{}, s.ingestErr(driverID, now, err)
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
		return driver.IngestResult{}, s.ingestErr(driverID, now, err)
	}
	rep, err := parseIngestReply(v)
	if err != nil {
		return driver.IngestResult{}, err
	}
	if len(rep.codes) != len(valid) {
		return driver.IngestResult{}, fmt.Errorf("driver: ingest: %d codes for %d pings", len(rep.codes), len(valid))
	}
	var last driver.Ping
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
			res.Rejected = append(res.Rejected, driver.Rejection{Index: int(valid[k]), Reason: driver.ReasonImplausible})
			s.countRejected(driver.ReasonImplausible)
		}
	}
	if len(res.Rejected) > 1 {
		slices.SortFunc(res.Rejected, func(a, b driver.Rejection) int { return cmp.Compare(a.Index, b.Index) })
	}
	res.LastSeq = rep.maxSeq
	if s.metrics.Accepted != nil && res.Accepted > 0 {
		s.metrics.Accepted(res.Accepted)
	}
	if rep.applied {
		err := s.put(ctx, geo.Update{ID: driverID, Prev: rep.prev, Pos: rep.pos, Seen: rep.ts, Status: rep.status})
		if err != nil {
			return driver.IngestResult{}, fmt.Errorf("driver: ingest: %w", err)
		}
		accepted := make([]driver.Ping, 0, res.Accepted)
		for k, code := range rep.codes {
			if code == codeApplied || code == codeOlder {
				accepted = append(accepted, pings[valid[k]].Ping)
			}
		}
		m := driver.Move{DriverID: driverID, TripID: rep.trip, Status: rep.status, From: rep.prev, Pos: rep.pos,
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
func (s *Service) SetStatus(ctx context.Context, driverID, status string) (driver.State, error) {
	if err := driver.CheckID(driverID); err != nil {
		return driver.State{}, err
	}
	if status != driver.StatusAvailable && status != driver.StatusOffline {
		return driver.State{}, fmt.Errorf("%w: status must be %q or %q", driver.ErrInvalid, driver.StatusAvailable, driver.StatusOffline)
	}
	v, err := runScript(ctx, s.rdb, statusScript, []string{stateKey(s.cfg.Prefix, driverID)}, status, int64(s.cfg.StateTTL/time.Second))
	if err != nil {
		return driver.State{}, fmt.Errorf("driver: status: %w", err)
	}
	if arr, ok := v.([]any); ok && len(arr) == 3 {
		if c, err := geo.ParseCell(str(arr[2])); err == nil {
			if err := s.idx.SetStatus(ctx, driverID, c, status); err != nil {
				return driver.State{}, err
			}
		}
	}
	return s.Get(ctx, driverID)
}

// Claim gives driverID to tripID if the driver is available and free; it
// is atomic in Redis, so one driver never holds two trips. Claiming again
// for the same trip succeeds. ErrConflict when the driver is not free.
func (s *Service) Claim(ctx context.Context, driverID, tripID string) error {
	if err := driver.CheckID(driverID); err != nil {
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
		return fmt.Errorf("%w: driver %s is %s", driver.ErrConflict, driverID, str(arr[1]))
	}
	if c, err := geo.ParseCell(str(arr[2])); err == nil {
		return s.idx.SetStatus(ctx, driverID, c, driver.StatusOnTrip)
	}
	return nil
}

// Release frees a driver held by tripID (no-op if another trip holds it) and
// sets its status (available, or offline).
func (s *Service) Release(ctx context.Context, driverID, tripID, status string) error {
	if status == "" {
		status = driver.StatusAvailable
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
func (s *Service) Get(ctx context.Context, driverID string) (driver.State, error) {
	if err := driver.CheckID(driverID); err != nil {
		return driver.State{}, err
	}
	m, err := s.rdb.HGetAll(ctx, stateKey(s.cfg.Prefix, driverID)).Result()
	if err != nil {
		return driver.State{}, fmt.Errorf("driver: get: %w", err)
	}
	if len(m) == 0 {
		return driver.State{}, fmt.Errorf("%w: %s", driver.ErrNotFound, driverID)
	}
	st := driver.State{ID: driverID, Status: m["status"], TripID: m["trip"], Cell: m["cell"]}
	if st.Status == "" {
		st.Status = driver.StatusOffline
	}
	st.LastSeq, _ = strconv.ParseInt(m["seq"], 10, 64)
	if ms, err := strconv.ParseFloat(m["ts"], 64); err == nil && ms > 0 {
		lat, _ := strconv.ParseFloat(m["lat"], 64)
		lng, _ := strconv.ParseFloat(m["lng"], 64)
		ts := time.UnixMilli(int64(ms)).UTC()
		st.Location = &driver.Location{Lat: lat, Lng: lng, TS: ts,
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

// Nearby returns fresh available drivers, nearest first, with distance and
// an ETA (the Estimator's, or straight line at the city speed).
func (s *Service) Nearby(ctx context.Context, q driver.NearbyQuery) ([]driver.Nearby, error) {
	start := time.Now()
	if !q.Center.Valid() {
		return nil, fmt.Errorf("%w: lat must be within [-90,90] and lng within [-180,180]", driver.ErrInvalid)
	}
	if q.RadiusM == 0 {
		q.RadiusM = 3000
	}
	if q.Limit == 0 {
		q.Limit = 10
	}
	if q.RadiusM < 0 || q.RadiusM > 50000 || math.IsNaN(q.RadiusM) {
		return nil, fmt.Errorf("%w: radius_m must be within (0, 50000]", driver.ErrInvalid)
	}
	if q.Limit < 0 || q.Limit > 100 {
		return nil, fmt.Errorf("%w: limit must be within [1, 100]", driver.ErrInvalid)
	}
	limit := q.Limit + len(q.Exclude)
	hits, err := s.idx.Nearby(ctx, geo.NearbyQuery{Center: q.Center, RadiusM: q.RadiusM, Limit: limit, Status: driver.StatusAvailable})
	if err != nil {
		return nil, fmt.Errorf("driver: nearby: %w", err)
	}
	out := make([]driver.Nearby, 0, len(hits))
	for _, h := range hits {
		if q.Exclude[h.ID] {
			continue
		}
		if len(out) == q.Limit {
			break
		}
		n := driver.Nearby{ID: h.ID, Lat: h.Pos.Lat, Lng: h.Pos.Lng, DistanceM: math.Round(h.DistanceM*10) / 10, Seen: h.Seen.UTC()}
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
func (s *Service) Index() *geo.Index { return s.idx }

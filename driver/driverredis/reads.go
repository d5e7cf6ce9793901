package driverredis

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
)

// Reads are a driver's state (Get) and the search for nearby drivers.
type Reads struct {
	rdb     redis.UniversalClient
	idx     *georedis.Index
	cfg     driver.Config
	est     driver.Estimator
	metrics driver.Metrics
}

// Get returns a driver's state with its suspension, ErrNotFound if it has
// neither.
func (s *Reads) Get(ctx context.Context, driverID string) (driver.State, error) {
	if err := driver.CheckID(driverID); err != nil {
		return driver.State{}, err
	}
	// The state and the suspension (same slot), in one round trip.
	p := s.rdb.Pipeline()
	state := p.HGetAll(ctx, stateKey(s.cfg.Prefix, driverID))
	susp := p.HGetAll(ctx, suspKey(s.cfg.Prefix, driverID))
	if _, err := p.Exec(ctx); err != nil {
		return driver.State{}, fmt.Errorf("driver: get: %w", err)
	}
	m, sp := state.Val(), parseSuspension(susp.Val())
	if len(m) == 0 && sp == nil {
		return driver.State{}, fmt.Errorf("%w: %s", driver.ErrNotFound, driverID)
	}
	st := driver.State{ID: driverID, Status: m["status"], TripID: m["trip"], Cell: m["cell"], Suspension: sp}
	if sp != nil {
		// Also when the state expired: a suspension outlives it.
		st.Status = driver.StatusSuspended
	}
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
func (s *Reads) Nearby(ctx context.Context, q driver.NearbyQuery) ([]driver.Nearby, error) {
	start := time.Now()
	q, err := q.WithDefaults()
	if err != nil {
		return nil, err
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
func (s *Reads) Index() *georedis.Index { return s.idx }

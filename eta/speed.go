package eta

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/hextrack/hextrack/geo"
)

// SpeedRes is the H3 resolution of speed cells (see the package doc for why
// r8 and not r9).
const SpeedRes = 8

// Buckets is the number of time-of-day buckets (4 hours each). A bucket's
// speed is used once it has MinBucketCount observations; until then the
// cell's all-day speed, then the cell prior, then the city default.
const Buckets = 6

// MinBucketCount is the evidence a time-of-day bucket needs before it
// overrides the cell's all-day speed.
const MinBucketCount = 5

// SpeedConfig tunes the speed model. The zero value is usable: every zero
// field takes the default written beside it.
type SpeedConfig struct {
	Alpha      float64       // EWMA weight of a new observation; 0 → 0.1
	MinSpeedMS float64       // slower is a stationary fix, ignored; 0 → 1.0
	MaxSpeedMS float64       // faster is a GPS outlier, ignored; 0 → 45 (162 km/h)
	MinGap     time.Duration // shorter gaps are too noisy; 0 → 3 s
	MaxGap     time.Duration // longer gaps hide stops and turns; 0 → 2 min
	MaxJumpM   float64       // longer hops are ignored; 0 → 3000
	DefaultMS  float64       // city default speed without any prior; 0 → 8.3 (30 km/h)
}

func (c SpeedConfig) withDefaults() SpeedConfig {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Alpha, 0.1)
	def(&c.MinSpeedMS, 1.0)
	def(&c.MaxSpeedMS, 45)
	def(&c.MaxJumpM, 3000)
	def(&c.DefaultMS, 30/3.6)
	if c.MinGap <= 0 {
		c.MinGap = 3 * time.Second
	}
	if c.MaxGap <= 0 {
		c.MaxGap = 2 * time.Minute
	}
	return c
}

// Fix is a timestamped position of one driver.
type Fix struct {
	Point geo.Point
	Time  time.Time
}

// Observation is one speed sample attributed to a cell and a time bucket.
type Observation struct {
	Cell    geo.Cell
	Bucket  int
	SpeedMS float64
}

// ewma is a running average of pace (s/m). Pace, not speed, is averaged so
// that the mean gives the right travel time (a harmonic mean of speeds).
// Until n reaches 1/alpha the weight is 1/n (a plain mean), so early values
// don't stick to the first sample or the prior.
type ewma struct {
	Pace float64
	N    float64
}

func (e *ewma) add(pace, n, alpha float64) {
	if n <= 0 {
		return
	}
	// n samples of equal mean pace, folded one by one.
	for i := 0; i < int(n); i++ {
		w := math.Max(alpha, 1/(e.N+1))
		e.Pace += w * (pace - e.Pace)
		e.N++
	}
}

type cellSpeeds struct {
	all    ewma
	bucket [Buckets]ewma
}

// SpeedModel is the per-cell speed model: an in-memory EWMA per H3 cell
// (and per time-of-day bucket) with a prior per cell. It is safe for
// concurrent use. Persistence and asynchronous feeding are in SpeedStore
// (Redis) and Feeder; the model itself does no I/O.
type SpeedModel struct {
	cfg SpeedConfig

	mu     sync.RWMutex
	cells  map[geo.Cell]*cellSpeeds
	priors map[geo.Cell]float64
	ver    uint64
}

// NewSpeedModel returns an empty model.
func NewSpeedModel(cfg SpeedConfig) *SpeedModel {
	return &SpeedModel{cfg: cfg.withDefaults(), cells: map[geo.Cell]*cellSpeeds{}, priors: map[geo.Cell]float64{}}
}

// Config returns the model's configuration with defaults filled in.
func (m *SpeedModel) Config() SpeedConfig { return m.cfg }

// BucketOf is the time-of-day bucket of t (local time of t's location).
func BucketOf(t time.Time) int { return t.Hour() * Buckets / 24 }

// Observe turns two consecutive fixes of one moving driver into an
// observation. ok is false when the pair says nothing about road speed:
// out-of-order or too close in time, too far apart in time (a stop or a gap),
// stationary (below MinSpeedMS), or an outlier (above MaxSpeedMS or a jump).
// The speed is attributed to the cell of the segment's midpoint.
func (m *SpeedModel) Observe(a, b Fix) (Observation, bool) {
	dt := b.Time.Sub(a.Time)
	if dt < m.cfg.MinGap || dt > m.cfg.MaxGap || !a.Point.Valid() || !b.Point.Valid() {
		return Observation{}, false
	}
	d := geo.Distance(a.Point, b.Point)
	if d > m.cfg.MaxJumpM {
		return Observation{}, false
	}
	v := d / dt.Seconds()
	if v < m.cfg.MinSpeedMS || v > m.cfg.MaxSpeedMS {
		return Observation{}, false
	}
	mid := geo.Point{Lat: (a.Point.Lat + b.Point.Lat) / 2, Lng: (a.Point.Lng + b.Point.Lng) / 2}
	c := geo.CellOf(mid, SpeedRes)
	if c == 0 {
		return Observation{}, false
	}
	mt := a.Time.Add(dt / 2)
	return Observation{Cell: c, Bucket: BucketOf(mt), SpeedMS: v}, true
}

// Add folds observations into the model in order.
func (m *SpeedModel) Add(obs ...Observation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range obs {
		if !(o.SpeedMS > 0) || math.IsInf(o.SpeedMS, 0) || o.Bucket < 0 || o.Bucket >= Buckets {
			continue
		}
		cs := m.cell(o.Cell)
		pace := 1 / o.SpeedMS
		cs.all.add(pace, 1, m.cfg.Alpha)
		cs.bucket[o.Bucket].add(pace, 1, m.cfg.Alpha)
	}
	m.ver++
}

func (m *SpeedModel) cell(c geo.Cell) *cellSpeeds {
	cs := m.cells[c]
	if cs == nil {
		cs = &cellSpeeds{}
		m.cells[c] = cs
	}
	return cs
}

// SetPrior sets the speed (m/s) a cell has before any observation, e.g. the
// free-flow speed of its roads.
func (m *SpeedModel) SetPrior(c geo.Cell, speedMS float64) {
	if !(speedMS > 0) {
		return
	}
	m.mu.Lock()
	m.priors[c] = speedMS
	m.ver++
	m.mu.Unlock()
}

// Version increases on every change; caches (the router's edge weights)
// compare it to know when to rebuild.
func (m *SpeedModel) Version() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.ver
}

// Speed is the learned speed of cell c in bucket b (m/s) and whether it was
// learned (false: the prior or the city default).
func (m *SpeedModel) Speed(c geo.Cell, bucket int) (float64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if cs := m.cells[c]; cs != nil {
		if bucket >= 0 && bucket < Buckets && cs.bucket[bucket].N >= MinBucketCount {
			return 1 / cs.bucket[bucket].Pace, true
		}
		if cs.all.N > 0 {
			return 1 / cs.all.Pace, true
		}
	}
	if p, ok := m.priors[c]; ok {
		return p, false
	}
	return m.cfg.DefaultMS, false
}

// Prior is the prior speed of c (the city default when none was set).
func (m *SpeedModel) Prior(c geo.Cell) float64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if p, ok := m.priors[c]; ok {
		return p
	}
	return m.cfg.DefaultMS
}

// CellStat is a cell's learned state, for persistence and inspection.
type CellStat struct {
	Cell   geo.Cell
	Bucket int // -1 for the all-day average
	Pace   float64
	N      float64
}

// Snapshot lists every learned (cell, bucket) pair, sorted by cell then
// bucket, for tests and persistence.
func (m *SpeedModel) Snapshot() []CellStat {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]CellStat, 0, len(m.cells)*2)
	for c, cs := range m.cells {
		out = append(out, CellStat{c, -1, cs.all.Pace, cs.all.N})
		for b, e := range cs.bucket {
			if e.N > 0 {
				out = append(out, CellStat{c, b, e.Pace, e.N})
			}
		}
	}
	sortStats(out)
	return out
}

// merge replaces (cell, bucket) states with values read from the store.
func (m *SpeedModel) merge(stats []CellStat) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range stats {
		if !(s.Pace > 0) || s.N <= 0 {
			continue
		}
		cs := m.cell(s.Cell)
		switch {
		case s.Bucket < 0:
			cs.all = ewma{s.Pace, s.N}
		case s.Bucket < Buckets:
			cs.bucket[s.Bucket] = ewma{s.Pace, s.N}
		}
	}
	m.ver++
}

func sortStats(s []CellStat) {
	slices.SortFunc(s, func(a, b CellStat) int {
		if a.Cell != b.Cell {
			return cmp.Compare(a.Cell, b.Cell)
		}
		return cmp.Compare(a.Bucket, b.Bucket)
	})
}

package driverredis

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/autopipe"
)

// Service manages drivers. It is safe for concurrent use. Its methods
// are its four parts', one per job: ingest (Ingester, ingest.go), status
// and claims (Claims, claims.go), reads (Reads, reads.go) and ops'
// suspensions (Suspensions, suspend.go).
type Service struct {
	*Ingester
	*Claims
	*Reads
	*Suspensions
}

// NewService returns a driver service storing state in rdb and positions in idx.
func NewService(rdb redis.UniversalClient, idx *georedis.Index, cfg driver.Config) *Service {
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
	p := &pipes{rdb: rdb, idx: idx}
	p.scripts = autopipe.New(cfg.MaxInflight, p.sendScripts)
	p.puts = autopipe.New(cfg.MaxInflight, p.sendPuts)
	reads := &Reads{rdb: rdb, idx: idx, cfg: cfg}
	claims := &Claims{rdb: rdb, idx: idx, cfg: cfg, reads: reads}
	s := &Service{
		Ingester:    &Ingester{cfg: cfg, refusals: &refusals{rate: cfg.PingRate}, pipes: p, disks: newDiskCache()},
		Claims:      claims,
		Reads:       reads,
		Suspensions: &Suspensions{rdb: rdb, idx: idx, cfg: cfg, reads: reads, claims: claims},
	}
	return s
}

// Listen adds a listener. Call before serving.
func (s *Service) Listen(l driver.Listener) { s.listeners = append(s.listeners, l) }

// SetEstimator sets the ETA engine used for nearby eta_s. Call before serving.
func (s *Service) SetEstimator(e driver.Estimator) { s.est = e }

// SetMetrics sets the metric hooks. Call before serving.
func (s *Service) SetMetrics(m driver.Metrics) {
	s.Ingester.metrics = m
	s.Reads.metrics = m
}

// Limits returns the effective ping limits.
func (s *Service) Limits() driver.Limits { return s.Ingester.cfg.Limits }

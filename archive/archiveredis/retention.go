package archiveredis

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/archive"
)

// Pruner deletes the archive's raw records older than a time (events,
// trail points, driver status changes); archive/sqlstore's Store
// implements it.
type Pruner interface {
	Prune(ctx context.Context, before time.Time) (archive.PruneResult, error)
}

// RetentionConfig tunes a Retention job; zero values mean the documented
// defaults.
type RetentionConfig struct {
	// Prefix is the deployment's key prefix (the job's lease).
	Prefix string
	// NodeID names this node in the lease. "" means a random ID.
	NodeID string
	// Keep is how long raw records are kept. 0 means 90 days; negative
	// disables the job.
	Keep time.Duration
	// Every is how often a node tries to run the job. 0 means 1h.
	Every time.Duration
	// Registerer receives hextrack_archive_pruned_rows_total; nil: not
	// registered.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultRetention is RetentionConfig.Keep's default.
const DefaultRetention = 90 * 24 * time.Hour

// Retention enforces the archive's retention: every Every, the node that
// takes the job's lease ("<prefix>archive:lease:prune", held for Every so
// one node runs it per period whatever the number of nodes) prunes what is
// older than Keep. Trips and the ledger are kept (Pruner's contract). A
// failed prune (archive down) releases the lease so the next try, on any
// node, runs it.
type Retention struct {
	rdb    redis.UniversalClient
	arch   Pruner
	cfg    RetentionConfig
	pruned *prometheus.CounterVec
}

// NewRetention returns the retention job pruning arch.
func NewRetention(rdb redis.UniversalClient, arch Pruner, cfg RetentionConfig) *Retention {
	if cfg.NodeID == "" {
		cfg.NodeID = (Config{}).withDefaults().NodeID
	}
	if cfg.Keep == 0 {
		cfg.Keep = DefaultRetention
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hextrack_archive_pruned_rows_total",
		Help: "Rows deleted from the archive by the retention job, by table (events, trail_points, driver_status)."},
		[]string{"table"})
	if cfg.Registerer != nil {
		c = register(cfg.Registerer, c)
	}
	return &Retention{rdb: rdb, arch: arch, cfg: cfg, pruned: c}
}

func (r *Retention) lease() string { return r.cfg.Prefix + "archive:lease:prune" }

// Run tries the job at once and then every Every until ctx ends.
func (r *Retention) Run(ctx context.Context) error {
	if r.cfg.Keep < 0 {
		return nil
	}
	for {
		if _, _, err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("archive: retention failed; retried next period", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.cfg.Every):
		}
	}
}

// Once runs the job if this node takes the lease (ran false otherwise: it
// ran elsewhere this period) and returns what it pruned.
func (r *Retention) Once(ctx context.Context) (res archive.PruneResult, ran bool, err error) {
	ok, err := r.rdb.SetNX(ctx, r.lease(), r.cfg.NodeID, r.cfg.Every).Result()
	if err != nil {
		return res, false, fmt.Errorf("archive: retention lease: %w", err)
	}
	if !ok {
		return res, false, nil
	}
	before := r.cfg.Now().Add(-r.cfg.Keep)
	res, err = r.arch.Prune(ctx, before)
	r.pruned.WithLabelValues("events").Add(float64(res.Events))
	r.pruned.WithLabelValues("trail_points").Add(float64(res.Points))
	r.pruned.WithLabelValues("driver_status").Add(float64(res.StatusChanges))
	if err != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		releaseScript.Eval(rctx, r.rdb, []string{r.lease()}, r.cfg.NodeID)
		return res, true, fmt.Errorf("archive: retention: %w", err)
	}
	r.cfg.Logger.Info("archive: retention", "before", before, "events", res.Events, "trail_points", res.Points,
		"driver_status", res.StatusChanges)
	return res, true, nil
}

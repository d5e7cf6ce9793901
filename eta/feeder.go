package eta

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/geo"
)

// FeederConfig tunes a Feeder. Zero values take the defaults beside them.
type FeederConfig struct {
	QueueSize  int           // observations buffered between flushes; 0 → 8192
	FlushEvery time.Duration // 0 → 1 s
	SyncEvery  time.Duration // reload regions from the store; 0 → 30 s
	Registry   *prometheus.Registry
	Logger     *slog.Logger
}

// Feeder feeds the speed model from the ingest path without slowing it:
// Offer computes the observation and puts it on a bounded queue without
// blocking (a full queue drops it and counts the drop); Run flushes the queue
// in batches to the store (Redis) and merges the stored result back into the
// in-memory model, and periodically reloads the regions it knows so speeds
// learned on other nodes arrive too. With a nil store the batches go straight
// into the model.
type Feeder struct {
	model *SpeedModel
	store *SpeedStore
	cfg   FeederConfig
	q     chan Observation

	obs      *prometheus.CounterVec
	flushErr prometheus.Counter
	regions  map[geo.Cell]struct{}

	// obs by result, resolved once (Offer runs for every accepted ping).
	accepted, ignored, dropped prometheus.Counter
}

// NewFeeder returns a feeder; call Run to start flushing.
func NewFeeder(model *SpeedModel, store *SpeedStore, cfg FeederConfig) *Feeder {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 8192
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = time.Second
	}
	if cfg.SyncEvery <= 0 {
		cfg.SyncEvery = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	f := &Feeder{model: model, store: store, cfg: cfg, q: make(chan Observation, cfg.QueueSize),
		regions: map[geo.Cell]struct{}{},
		obs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hextrack_eta_speed_observations_total",
			Help: "Consecutive-ping pairs offered to the speed model, by result (accepted, ignored, dropped).",
		}, []string{"result"}),
		flushErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hextrack_eta_speed_flush_errors_total",
			Help: "Speed-model batches that could not be written to Redis (applied in memory only).",
		}),
	}
	f.accepted, f.ignored, f.dropped = f.obs.WithLabelValues("accepted"), f.obs.WithLabelValues("ignored"), f.obs.WithLabelValues("dropped")
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(f.obs, f.flushErr)
	}
	return f
}

// Offer turns two consecutive fixes of a moving driver into a speed
// observation and queues it. It never blocks: it returns false when the pair
// is ignored (stationary, outlier, gap) or the queue is full (dropped).
func (f *Feeder) Offer(a, b Fix) bool {
	o, ok := f.model.Observe(a, b)
	if !ok {
		f.ignored.Inc()
		return false
	}
	select {
	case f.q <- o:
		f.accepted.Inc()
		return true
	default:
		f.dropped.Inc()
		return false
	}
}

// Run flushes until ctx is done, then flushes what is queued (with a short
// deadline of its own) and returns nil.
func (f *Feeder) Run(ctx context.Context) error {
	flush := time.NewTicker(f.cfg.FlushEvery)
	defer flush.Stop()
	sync := time.NewTicker(f.cfg.SyncEvery)
	defer sync.Stop()
	batch := make([]Observation, 0, 1024)
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			f.flush(fctx, f.drain(batch[:0]))
			cancel()
			return nil
		case <-flush.C:
			f.flush(ctx, f.drain(batch[:0]))
		case <-sync.C:
			f.sync(ctx)
		}
	}
}

func (f *Feeder) drain(batch []Observation) []Observation {
	for {
		select {
		case o := <-f.q:
			batch = append(batch, o)
		default:
			return batch
		}
	}
}

// Flush drains the queue now (tests and shutdown use it).
func (f *Feeder) Flush(ctx context.Context) { f.flush(ctx, f.drain(nil)) }

func (f *Feeder) flush(ctx context.Context, batch []Observation) {
	if len(batch) == 0 {
		return
	}
	if f.store == nil {
		f.model.Add(batch...)
		return
	}
	for _, o := range batch {
		f.regions[o.Cell.Parent(geo.ResRegion)] = struct{}{}
	}
	stats, err := f.store.Apply(ctx, f.model.cfg.Alpha, batch)
	if err != nil {
		// Keep learning locally; Redis catches up with later batches.
		f.flushErr.Inc()
		f.cfg.Logger.Warn("eta: speed flush failed", "err", err, "observations", len(batch))
		f.model.Add(batch...)
		return
	}
	f.model.merge(stats)
}

func (f *Feeder) sync(ctx context.Context) {
	if f.store == nil || len(f.regions) == 0 {
		return
	}
	regions := make([]geo.Cell, 0, len(f.regions))
	for r := range f.regions {
		regions = append(regions, r)
	}
	stats, err := f.store.Load(ctx, regions)
	if err != nil {
		f.cfg.Logger.Warn("eta: speed sync failed", "err", err)
		return
	}
	f.model.merge(stats)
}

// LoadRegions reads the given regions from the store into the model (at
// start, e.g. the regions covering the map).
func (f *Feeder) LoadRegions(ctx context.Context, regions []geo.Cell) error {
	if f.store == nil {
		return nil
	}
	stats, err := f.store.Load(ctx, regions)
	if err != nil {
		return err
	}
	for _, r := range regions {
		f.regions[r] = struct{}{}
	}
	f.model.merge(stats)
	return nil
}

package archiveredis

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events prometheus.Counter
	gaps   prometheus.Counter
	errors prometheus.Counter
	lag    prometheus.Histogram
	shards prometheus.Gauge
	// backlog: age of the oldest unarchived event the last pass read.
	backlog prometheus.Gauge
	records *prometheus.CounterVec // by table: trail_points, ledger, driver_status
	invalid prometheus.Counter
	nodes   prometheus.Gauge
	pass    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "hextrack_archive_events_total",
			Help: "Durable feed events newly written to the archive (redeliveries not counted)."}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "hextrack_archive_gaps_total",
			Help: "Topics whose stream no longer held the events after the archived cursor (trimmed before archiving): continuity not proven."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "hextrack_archive_pipeline_errors_total",
			Help: "Archive pipeline passes that failed (archive or Redis unavailable) and were retried."}),
		// lag's buckets are fine around the 2 s target (make bench's archive
		// row reads its p99 from them) and coarse for outages.
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hextrack_archive_lag_seconds",
			Help:    "Age of each durable event (from its ID) when the archive write that holds it succeeded.",
			Buckets: []float64{.025, .05, .1, .25, .5, .75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 10, 30, 60, 300, 1800}}),
		shards: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hextrack_archive_shards_held",
			Help: "Dirty-index shards this node holds the lease of."}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hextrack_archive_backlog_seconds",
			Help: "Age of the oldest unarchived event this node's last pass read (0: none; grows while the archive is down)."}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hextrack_archive_records_total",
			Help: "Records other than events newly written to the archive, by table (trail_points, ledger, driver_status)."}, []string{"table"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{Name: "hextrack_archive_invalid_records_total",
			Help: "Stream entries that could not be made an archive record and were skipped (logged)."}),
		nodes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hextrack_archive_nodes",
			Help: "Live archive pipeline nodes this node last saw in the registry (shards are shared among them)."}),
		pass: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hextrack_archive_pass_seconds",
			Help:    "Duration of this node's successful passes over its shards' dirty topics (an event waits up to a pass plus the interval).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2, 4, 8, 16, 32}}),
	}
	if reg == nil {
		return m
	}
	m.events = register(reg, m.events)
	m.gaps = register(reg, m.gaps)
	m.errors = register(reg, m.errors)
	m.lag = register(reg, m.lag)
	m.shards = register(reg, m.shards)
	m.backlog = register(reg, m.backlog)
	m.records = register(reg, m.records)
	m.invalid = register(reg, m.invalid)
	m.nodes = register(reg, m.nodes)
	m.pass = register(reg, m.pass)
	return m
}

// register registers c, or returns the collector already registered under
// its name (two pipelines sharing one registry share their metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

package natsexport

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Stages of a failure (the errors counter's label).
const (
	stageLease   = "lease"   // taking or renewing the lease
	stageArchive = "archive" // reading pending events or marking them
	stageStream  = "stream"  // creating the stream, reading its tail
	stagePublish = "publish" // a publish refused, lost or not acknowledged
)

type metrics struct {
	events prometheus.Counter
	errors *prometheus.CounterVec
	lag    prometheus.Histogram
	held   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "hextrack_nats_export_events_total",
			Help: "Archived events the JetStream stream acknowledged (republished duplicates not counted twice by the stream)."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hextrack_nats_export_errors_total",
			Help: "NATS export steps that failed and were retried, by stage (lease, archive, stream, publish)."}, []string{"stage"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hextrack_nats_export_lag_seconds",
			Help:    "Age of each durable event (from its ts) when the JetStream stream acknowledged it.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 1800}}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hextrack_nats_export_leader",
			Help: "1 while this node holds the export lease (exactly one node should)."}),
	}
	for _, s := range []string{stageLease, stageArchive, stageStream, stagePublish} {
		m.errors.WithLabelValues(s)
	}
	if reg == nil {
		return m
	}
	m.events = register(reg, m.events)
	m.errors = register(reg, m.errors)
	m.lag = register(reg, m.lag)
	m.held = register(reg, m.held)
	return m
}

// register registers c, or returns the collector already registered under
// its name (two exporters sharing one registry, as in tests, share them).
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

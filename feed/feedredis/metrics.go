package feedredis

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	lag          prometheus.Histogram
	subscribers  prometheus.Gauge
	drops        prometheus.Counter
	resubscribes prometheus.Counter
	recoveries   prometheus.Counter
	catchups     *prometheus.CounterVec
	resets       prometheus.Counter
	published    prometheus.Counter
}

// Values of the catchups_total trigger label.
const (
	triggerPosition    = "position_check"
	triggerChain       = "broken_chain"
	triggerResubscribe = "resubscribe"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "hextrack", Subsystem: "feed", Name: "delivery_lag_seconds",
			Help:    "Time from an event's envelope ts (set by the publisher) to its arrival at this node's hub, before fan-out.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "hextrack", Subsystem: "feed", Name: "subscribers",
			Help: "Local subscriptions currently open on this node.",
		}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "hextrack", Subsystem: "feed", Name: "slow_consumer_drops_total",
			Help: "Subscriptions dropped because their buffer overflowed.",
		}),
		resubscribes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "hextrack", Subsystem: "feed", Name: "resubscribes_total",
			Help: "Pub/sub connections re-established after an error or a missed liveness probe.",
		}),
		recoveries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "hextrack", Subsystem: "feed", Name: "recoveries_total",
			Help: "Stream re-reads started by a detected gap or a resubscription.",
		}),
		catchups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hextrack", Subsystem: "feed", Name: "catchups_total",
			Help: "Local listeners sent back to read the stream, by trigger: position_check (the stream is ahead of what they delivered), broken_chain (a notice whose predecessor they had not seen), resubscribe (a new pub/sub connection).",
		}, []string{"trigger"}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "hextrack", Subsystem: "feed", Name: "resets_total",
			Help: "Reset items delivered (continuity could not be proven).",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "hextrack", Subsystem: "feed", Name: "published_total",
			Help: "Durable events appended by this node (duplicates by idempotency key excluded).",
		}),
	}
	for _, tr := range []string{triggerPosition, triggerChain, triggerResubscribe} {
		m.catchups.WithLabelValues(tr) // exported at 0 before the first
	}
	if reg != nil {
		m.lag = register(reg, m.lag)
		m.subscribers = register(reg, m.subscribers)
		m.drops = register(reg, m.drops)
		m.resubscribes = register(reg, m.resubscribes)
		m.recoveries = register(reg, m.recoveries)
		m.catchups = register(reg, m.catchups)
		m.resets = register(reg, m.resets)
		m.published = register(reg, m.published)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name (two brokers sharing one registry share their metrics).
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

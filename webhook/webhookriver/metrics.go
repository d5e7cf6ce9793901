package webhookriver

import "github.com/prometheus/client_golang/prometheus"

// Delivery outcomes counted by hextrack_webhook_deliveries_total.
const (
	outcomeDelivered = "delivered"
	outcomeFailed    = "failed" // one attempt failed; retried
	outcomeDead      = "dead"
)

type metrics struct {
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
	paused     prometheus.Gauge
	routed     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hextrack_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome: delivered, failed (retried), dead (dead-lettered)."}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hextrack_webhook_delivery_latency_seconds",
			Help:    "Time from an event to its successful delivery to an endpoint.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400}}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hextrack_webhook_endpoints_paused",
			Help: "Webhook endpoints paused for failing too long (refreshed every sweep)."}),
		routed: prometheus.NewCounter(prometheus.CounterOpts{Name: "hextrack_webhook_events_routed_total",
			Help: "Archived events routed to the webhook queues (matched or not)."}),
	}
	for _, o := range []string{outcomeDelivered, outcomeFailed, outcomeDead} {
		m.deliveries.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.latency, m.paused, m.routed)
	}
	return m
}

package eta

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Accuracy records, for every finished trip, the actual duration against the
// first promised one — live accuracy from day one.
type Accuracy struct {
	ratio *prometheus.HistogramVec
	err   *prometheus.HistogramVec
}

// NewAccuracy creates the histograms and registers them on reg.
func NewAccuracy(reg *prometheus.Registry) *Accuracy {
	a := &Accuracy{
		ratio: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hextrack_eta_actual_over_promised_ratio",
			Help:    "Actual trip-leg duration divided by the first promised ETA.",
			Buckets: []float64{0.5, 0.7, 0.8, 0.9, 0.95, 1, 1.05, 1.1, 1.2, 1.3, 1.5, 2, 3},
		}, []string{"leg"}),
		err: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hextrack_eta_error_seconds",
			Help:    "Actual minus first promised duration (positive: later than promised).",
			Buckets: []float64{-600, -300, -120, -60, -30, -15, 0, 15, 30, 60, 120, 300, 600},
		}, []string{"leg"}),
	}
	if reg != nil {
		reg.MustRegister(a.ratio, a.err)
	}
	return a
}

// Observe records one finished leg ("pickup" or "dropoff").
func (a *Accuracy) Observe(leg string, promised, actual time.Duration) {
	if promised <= 0 || actual < 0 {
		return
	}
	a.ratio.WithLabelValues(leg).Observe(actual.Seconds() / promised.Seconds())
	a.err.WithLabelValues(leg).Observe((actual - promised).Seconds())
}

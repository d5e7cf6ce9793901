package etalearn

import (
	"github.com/prometheus/client_golang/prometheus"
)

// trainerMetrics are the trainer's figures in /metrics.
type trainerMetrics struct {
	rounds     *prometheus.CounterVec
	took       prometheus.Gauge
	trips      *prometheus.GaugeVec
	validation *prometheus.GaugeVec
}

func newTrainerMetrics(reg *prometheus.Registry) *trainerMetrics {
	m := &trainerMetrics{
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hextrack_eta_train_rounds_total",
			Help: "ETA training rounds from the archive, by outcome (installed, refused, skipped, failed)."}, []string{"outcome"}),
		took: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hextrack_eta_train_last_seconds",
			Help: "How long the last ETA training round took (reading, training, validating)."}),
		trips: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hextrack_eta_train_last_trips",
			Help: "Trips of the last ETA training round: completed (listed), valid, train, validation."}, []string{"part"}),
		validation: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hextrack_eta_model_validation_error",
			Help: "Error on the last round's validation slice (the latest trips) of the served model and of the last candidate, by metric (mape as a fraction, rmsle)."},
			[]string{"model", "metric"}),
	}
	for _, o := range []Outcome{Installed, Refused, Skipped, Failed} {
		m.rounds.WithLabelValues(string(o))
	}
	if reg != nil {
		reg.MustRegister(m.rounds, m.took, m.trips, m.validation)
	}
	return m
}

func (m *trainerMetrics) round(r Result) {
	m.rounds.WithLabelValues(string(r.Outcome)).Inc()
	m.took.Set(r.Took.Seconds())
	m.trips.WithLabelValues("completed").Set(float64(r.Read.Completed))
	m.trips.WithLabelValues("valid").Set(float64(r.Valid))
	m.trips.WithLabelValues("train").Set(float64(r.Train))
	m.trips.WithLabelValues("validation").Set(float64(r.Validation))
}

// validated records a round's scores: the candidate's and the served
// model's (which becomes the candidate's when it is installed).
func (m *trainerMetrics) validated(r Result) {
	m.validation.WithLabelValues("candidate", "mape").Set(r.Candidate.MAPE)
	m.validation.WithLabelValues("candidate", "rmsle").Set(r.Candidate.RMSLE)
	served := r.Current
	if r.Candidate.MAPE <= r.Current.MAPE {
		served = r.Candidate
	}
	m.validation.WithLabelValues("served", "mape").Set(served.MAPE)
	m.validation.WithLabelValues("served", "rmsle").Set(served.RMSLE)
}

// forget: after a rollback or a reload the served model's validation
// error is unknown until the next round.
func (m *trainerMetrics) forget() {
	m.validation.DeleteLabelValues("served", "mape")
	m.validation.DeleteLabelValues("served", "rmsle")
}

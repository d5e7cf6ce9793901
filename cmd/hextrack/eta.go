package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/eta/live"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// syntheticCenter is where `--map synthetic` builds its city; drivesim's
// synthetic city (seed 1) uses the same center so both see the same roads.
var syntheticCenter = geo.Point{Lat: 41.1579, Lng: -8.6291}

// etaParts is the ETA engine as wired into the server.
type etaParts struct {
	graph  *road.Graph // nil without a map
	source string      // "osm", "synthetic" or "none"
	est    *eta.Estimator
	feeder *eta.Feeder
	speeds *eta.SpeedListener
	// acc is the live accuracy histogram (actual vs first promised per
	// leg), fed by live.Service on completion.
	acc *eta.Accuracy
	reg *prometheus.Registry
}

// openETA loads the map (a PBF path, "synthetic" or nothing) and builds the
// speed model, router, estimator and the feeder that learns from pings.
func openETA(mapFile, prefix string, rdb redis.UniversalClient, reg *prometheus.Registry, m *Main) (*etaParts, error) {
	p := &etaParts{source: "none"}
	switch mapFile {
	case "":
	case "synthetic":
		p.graph, p.source = road.SyntheticCity(1, syntheticCenter), "synthetic"
	default:
		g, err := road.LoadOSMFile(mapFile)
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", mapFile, err)
		}
		if g.NumNodes() == 0 {
			return nil, fmt.Errorf("map %s: no drivable roads", mapFile)
		}
		p.graph, p.source = g, "osm"
	}
	model := eta.NewSpeedModel(eta.SpeedConfig{})
	var router *eta.Router
	if p.graph != nil {
		router = eta.NewRouter(p.graph, model)
		m.Logger.Info("map loaded", "source", p.source, "nodes", p.graph.NumNodes(), "edges", p.graph.NumEdges())
	}
	p.est = eta.NewEstimator(model, router)
	store := eta.NewSpeedStore(rdb, prefix+"eta:speed", 7*24*time.Hour)
	p.feeder = eta.NewFeeder(model, store, eta.FeederConfig{Registry: reg, Logger: m.Logger})
	p.speeds = eta.NewSpeedListener(p.feeder)
	p.acc, p.reg = eta.NewAccuracy(reg), reg
	return p, nil
}

// EstimateSeconds makes the ETA engine a driver.Estimator (nearby eta_s
// and dispatch ranking). It is the learned straight-line estimate (speeds of
// the cells along the line × the learned detour factor): nearby answers up
// to 100 drivers per request and must stay well under a millisecond, so it
// does not route each candidate. Trip ETAs route over the graph.
func (p *etaParts) EstimateSeconds(_ context.Context, from, to geo.Point) (float64, error) {
	return p.est.Line(from, to, time.Now()).Seconds, nil
}

var _ driver.Estimator = (*etaParts)(nil)

// tripRouter makes the ETA engine an live.RouteEstimator for live trip ETAs: routed
// over the road graph when there is one (the line estimate off the graph or
// when no directed path joins the points, e.g. a driver snapped onto the
// wrong side of a one-way), else the learned line.
type tripRouter struct{ est *eta.Estimator }

func (r tripRouter) Estimate(ctx context.Context, from, to geo.Point) (seconds, meters float64, err error) {
	e, err := r.est.Estimate(ctx, from, to)
	if errors.Is(err, road.ErrUnreachable) {
		e, err = r.est.Line(from, to, time.Now()), nil
	}
	return e.Seconds, e.Meters, err
}

var _ live.RouteEstimator = tripRouter{}

// arrivalRouteM: within this straight-line distance of the pickup,
// dispatch's trip.arriving ETA is routed; farther out the line estimate
// serves (the "arriving" threshold is about a minute out, and routing every
// move of every assigned driver from across town would cost for nothing).
const arrivalRouteM = 2000

// arrivalEstimator is the driver.Estimator dispatch uses for trip.arriving.
type arrivalEstimator struct{ p *etaParts }

func (a arrivalEstimator) EstimateSeconds(ctx context.Context, from, to geo.Point) (float64, error) {
	if geo.Distance(from, to) > arrivalRouteM {
		return a.p.EstimateSeconds(ctx, from, to)
	}
	s, _, err := tripRouter{a.p.est}.Estimate(ctx, from, to)
	return s, err
}

var _ driver.Estimator = arrivalEstimator{}

// liveETA builds the live trip ETAs over trips, with their metrics on the
// server's registry.
func (p *etaParts) liveETA(trips *tripredis.Service, log *slog.Logger) *live.Service {
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "hextrack_trip_eta_dropped_total",
		Help: "Driver moves dropped by live trip ETAs because the queue was full."})
	throttled := prometheus.NewCounter(prometheus.CounterOpts{Name: "hextrack_trip_eta_throttled_total",
		Help: "Driver moves that came within the per-trip ETA period of the last estimate."})
	computed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hextrack_trip_eta_computed_total",
		Help: "Live trip ETAs stored, by whether they were emitted as trip.eta."}, []string{"emitted"})
	took := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hextrack_trip_eta_compute_seconds",
		Help: "Time to estimate and store one live trip ETA.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12)})
	if p.reg != nil {
		p.reg.MustRegister(dropped, throttled, computed, took)
	}
	return live.New(trips.ETAs(), tripRouter{p.est}, live.Config{
		ShouldEmit: eta.ShouldEmit,
		Accuracy:   p.acc,
		Now:        trips.Config().Now,
		Logger:     log,
		Metrics: live.Metrics{
			Dropped:   dropped.Inc,
			Throttled: throttled.Inc,
			Computed: func(d time.Duration, emitted bool) {
				computed.WithLabelValues(strconv.FormatBool(emitted)).Inc()
				took.Observe(d.Seconds())
			},
		},
	})
}

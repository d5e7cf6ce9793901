package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/dispatch/dispatchredis"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/eta/etalearn"
	"github.com/hextrack/hextrack/eta/etamodel"
	"github.com/hextrack/hextrack/eta/live"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// syntheticCenter is where `--map synthetic` builds its city; drivesim's
// synthetic city (seed 1) uses the same center so both see the same roads.
var syntheticCenter = geo.Point{Lat: 41.1579, Lng: -8.6291}

// etaParts is the ETA engine as wired into the server.
type etaParts struct {
	graph   *road.Graph // nil without a map
	source  string      // "osm", "synthetic" or "none"
	mapFile string      // --map
	// served is the model every estimate reads (atomically: the trainer
	// installs new ones while estimates run): its file (--eta-model, or
	// the model dir's current one; nil: none, the speeds learned online
	// from pings and no learned correction), estimator and time zone.
	served atomic.Pointer[etalearn.Served]
	// online is the estimator over the speeds the feeder learns from pings.
	online  *eta.Estimator
	trainer *etalearn.Trainer // nil: not training (--eta-train-every, no archive)
	info    *prometheus.GaugeVec
	feeder  *eta.Feeder
	speeds  *eta.SpeedListener
	// acc is the live accuracy histogram (actual vs first promised per
	// leg), fed by live.Service on completion.
	acc *eta.Accuracy
	reg *prometheus.Registry
}

// openETA loads the map (a PBF path, "synthetic" or nothing) and the ETA
// model file (modelFile; empty: none), and builds the speed model, router,
// estimator and the feeder that learns from pings.
//
// With a model the estimator is the one eta-eval scored from the same
// file: its speeds, detour factor and learned correction, routed over the
// map only if the model was trained over that same map (a model trained
// without one estimates along the line; one trained with a map refuses to
// start with another or none). Its speeds are frozen: the feeder still
// learns pings into Redis (for the next training), into a speed model of
// its own.
func openETA(mapFile, modelFile, modelDir, prefix string, rdb redis.UniversalClient, reg *prometheus.Registry, m *Main) (*etaParts, error) {
	p := &etaParts{source: "none", mapFile: mapFile}
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
	if p.graph != nil {
		m.Logger.Info("map loaded", "source", p.source, "nodes", p.graph.NumNodes(), "edges", p.graph.NumEdges())
	}
	learning := eta.NewSpeedModel(eta.SpeedConfig{}) // what the feeder learns into
	var router *eta.Router
	if p.graph != nil {
		router = eta.NewRouter(p.graph, learning)
	}
	p.online = eta.NewEstimator(learning, router)
	if modelDir != "" {
		// A model installed by an earlier run's training is served
		// before --eta-model.
		if cur := filepath.Join(modelDir, etalearn.CurrentFile); fileExists(cur) {
			m.Logger.Info("eta model: serving the model dir's current model", "file", cur, "instead_of", modelFile)
			modelFile = cur
		}
	}
	if modelFile == "" {
		p.served.Store(&etalearn.Served{Est: p.online, Loc: time.UTC})
		m.Logger.Info("eta model: none (--eta-model): speeds learned online from pings, no learned correction")
	} else {
		s, err := p.loadModel(modelFile, m.Logger)
		if err != nil {
			return nil, err
		}
		p.served.Store(s)
	}
	store := eta.NewSpeedStore(rdb, prefix+"eta:speed", 7*24*time.Hour)
	p.feeder = eta.NewFeeder(learning, store, eta.FeederConfig{Registry: reg, Logger: m.Logger})
	p.speeds = eta.NewSpeedListener(p.feeder)
	p.acc, p.reg = eta.NewAccuracy(reg), reg
	p.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hextrack_eta_model_info",
		Help: "The ETA model served (always 1): its version and fingerprint (first 12 hex digits of the model file's sha256); version \"online\" without a model file."},
		[]string{"version", "fingerprint"})
	p.showModel(p.served.Load())
	if reg != nil {
		reg.MustRegister(p.info)
	}
	return p, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// showModel names s in hextrack_eta_model_info.
func (p *etaParts) showModel(s *etalearn.Served) {
	p.info.Reset()
	p.info.WithLabelValues(s.Version(), s.Fingerprint()).Set(1)
}

// loadModel reads a model file and builds the estimator the server
// serves from it.
func (p *etaParts) loadModel(modelFile string, log *slog.Logger) (*etalearn.Served, error) {
	mdl, err := etamodel.ReadFile(modelFile)
	if err != nil {
		return nil, fmt.Errorf("eta model: %w", err)
	}
	g := p.graph
	switch {
	case mdl.Info.Map == nil:
		g = nil
		if p.graph != nil {
			log.Info("eta model: trained without a map, so trip ETAs are estimated along the line as it was scored; the map is only drawn")
		}
	case p.source != "osm":
		return nil, fmt.Errorf("eta model %s: trained with the map %s; serve it with --map", modelFile, mdl.Info.Map.Name)
	default:
		src, err := etamodel.SourceOf(p.mapFile)
		if err != nil {
			return nil, fmt.Errorf("eta model: %w", err)
		}
		if src.SHA256 != mdl.Info.Map.SHA256 {
			return nil, fmt.Errorf("eta model %s: trained with the map %s, not --map %s", modelFile, mdl.Info.Map.Name, p.mapFile)
		}
	}
	s := &etalearn.Served{Model: mdl, Loc: time.UTC}
	if mdl.Info.TZ != "" {
		if s.Loc, err = time.LoadLocation(mdl.Info.TZ); err != nil {
			return nil, fmt.Errorf("eta model %s: time zone: %w", modelFile, err)
		}
	}
	if s.Est, err = mdl.Estimator(g); err != nil {
		return nil, fmt.Errorf("eta model %s: %w", modelFile, err)
	}
	log.Info("eta model: serving", "file", modelFile, "version", mdl.Info.Version, "fingerprint", mdl.Fingerprint(),
		"trained_at", mdl.Info.TrainedAt, "train_trips", mdl.Info.TrainTrips, "tz", s.Loc.String(),
		"routed", g != nil, "correction", mdl.HasCorrection(), "edge_speeds", mdl.HasEdgeSpeeds())
	return s, nil
}

// newTrainer makes the trainer of the served model from the archive's
// completed trips, keeping models in dir; Run starts it (at once, then
// every c.ETATrainEvery, in the background: etalearn.Trainer.Run).
func (p *etaParts) newTrainer(a etalearn.Archive, c *Config, dir string, reg *prometheus.Registry, log *slog.Logger) error {
	loc, err := time.LoadLocation(c.ETATZ)
	if err != nil {
		return fmt.Errorf("--eta-tz: %w", err)
	}
	cfg := etalearn.Config{Archive: a, Loc: loc, Dir: dir, Registry: reg, Logger: log,
		Load: func(path string) (*etalearn.Served, error) { return p.loadModel(path, log) },
		OnInstall: func(s *etalearn.Served) {
			p.served.Store(s)
			p.showModel(s)
		}}
	if p.source == "osm" {
		src, err := etamodel.SourceOf(p.mapFile)
		if err != nil {
			return err
		}
		cfg.Graph, cfg.Map = p.graph, &src
	}
	p.trainer = etalearn.New(cfg, p.served.Load())
	if prev := filepath.Join(dir, etalearn.PreviousFile); dir != "" && fileExists(prev) {
		if s, err := p.loadModel(prev, log); err == nil {
			p.trainer.SetPrevious(s)
		} else {
			log.Warn("eta model: the model dir's previous model cannot be served; no rollback to it", "err", err)
		}
	}
	log.Info("eta training: from the archive's completed trips, at start and periodically", "every", c.ETATrainEvery, "dir", dir, "tz", loc.String())
	return nil
}

// now is the time estimates leave at, in s's time zone (its
// time-of-day features and speed buckets are local times there).
func now(s *etalearn.Served) time.Time { return time.Now().In(s.Loc) }

// line is s's line estimate with its learned correction, if any.
func line(s *etalearn.Served, from, to geo.Point, t time.Time) eta.Estimate {
	e := s.Est.Line(from, to, t)
	if c := s.Est.Correction(); c != nil {
		e.Seconds = c.Seconds(from, to, t, eta.Motion{}, e)
	}
	return e
}

// EstimateSeconds makes the ETA engine a driver.Estimator (nearby eta_s
// and dispatch ranking). It is the learned straight-line estimate (speeds of
// the cells along the line × the learned detour factor) with the served
// model's correction: nearby answers up to 100 drivers per request, so it
// does not route each candidate. Trip ETAs route over the graph. Without a
// map in the model this is exactly the estimate eta-eval scores for a
// whole trip. The correction is most of its cost (≈0.15–0.3 ms a candidate
// with a model of the vendored Porto sample, its journey features scanning
// every training journey; the raw line estimate ≈0.03 ms): see
// BenchmarkLineEstimateCorrected in eta.
func (p *etaParts) EstimateSeconds(_ context.Context, from, to geo.Point) (float64, error) {
	s := p.served.Load()
	return line(s, from, to, now(s)).Seconds, nil
}

var _ driver.Estimator = (*etaParts)(nil)

// tripRouter makes the ETA engine an live.RouteEstimator for live trip ETAs: routed
// over the road graph when there is one (the line estimate off the graph or
// when no directed path joins the points, e.g. a driver snapped onto the
// wrong side of a one-way), else the learned line.
type tripRouter struct{ p *etaParts }

func (r tripRouter) Estimate(ctx context.Context, from, to geo.Point) (seconds, meters float64, err error) {
	s := r.p.served.Load()
	t := now(s)
	e, err := s.Est.EstimateAt(ctx, from, to, t)
	if errors.Is(err, road.ErrUnreachable) {
		e, err = line(s, from, to, t), nil
	}
	return e.Seconds, e.Meters, err
}

// movingRouter is tripRouter for a served model with a correction (or a
// trainer that may install one): live ETAs then keep the drivers' recent
// fixes for EstimateMoving (without a correction motion changes nothing,
// so they are not kept).
type movingRouter struct{ tripRouter }

// EstimateMoving is Estimate for a driver under way: its latest fixes give
// the correction the vehicle's motion, as eta-eval's remaining-time
// queries do.
func (r movingRouter) EstimateMoving(ctx context.Context, fixes []live.Fix, to geo.Point) (seconds, meters float64, err error) {
	ef := make([]eta.Fix, len(fixes))
	for i, f := range fixes {
		ef[i] = eta.Fix{Point: f.Pos, Time: f.TS}
	}
	s := r.p.served.Load()
	from, t := fixes[len(fixes)-1].Pos, now(s)
	e, err := s.Est.EstimateMoving(ctx, from, to, t, eta.MotionOf(ef))
	if errors.Is(err, road.ErrUnreachable) {
		e, err = line(s, from, to, t), nil
	}
	return e.Seconds, e.Meters, err
}

var (
	_ live.RouteEstimator  = tripRouter{}
	_ live.MovingEstimator = movingRouter{}
)

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
	s, _, err := tripRouter(a).Estimate(ctx, from, to)
	return s, err
}

var _ driver.Estimator = arrivalEstimator{}

// wireDispatch gives dispatch the ETA engine's pieces: the estimator of
// trip.arriving (also the trips' stop.approaching), and the router of the trip.route commands (the road
// graph's paths when a map is loaded, else straight legs).
func (p *etaParts) wireDispatch(d *dispatchredis.Dispatcher, drivers dispatch.Positions, trips *tripredis.Service) {
	d.SetEstimator(arrivalEstimator{p})
	trips.SetEstimator(arrivalEstimator{p}) // stop.approaching
	r := dispatch.Router{Positions: drivers}
	if p.graph != nil {
		r.Paths = roadPaths{p.graph}
	}
	d.SetRouter(r)
}

// roadPaths are the road graph's free-flow fastest paths, as dispatch's
// Paths (the route a driver is sent).
type roadPaths struct{ g *road.Graph }

func (r roadPaths) Path(from, to geo.Point) ([]geo.Point, error) {
	rt, err := r.g.Route(from, to)
	return rt.Path, err
}

// modelName names the served model in trip.eta (nil: none, the online
// speeds).
func (p *etaParts) modelName() *trip.ETAModel {
	s := p.served.Load()
	if s.Model == nil {
		return nil
	}
	return &trip.ETAModel{Version: s.Version(), Fingerprint: s.Fingerprint()}
}

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
	var router live.RouteEstimator = tripRouter{p}
	if p.served.Load().Est.Correction() != nil || p.trainer != nil {
		router = movingRouter{tripRouter{p}}
	}
	return live.New(trips.ETAs(), router, live.Config{
		ShouldEmit: eta.ShouldEmit,
		StopLegs:   router, // the per-stop ETAs of trip.eta, by the same router
		ModelOf:    p.modelName,
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

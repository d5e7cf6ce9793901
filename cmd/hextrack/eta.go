package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/geo"
)

// syntheticCenter is where `--map synthetic` builds its city; drivesim's
// synthetic city (seed 1) uses the same center so both see the same roads.
var syntheticCenter = geo.Point{Lat: 41.1579, Lng: -8.6291}

// etaParts is the ETA engine as wired into the server.
type etaParts struct {
	graph  *geo.Graph // nil without a map
	source string     // "osm", "synthetic" or "none"
	est    *eta.Estimator
	feeder *eta.Feeder
	speeds *speedListener
}

// openETA loads the map (a PBF path, "synthetic" or nothing) and builds the
// speed model, router, estimator and the feeder that learns from pings.
func openETA(mapFile, prefix string, rdb redis.UniversalClient, reg *prometheus.Registry, m *Main) (*etaParts, error) {
	p := &etaParts{source: "none"}
	switch mapFile {
	case "":
	case "synthetic":
		p.graph, p.source = geo.SyntheticCity(1, syntheticCenter), "synthetic"
	default:
		g, err := geo.LoadOSMFile(mapFile)
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
	p.speeds = &speedListener{feeder: p.feeder, last: map[string]eta.Fix{}}
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

// speedListener turns consecutive accepted pings of moving drivers into
// speed observations. It keeps each driver's last fix (bounded: the map is
// reset when it grows past maxTracked) and never blocks ingest: Offer drops
// when the feeder's queue is full.
type speedListener struct {
	feeder *eta.Feeder
	mu     sync.Mutex
	last   map[string]eta.Fix
}

const maxTracked = 200000

func (l *speedListener) DriverMoved(ctx context.Context, m driver.Move) {
	l.mu.Lock()
	prev, ok := l.last[m.DriverID]
	if len(l.last) >= maxTracked {
		l.last = map[string]eta.Fix{}
	}
	var pairs [][2]eta.Fix
	for _, p := range m.Accepted {
		f := eta.Fix{Point: p.Pos, Time: p.TS}
		if ok && f.Time.After(prev.Time) {
			pairs = append(pairs, [2]eta.Fix{prev, f})
		}
		if !ok || f.Time.After(prev.Time) {
			prev, ok = f, true
		}
	}
	l.last[m.DriverID] = prev
	l.mu.Unlock()
	for _, pr := range pairs {
		if dt := pr[1].Time.Sub(pr[0].Time).Seconds(); dt > 0 && !math.IsNaN(dt) {
			l.feeder.Offer(pr[0], pr[1])
		}
	}
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hextrack/hextrack/eta"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
	"github.com/hextrack/hextrack/sim"
	"github.com/hextrack/hextrack/sim/metrics"
)

// readTraces reads a trips CSV (Porto taxi format) into traces, keeping
// those with at least two fixes, entirely inside the map's bounds when g
// is given, up to limit (0: all).
func readTraces(path string, g *road.Graph, limit int) ([]sim.Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trips file: %w", err)
	}
	defer f.Close()
	trips, _, err := eta.ReadTrips(f, time.UTC)
	if err != nil {
		return nil, fmt.Errorf("trips file %s: %w", path, err)
	}
	var sw, ne geo.Point
	if g != nil {
		sw, ne = g.Bounds()
	}
	var out []sim.Trace
	for _, t := range trips {
		if len(t.Fixes) < 3 {
			continue
		}
		tr := sim.Trace{ID: t.ID}
		inside := true
		for _, fx := range t.Fixes {
			p := fx.Point
			if g != nil && (p.Lat < sw.Lat || p.Lat > ne.Lat || p.Lng < sw.Lng || p.Lng > ne.Lng) {
				inside = false
				break
			}
			tr.Points = append(tr.Points, p)
			tr.Times = append(tr.Times, fx.Time)
		}
		if !inside || geo.Distance(tr.Points[0], tr.Points[len(tr.Points)-1]) < 200 {
			continue
		}
		out = append(out, tr)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("trips file %s: no usable trips (at least 3 fixes, inside the map)", path)
	}
	return out, nil
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	var cfg sim.Config
	var tripsFile, mapName string
	var limit int
	fs.StringVar(&tripsFile, "trips", "", "trips CSV (Porto taxi format: shape LINESTRING + timestamps)")
	fs.StringVar(&mapName, "map", "", "OSM PBF: only trips inside its bounds are replayed (empty: all)")
	fs.IntVar(&limit, "limit", 0, "replay at most this many trips (0: all)")
	fs.IntVar(&cfg.Drivers, "parallel", 20, "trips replayed at once")
	fs.Float64Var(&cfg.SpeedUp, "speedup", 10, "simulated seconds per wall second")
	fs.StringVar(&cfg.Transport, "transport", "rest", "driver transport: ws|rest|mixed")
	fs.StringVar(&cfg.Rider.Transport, "rider-transport", "sse", "rider transport: sse|longpoll|poll")
	fs.StringVar(&cfg.Dispatch, "dispatch", "server", "who matches trips: server or sim")
	fs.Float64Var(&cfg.Driver.GPS.Sigma, "gps-sigma", 0, "extra GPS jitter σ in metres (the traces are real GPS already)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this much simulated time (0: when every trip ended)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if tripsFile == "" {
		return fmt.Errorf("replay needs --trips FILE")
	}
	var g *road.Graph
	if mapName != "" {
		var err error
		if g, err = loadMap(mapName, 1); err != nil {
			return err
		}
	}
	traces, err := readTraces(tripsFile, g, limit)
	if err != nil {
		return err
	}
	if g == nil {
		g = road.SyntheticCity(1, traces[0].Points[0]) // unused by traces; the engine wants a map
	}
	cfg.Server, cfg.Graph = c.server, g
	if c.secret != "" {
		cfg.Secret = []byte(c.secret)
	}
	cfg.Driver.AcceptProb = 1
	cfg.Driver.AcceptDelay = 2 * time.Second
	cfg.Driver.PickupDwell = 10 * time.Second
	cfg.Driver.PingEvery = time.Second
	cfg.Driver.BatchEvery = time.Duration(float64(time.Second) * max(1, cfg.SpeedUp))
	cfg.Rider.GiveUp = 6 * time.Hour
	e, err := sim.NewEngine(cfg)
	if err != nil {
		return err
	}
	if err := e.Check(ctx); err != nil {
		return err
	}
	p := newProgress(stderr, c.quiet)
	cfg.Progress = p.update
	e, _ = sim.NewEngine(cfg)
	fmt.Fprintf(stderr, "drivesim replay: %d trips from %s against %s at %gx (Ctrl-C stops and reports)\n", len(traces), tripsFile, c.server, cfg.SpeedUp)
	rep := e.Replay(ctx, traces)
	p.done()
	if err := finish(rep, c, stdout); err != nil {
		return err
	}
	if t, ok := rep.Extra.(map[string]any)["track_error_m"].(metrics.Latency); ok {
		fmt.Fprintf(stdout, "server vs trace m   p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  (n=%d)\n", t.P50, t.P90, t.P99, t.Max, t.Count)
	}
	return nil
}

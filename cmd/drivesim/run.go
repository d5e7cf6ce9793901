package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
	"github.com/hextrack/hextrack/sim"
	"github.com/hextrack/hextrack/sim/metrics"
)

// common are the flags every subcommand shares.
type common struct {
	server   string
	secret   string
	jsonFile string
	quiet    bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", envOr("HEXTRACK_URL", "http://localhost:8080"), "server base URL (HEXTRACK_URL)")
	fs.StringVar(&c.secret, "secret", os.Getenv("HEXTRACK_JWT_SECRET"), "the server's JWT secret, to mint tokens when it is not in dev mode (HEXTRACK_JWT_SECRET)")
	fs.StringVar(&c.jsonFile, "json", "", "write the final report as JSON to this file")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// loadMap returns the synthetic city or the graph of an OSM PBF file.
func loadMap(name string, seed int64) (*road.Graph, error) {
	if name == "" || name == "synthetic" {
		return road.SyntheticCity(seed, geo.Point{Lat: 41.1579, Lng: -8.6291}), nil
	}
	g, err := road.LoadOSMFile(name)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", name, err)
	}
	if g.NumNodes() == 0 {
		return nil, fmt.Errorf("map %s: no drivable roads in it", name)
	}
	return g, nil
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	var cfg sim.Config
	var mapName string
	var ping, batch, offDur time.Duration
	var offRate float64
	fs.IntVar(&cfg.Drivers, "drivers", 50, "simulated drivers")
	fs.IntVar(&cfg.Riders, "riders", 10, "simulated riders")
	fs.StringVar(&cfg.Transport, "transport", "rest", "driver transport: ws|rest|mixed")
	fs.StringVar(&cfg.Rider.Transport, "rider-transport", "sse", "rider transport: sse|longpoll|poll")
	fs.StringVar(&cfg.Dispatch, "dispatch", "server", "who matches trips: server (offers over the command channel) or sim (the simulator, for servers without dispatch)")
	fs.StringVar(&mapName, "map", "synthetic", "OSM PBF file, or synthetic")
	fs.Float64Var(&cfg.SpeedUp, "speedup", 1, "simulated seconds per wall second")
	fs.DurationVar(&cfg.Duration, "duration", 0, "simulated time to run (0: until Ctrl-C)")
	fs.Float64Var(&cfg.Driver.AcceptProb, "accept-prob", 0.9, "chance a driver accepts an offer")
	fs.DurationVar(&cfg.Driver.AcceptDelay, "accept-delay", 3*time.Second, "mean time a driver takes to answer an offer (simulated)")
	fs.DurationVar(&cfg.Driver.PickupDwell, "pickup-dwell", 20*time.Second, "time at the pickup (simulated)")
	fs.DurationVar(&ping, "ping-every", time.Second, "GPS fix period (simulated; 1s = 1 Hz)")
	fs.DurationVar(&batch, "batch-every", 0, "upload period (simulated); fixes in between go as one batch (0: every fix, or once per wall second at speed-up)")
	fs.Float64Var(&cfg.Driver.GPS.Sigma, "gps-sigma", 5, "GPS jitter σ, metres")
	fs.Float64Var(&cfg.Driver.GPS.OutlierRate, "outlier-rate", 0.002, "share of fixes that are wild outliers")
	fs.Float64Var(&offRate, "offline-rate", 2, "network outages per driver per simulated hour")
	fs.DurationVar(&offDur, "offline-duration", 30*time.Second, "mean outage length (simulated); pings are buffered and sent as a batch on reconnect")
	fs.DurationVar(&cfg.Rider.Think, "rider-think", 20*time.Second, "mean wait of a rider before each request (simulated)")
	fs.Float64Var(&cfg.Rider.TripMinM, "trip-min-m", 500, "shortest trip, straight-line metres")
	fs.Float64Var(&cfg.Rider.TripMaxM, "trip-max-m", 2500, "longest trip, straight-line metres")
	fs.Float64Var(&cfg.Rider.DeliveryShare, "delivery-share", 0.3, "share of requests that are deliveries")
	fs.IntVar(&cfg.Rider.Deliveries, "deliveries", 0, "multi-stop deliveries among the first requests: a pickup then drops with a PIN each, which the rider reads through a share link and the driver enters at the drop")
	fs.IntVar(&cfg.Rider.Stops, "stops", 3, "stops of each --deliveries trip (≥ 2: one pickup, the rest drops)")
	fs.Float64Var(&cfg.Rider.CancelProb, "cancel-prob", 0.1, "chance a rider cancels before pickup")
	fs.Float64Var(&cfg.Rider.ChangeProb, "change-prob", 0.1, "chance a rider changes the dropoff on the way")
	fs.Float64Var(&cfg.Rider.ChatProb, "chat-prob", 0.3, "chance a rider sends a chat message")
	fs.IntVar(&cfg.Zones, "zones", 0, "zones to create (ops API) before the drivers start; their enter/exit events are checked against the drivers' fixes, then the zones are deleted")
	seed := fs.Int64("seed", 0, "random seed (0: random); the synthetic city always uses seed 1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Drivers < 0 || cfg.Riders < 0 || cfg.SpeedUp <= 0 || cfg.Zones < 0 || cfg.Zones > 1000 {
		return fmt.Errorf("--drivers and --riders must be >= 0, --zones within [0,1000] and --speedup > 0")
	}
	g, err := loadMap(mapName, 1)
	if err != nil {
		return err
	}
	cfg.Server, cfg.Graph, cfg.Seed = c.server, g, uint64(*seed)
	if c.secret != "" {
		cfg.Secret = []byte(c.secret)
	}
	cfg.Driver.PingEvery = ping
	cfg.Driver.BatchEvery = batch
	if batch == 0 {
		// At speed-up X, X fixes per wall second go as one request.
		cfg.Driver.BatchEvery = time.Duration(float64(ping) * max(1, cfg.SpeedUp))
	}
	cfg.Driver.Link = sim.Link{RatePerHour: offRate, Duration: offDur.Seconds()}
	cfg.Driver.Roam = true
	cfg.Ramp = time.Duration(min(cfg.Drivers+cfg.Riders, 2000)) * time.Millisecond
	return execute(ctx, "run", c, cfg, stdout, stderr)
}

// execute checks the server, runs the engine with progress, and prints and
// writes the report.
func execute(ctx context.Context, mode string, c common, cfg sim.Config, stdout, stderr io.Writer) error {
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
	fmt.Fprintf(stderr, "drivesim %s: %d drivers, %d riders against %s at %gx (Ctrl-C stops and reports)\n",
		mode, cfg.Drivers, cfg.Riders, c.server, cfg.SpeedUp)
	rep := e.Run(ctx, mode)
	p.done()
	return finish(rep, c, stdout)
}

func finish(rep metrics.Report, c common, stdout io.Writer) error {
	printTable(stdout, rep)
	if c.jsonFile != "" {
		if err := os.WriteFile(c.jsonFile, rep.JSON(), 0o644); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	return nil
}

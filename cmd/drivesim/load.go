package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/hextrack/hextrack/sim"
)

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	var cfg sim.Config
	var hz float64
	var batch int
	var mapName string
	fs.IntVar(&cfg.Drivers, "drivers", 1000, "K drivers")
	fs.Float64Var(&hz, "hz", 1, "H: fixes per driver per second")
	fs.IntVar(&batch, "batch", 1, "fixes per upload (batching)")
	fs.IntVar(&cfg.Riders, "subscribers", 200, "R riders, each on a trip and subscribed to it over SSE")
	fs.StringVar(&cfg.Rider.Transport, "rider-transport", "sse", "rider transport: sse|longpoll|poll")
	fs.StringVar(&cfg.Transport, "transport", "rest", "driver transport: ws|rest|mixed")
	fs.StringVar(&cfg.Dispatch, "dispatch", "server", "who matches trips: server or sim")
	fs.DurationVar(&cfg.Duration, "duration", time.Minute, "how long to run")
	fs.IntVar(&cfg.Spread, "spread", 16, "spread connections over source addresses 127.0.0.1..N (loopback servers)")
	fs.DurationVar(&cfg.Ramp, "ramp", 10*time.Second, "start drivers and riders over this time")
	fs.DurationVar(&cfg.Rider.ChatEvery, "chat-every", 5*time.Second, "each rider posts a chat message this often (durable events to check)")
	fs.StringVar(&mapName, "map", "synthetic", "OSM PBF file, or synthetic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Drivers < 1 || hz <= 0 || batch < 1 || cfg.Riders < 0 {
		return fmt.Errorf("--drivers >= 1, --hz > 0, --batch >= 1 and --subscribers >= 0 are required")
	}
	if cfg.Drivers+2*cfg.Riders > 15000 {
		return fmt.Errorf("%d drivers and %d subscribers would need more than 15000 open files in this process; run several drivesim load processes", cfg.Drivers, cfg.Riders)
	}
	g, err := loadMap(mapName, 1)
	if err != nil {
		return err
	}
	cfg.Server, cfg.Graph, cfg.SpeedUp = c.server, g, 1
	if c.secret != "" {
		cfg.Secret = []byte(c.secret)
	}
	cfg.Driver = sim.DriverBehaviour{AcceptProb: 1, AcceptDelay: 500 * time.Millisecond, PickupDwell: 5 * time.Second,
		PingEvery: time.Duration(float64(time.Second) / hz), GPS: sim.GPS{Sigma: 4}, Roam: true}
	cfg.Driver.BatchEvery = time.Duration(batch) * cfg.Driver.PingEvery
	cfg.Rider.Think = time.Second
	cfg.Rider.TripMinM, cfg.Rider.TripMaxM = 300, 3000
	return execute(ctx, "load", c, cfg, stdout, stderr)
}

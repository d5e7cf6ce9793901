package sim

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/geo/road"
	"github.com/hextrack/hextrack/sim/driverlink"
	"github.com/hextrack/hextrack/sim/metrics"
)

// Who matches trips to drivers.
const (
	DispatchServer = "server" // the server offers trips over the command channel
	DispatchSim    = "sim"    // the simulator offers each trip to its nearest idle driver (servers without dispatch)
)

// Config is one simulation. Zero values are documented per field.
type Config struct {
	Server    string // base URL, e.g. http://localhost:8080
	Secret    []byte // HS256 secret to mint tokens; nil: the server's dev endpoint
	Graph     *road.Graph
	Drivers   int
	Riders    int
	Transport string  // TransportREST (default), TransportWS, TransportMixed
	Dispatch  string  // DispatchServer (default) or DispatchSim
	SpeedUp   float64 // simulated seconds per wall second; 0: 1
	// Duration is the simulated time to run; 0: until ctx ends.
	Duration time.Duration
	Seed     uint64
	// Spread: source addresses 127.0.0.1..N for connections (load); 0: 1.
	Spread int
	Driver DriverBehaviour
	Rider  RiderBehaviour
	// Ramp spreads the start of drivers and riders over this wall time.
	Ramp time.Duration
	// Zones: this many zones are created before the drivers start, their
	// events checked against the drivers' fixes at the end (the report's
	// Zones) and deleted. 0: none.
	Zones int
	// Progress, if set, is called about once per ProgressEvery (wall) with
	// the report so far.
	Progress      func(metrics.Report)
	ProgressEvery time.Duration
}

// Engine runs a simulation: it starts drivers and riders, and reports.
// Its parts with a state of their own are the dispatcher (the drivers'
// positions, the simulator's own dispatch) and the ledger (the trips
// followed, verified at the end).
type Engine struct {
	cfg    Config
	Clock  *Clock
	Stats  *metrics.Stats
	Graph  *road.Graph
	anon   *client.Client
	rest   *http.Client
	dialer *Dialer
	runID  string

	fleet dispatcher
	trips ledger
	zones *zoneRun // nil without Config.Zones

	deliveries atomic.Int64 // multi-stop deliveries left to request
	pins       sync.Map     // "<trip>/<stop>" → the PIN riders read
}

// NewEngine checks the configuration and prepares a run.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Graph == nil || cfg.Graph.NumNodes() == 0 {
		return nil, fmt.Errorf("sim: no road graph")
	}
	if cfg.Transport == "" {
		cfg.Transport = TransportREST
	}
	switch cfg.Transport {
	case TransportREST, TransportWS, TransportMixed:
	default:
		return nil, fmt.Errorf("sim: unknown transport %q (ws, rest, mixed)", cfg.Transport)
	}
	if cfg.Dispatch == "" {
		cfg.Dispatch = DispatchServer
	}
	if cfg.Dispatch != DispatchServer && cfg.Dispatch != DispatchSim {
		return nil, fmt.Errorf("sim: unknown dispatch %q (server, sim)", cfg.Dispatch)
	}
	switch cfg.Rider.Transport {
	case "":
		cfg.Rider.Transport = RiderSSE
	case RiderSSE, RiderLongPoll, RiderPoll:
	default:
		return nil, fmt.Errorf("sim: unknown rider transport %q (sse, longpoll, poll)", cfg.Rider.Transport)
	}
	if cfg.SpeedUp <= 0 {
		cfg.SpeedUp = 1
	}
	if cfg.Driver.PingEvery <= 0 {
		cfg.Driver.PingEvery = time.Second
	}
	if cfg.Driver.BatchEvery < cfg.Driver.PingEvery {
		cfg.Driver.BatchEvery = cfg.Driver.PingEvery
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	b := make([]byte, 3)
	_, _ = crand.Read(b)
	e := &Engine{cfg: cfg, Graph: cfg.Graph, runID: hex.EncodeToString(b)}
	e.dialer = NewDialer(cfg.Server, cfg.Spread)
	conns := cfg.Drivers + cfg.Riders + 16
	// Long polls wait up to 25 s: the request timeout leaves room for them.
	e.rest = e.dialer.HTTPClient(min(conns, 4096), 40*time.Second)
	e.anon = client.New(cfg.Server, "", e.rest)
	e.fleet = dispatcher{enabled: cfg.Dispatch == DispatchSim, anon: e.anon, token: e.trips.token}
	e.trips.forget = e.fleet.forget
	e.deliveries.Store(int64(cfg.Rider.Deliveries))
	return e, nil
}

// Check verifies the server and the token path before a run.
func (e *Engine) Check(ctx context.Context) error {
	return CheckServer(ctx, e.tokens())
}

func (e *Engine) tokens() Tokens { return Tokens{Anon: e.anon, Secret: e.cfg.Secret} }

// start begins a run of n drivers: a fresh clock and stats, and the
// context of the run (ended by ctx or after Duration of simulated time).
func (e *Engine) start(ctx context.Context, n int) (context.Context, context.CancelFunc) {
	e.Clock = NewClock(e.cfg.SpeedUp)
	e.Stats = metrics.NewStats(e.cfg.SpeedUp)
	e.fleet.reset(n)
	if e.cfg.Duration > 0 {
		return context.WithTimeout(ctx, e.Clock.Wall(e.cfg.Duration))
	}
	return context.WithCancel(ctx)
}

// Run runs the simulation until Duration of simulated time has passed or
// ctx ends, and returns the report (also when interrupted).
func (e *Engine) Run(ctx context.Context, mode string) metrics.Report {
	cfg := e.cfg
	runCtx, cancel := e.start(ctx, cfg.Drivers)
	defer cancel()
	tok := e.tokens()
	if cfg.Zones > 0 {
		z, err := startZones(runCtx, cfg, tok, e.rest, e.runID)
		if err != nil {
			e.Stats.Err(err)
		} else {
			e.zones = z
			defer z.remove(context.WithoutCancel(ctx))
		}
	}
	var wg sync.WaitGroup
	stagger := func(i, n int) bool {
		if cfg.Ramp <= 0 || n <= 1 {
			return true
		}
		return sleepCtx(runCtx, time.Duration(float64(cfg.Ramp)*float64(i)/float64(n)))
	}

	progDone := e.progress(runCtx, mode)
	for i := 0; i < cfg.Drivers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if !stagger(i, cfg.Drivers) {
				return
			}
			e.runDriver(runCtx, i)
		}(i)
	}
	for i := 0; i < cfg.Riders; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Riders start once drivers have had a moment to appear.
			if !sleepCtx(runCtx, cfg.Ramp+e.Clock.Wall(2*time.Second)) || !stagger(i, cfg.Riders) {
				return
			}
			id := fmt.Sprintf("sim-%s-r%d", e.runID, i)
			t, err := tok.Mint(runCtx, "rider", id)
			if err != nil {
				e.Stats.Err(err)
				return
			}
			r := &simRider{id: id, api: client.New(cfg.Server, t, e.rest), beh: cfg.Rider, sim: e,
				rng: rand.New(rand.NewPCG(cfg.Seed, uint64(1<<32+i)))}
			r.run(runCtx)
		}(i)
	}
	<-runCtx.Done()
	wg.Wait()
	<-progDone
	rep := e.finishReport(ctx, mode)
	rep.Drivers, rep.Riders = cfg.Drivers, cfg.Riders
	rep.Zones = e.zones.report(context.WithoutCancel(ctx), e.Stats)
	return rep
}

// progress calls cfg.Progress every ProgressEvery until ctx ends; the
// returned channel closes when it has stopped.
func (e *Engine) progress(ctx context.Context, mode string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if e.cfg.Progress == nil {
			return
		}
		t := time.NewTicker(e.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				e.cfg.Progress(e.Stats.Report(mode))
			}
		}
	}()
	return done
}

// finishReport verifies the trips still open (their tails may be in
// flight) against the server's history and builds the final report.
func (e *Engine) finishReport(ctx context.Context, mode string) metrics.Report {
	vctx, vcancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer vcancel()
	for id, c := range e.trips.open() {
		if err := e.trips.verify(vctx, &e.Stats.Check, id, c); err != nil && vctx.Err() == nil {
			e.Stats.Err(err)
		}
	}
	rep := e.Stats.Report(mode)
	rep.Server = e.cfg.Server
	rep.Transport = e.cfg.Transport
	rep.Interrupted = ctx.Err() != nil
	return rep
}

// link mints driver i's token (id) and opens its link to the server over
// the run's transport (Mixed: REST for even i, WS for odd).
func (e *Engine) link(ctx context.Context, i int, id string) (*client.Client, DriverConn, error) {
	t, err := e.tokens().Mint(ctx, "driver", id)
	if err != nil {
		return nil, nil, err
	}
	api := client.New(e.cfg.Server, t, e.rest)
	transport := e.cfg.Transport
	if transport == TransportMixed {
		transport = TransportREST
		if i%2 == 1 {
			transport = TransportWS
		}
	}
	if transport == TransportWS {
		conn, err := driverlink.DialWS(ctx, api, id, e.Stats, e.dialer.WebSocket())
		if err != nil {
			return nil, nil, err
		}
		return api, conn, nil
	}
	return api, driverlink.NewREST(ctx, api, id, e.Stats, e.cfg.Dispatch == DispatchServer), nil
}

func (e *Engine) runDriver(ctx context.Context, i int) {
	id := fmt.Sprintf("sim-%s-d%d", e.runID, i)
	api, conn, err := e.link(ctx, i, id)
	if err != nil {
		if ctx.Err() == nil {
			e.Stats.Err(err)
		}
		return
	}
	rng := rand.New(rand.NewPCG(e.cfg.Seed, uint64(i)))
	d := newDriver(e, i, id, api, conn, rng, NewMover(e.Graph, rng, e.Graph.RandomPoint(rng)))
	e.fleet.add(d)
	d.run(ctx)
	conn.Close()
	// Leave the map: offline (refused while on a trip, which is fine).
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	e.zones.driverStopped(octx, api, id)
	_, _ = api.SetStatus(octx, id, "offline")
}

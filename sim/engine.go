package sim

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/geo"
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
	Graph     *geo.Graph
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
	// Progress, if set, is called about once per ProgressEvery (wall) with
	// the report so far.
	Progress      func(metrics.Report)
	ProgressEvery time.Duration
}

// Engine runs a simulation.
type Engine struct {
	cfg    Config
	Clock  *Clock
	Stats  *metrics.Stats
	Graph  *geo.Graph
	anon   *client.Client
	rest   *http.Client
	dialer *Dialer
	runID  string

	drivers []*simDriver
	mu      sync.Mutex
	active  map[string]*client.Client // trips being followed → a client that may read them
	tried   map[string]map[string]bool
	idle    []atomic.Bool
	pos     []atomic.Pointer[geo.Point]
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
	e.active = map[string]*client.Client{}
	e.tried = map[string]map[string]bool{}
	return e, nil
}

// Check verifies the server and the token path before a run.
func (e *Engine) Check(ctx context.Context) error {
	return CheckServer(ctx, e.tokens())
}

func (e *Engine) tokens() Tokens { return Tokens{Anon: e.anon, Secret: e.cfg.Secret} }

// Run runs the simulation until Duration of simulated time has passed or
// ctx ends, and returns the report (also when interrupted).
func (e *Engine) Run(ctx context.Context, mode string) metrics.Report {
	cfg := e.cfg
	e.Clock = NewClock(cfg.SpeedUp)
	e.Stats = metrics.NewStats(cfg.SpeedUp)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithTimeout(runCtx, e.Clock.Wall(cfg.Duration))
		defer c2()
	}
	tok := e.tokens()
	e.idle = make([]atomic.Bool, cfg.Drivers)
	e.pos = make([]atomic.Pointer[geo.Point], cfg.Drivers)
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
			e.runDriver(runCtx, i, tok)
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
	e.mu.Lock()
	open := make(map[string]*client.Client, len(e.active))
	for id, c := range e.active {
		open[id] = c
	}
	e.mu.Unlock()
	for id, c := range open {
		if err := e.verify(vctx, id, c); err != nil && vctx.Err() == nil {
			e.Stats.Err(err)
		}
	}
	rep := e.Stats.Report(mode)
	rep.Server = e.cfg.Server
	rep.Transport = e.cfg.Transport
	rep.Interrupted = ctx.Err() != nil
	return rep
}

func (e *Engine) runDriver(ctx context.Context, i int, tok Tokens) {
	cfg := e.cfg
	st := e.Stats
	id := fmt.Sprintf("sim-%s-d%d", e.runID, i)
	t, err := tok.Mint(ctx, "driver", id)
	if err != nil {
		if ctx.Err() == nil {
			st.Err(err)
		}
		return
	}
	api := client.New(cfg.Server, t, e.rest)
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
	transport := cfg.Transport
	if transport == TransportMixed {
		transport = TransportREST
		if i%2 == 1 {
			transport = TransportWS
		}
	}
	conn, err := e.connect(ctx, api, id, transport)
	if err != nil {
		if ctx.Err() == nil {
			st.Err(err)
		}
		return
	}
	start := e.Graph.RandomPoint(rng)
	d := &simDriver{id: id, api: api, conn: conn, beh: cfg.Driver, sim: e, rng: rng,
		car: NewMover(e.Graph, rng, start), link: cfg.Driver.Link, offers: make(chan offer, 4), index: i}
	e.mu.Lock()
	e.drivers = append(e.drivers, d)
	e.mu.Unlock()
	d.run(ctx)
	conn.Close()
	// Leave the map: offline (refused while on a trip, which is fine).
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	_, _ = api.SetStatus(octx, id, "offline")
}

// connect opens a driver's link: a WebSocket, or REST with the command
// channel long-polled when the server dispatches.
func (e *Engine) connect(ctx context.Context, api *client.Client, id, transport string) (DriverConn, error) {
	if transport == TransportWS {
		return driverlink.DialWS(ctx, api, id, e.Stats, e.dialer.WebSocket())
	}
	return driverlink.NewREST(ctx, api, id, e.Stats, e.cfg.Dispatch == DispatchServer), nil
}

// track remembers a trip to verify at the end; untrack forgets it.
func (e *Engine) track(id string, c *client.Client) {
	e.mu.Lock()
	e.active[id] = c
	e.mu.Unlock()
}

func (e *Engine) untrack(id string) {
	e.mu.Lock()
	delete(e.active, id)
	delete(e.tried, id)
	e.mu.Unlock()
}

// verify reads a trip's event history and checks the deliveries against it.
func (e *Engine) verify(ctx context.Context, id string, c *client.Client) error {
	e.untrack(id)
	ids, err := History(ctx, c, id)
	if err != nil {
		return fmt.Errorf("history of %s: %w", id, err)
	}
	e.Stats.Check.Verify("trip:"+id, ids)
	return nil
}

// dispatch (DispatchSim) offers a trip to the nearest idle driver not yet
// tried for it.
func (e *Engine) dispatch(trip string, pickup client.Place, exclude string) {
	p := geo.Point{Lat: pickup.Lat, Lng: pickup.Lng}
	e.mu.Lock()
	defer e.mu.Unlock()
	tried := e.tried[trip]
	if tried == nil {
		tried = map[string]bool{}
		e.tried[trip] = tried
	}
	if exclude != "" {
		tried[exclude] = true
	}
	var best *simDriver
	bestD := math.Inf(1)
	for _, d := range e.drivers {
		if tried[d.id] || !e.idle[d.index].Load() {
			continue
		}
		q := e.pos[d.index].Load()
		if q == nil {
			continue
		}
		if dist := geo.Distance(p, *q); dist < bestD {
			best, bestD = d, dist
		}
	}
	if best == nil {
		return // nobody free: the trip expires on the server (or waits)
	}
	tried[best.id] = true
	select {
	case best.offers <- offer{trip: trip}:
	default:
	}
}

// dispatchAgain re-offers a trip a driver turned down.
func (e *Engine) dispatchAgain(trip, exclude string) {
	if e.cfg.Dispatch != DispatchSim {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, err := e.anon.WithToken(e.trackedToken(trip)).GetTrip(ctx, trip, "")
		if err != nil || p.Snapshot.Trip.Status != StatusRequested {
			return
		}
		e.dispatch(trip, p.Snapshot.Trip.Pickup, exclude)
	}()
}

func (e *Engine) trackedToken(trip string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.active[trip]; c != nil {
		return c.Token()
	}
	return ""
}

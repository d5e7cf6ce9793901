package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/zones"
	"github.com/hextrack/hextrack/archive/archiveredis"
	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/dispatch/dispatchredis"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/eta/live"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/ops/opsredis"
	"github.com/hextrack/hextrack/payment/paymentredis"
	"github.com/hextrack/hextrack/pod"
	"github.com/hextrack/hextrack/trip/tripredis"
	"github.com/hextrack/hextrack/zone/zoneredis"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // help was asked for and printed
		}
		fmt.Fprintln(os.Stderr, "hextrack:", err)
		os.Exit(1)
	}
}

// commands are hextrack's commands, in the order `hextrack help` lists them.
var commands = []struct{ name, short string }{
	{"serve", "run the server (the default when no command is given)"},
	{"migrate", "apply the archive's schema migrations and print the versions applied"},
	{"token", "mint an access token signed with the server's secret"},
	{"apikey", "create, list or revoke the API keys of backend services"},
	{"eta-eval", "measure ETA accuracy on real taxi trips (held-out error vs baselines)"},
	{"eta-train", "learn the ETA model from taxi trips and write the file the server serves"},
	{"eta-model", "show or roll back the ETA models a server trained from its archive"},
	{"version", "print hextrack's version"},
	{"help", "show this list, or a command's help (hextrack help <command>)"},
}

// usage is `hextrack help`, in the style of the go tool.
func usage(w io.Writer) {
	fmt.Fprint(w, "hextrack tracks drivers and trips in real time: drivers send GPS fixes,\n"+
		"riders and ops follow trips over SSE, long-poll or WebSocket.\n\n"+
		"Usage:\n\n\thextrack <command> [flags]\n\nThe commands are:\n\n")
	for _, c := range commands {
		fmt.Fprintf(w, "\t%-9s %s\n", c.name, c.short)
	}
	fmt.Fprint(w, "\nUse \"hextrack <command> --help\" for a command's flags. Every serve flag\n"+
		"also reads an environment variable (HEXTRACK_*); README.md lists them.\n")
}

// isHelp: the argument asks for help.
func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "help" }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && isHelp(args[0]) {
		if len(args) == 1 || args[0] != "help" {
			usage(stdout)
			return nil
		}
		// hextrack help <command>: the command's own --help.
		if args[1] == "version" || args[1] == "help" {
			usage(stdout)
			return nil
		}
		cmd, args = args[1], []string{"--help"}
	} else if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		if slices.ContainsFunc(args, isHelp) {
			fmt.Fprint(stderr, "usage: hextrack serve [flags]\n\n"+
				"Serve runs the API, the realtime feeds and the web pages on Redis\n"+
				"(embedded in memory when --redis is empty), with the archive in\n"+
				"PostgreSQL (--database-url) or a SQLite file in --data-dir. Each flag's\n"+
				"default comes from the environment variable named in its description.\n\n")
		}
		cfg, err := parseServe(args)
		if err != nil {
			return err
		}
		m := NewMain(cfg, stderr)
		if err := m.Run(ctx); err != nil {
			m.Close()
			return err
		}
		fmt.Fprintf(stderr, "hextrack listening on http://%s\n", displayAddr(m.Addr()))
		<-ctx.Done()
		return m.Close()
	case "migrate":
		return runMigrate(ctx, args, stdout, stderr)
	case "token":
		return runToken(args, stdout, stderr)
	case "apikey":
		return runAPIKey(ctx, args, stdout, stderr)
	case "eta-eval":
		return runETAEval(ctx, args, stdout)
	case "eta-train":
		return runETATrain(ctx, args, stdout)
	case "eta-model":
		return runETAModel(ctx, args, stdout)
	case "version":
		fmt.Fprintln(stdout, "hextrack", version)
		return nil
	}
	return fmt.Errorf("unknown command %q\nRun 'hextrack help' for the list of commands", cmd)
}

func displayAddr(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err == nil && (host == "" || host == "::" || host == "0.0.0.0") {
		return "localhost:" + port
	}
	return a
}

// Main is the running server: Redis, services, HTTP. End-to-end tests run the
// same Main on :0.
type Main struct {
	Config Config
	Logger *slog.Logger

	mini     *miniredis.Miniredis
	miniDone chan struct{} // stops expireLoop
	rdb      redis.UniversalClient
	ln       net.Listener
	http     *http.Server
	API      *api.Server
	Drivers  *driverredis.Service
	Feed     *feedredis.Broker
	Trips    *tripredis.Service
	// ETA is the map, speed model and estimator (eta.go).
	ETA *etaParts
	// Payments and Webhooks: online payments of deliveries and the
	// gateway's events applied to them (payments.go).
	Payments *paymentredis.Service
	Webhooks *paymentredis.Webhooks
	// Commands and Dispatch: the driver command channel and dispatch.
	Commands *dispatchredis.Commands
	Dispatch *dispatchredis.Dispatcher
	// Zones are the zones and this node's index of them; ZoneTracker
	// turns drivers' moves into zone events (zones.go).
	Zones       *zoneredis.Store
	ZoneTracker *zoneredis.Tracker
	// Proofs are proof of delivery's photos and signatures (pod.go); nil:
	// no directory for them, the routes answer 503.
	Proofs *pod.Service
	// TripETA keeps trips' ETAs current as drivers move (trip.eta).
	TripETA *live.Service
	// Ops is the ops dashboard's view; OpsReport writes this node's
	// figures for it until the node drains.
	Ops          *opsredis.View
	OpsReport    *opsredis.Reporter
	archive      *nodeArchive       // nil: no archive configured (archive.go)
	archiveDone  chan struct{}      // closed when the archive pipeline ends
	export       *natsExport        // nil: no NATS export (natsexport.go)
	hooks        *nodeWebhooks      // nil: no archive, no webhooks (webhooks.go)
	zoneRoutes   *zones.Routes      // the zone routes, told when the node drains
	stopReport   context.CancelFunc // ends OpsReport (at drain start)
	reportDone   chan struct{}
	dispatchDone chan struct{}
	cancel       context.CancelFunc
	done         chan struct{}
}

// NewMain returns a Main logging to w.
func NewMain(cfg Config, w io.Writer) *Main {
	lvl := slog.LevelInfo
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	return &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))}
}

// Run opens Redis and the archive, wires the services and starts serving.
// It returns once the listener is open (a taken port fails here) and serves
// in the background. An archive that cannot be opened does not fail it
// (nodeArchive).
func (m *Main) Run(ctx context.Context) error {
	c := &m.Config
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	if c.TrimEvery <= 0 {
		c.TrimEvery = 30 * time.Second
	}
	if c.RedisURL == "" {
		c.Dev = true
	}
	if err := c.keptDevSecret(m.Logger); err != nil {
		return err
	}
	if err := c.checkSecret(); err != nil {
		return err
	}
	rdb, mr, err := connectRedis(ctx, c.RedisURL, m.Logger)
	if mr != nil {
		m.mini, m.miniDone = mr, make(chan struct{})
		go expireLoop(mr, m.miniDone)
	}
	if err != nil {
		return err
	}
	m.rdb = rdb

	if u := c.archiveURL(); u != "" {
		m.archive = openArchive(ctx, u, m.Logger)
		m.hooks = newWebhooks(m.archive, c, m.Logger)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	idx := georedis.NewIndex(m.rdb, georedis.IndexConfig{Prefix: c.Prefix, Stale: c.Stale})
	m.Drivers = driverredis.NewService(m.rdb, idx, driver.Config{Prefix: c.Prefix, Limits: driver.Limits{
		MaxFuture: c.MaxFuture, MaxAge: c.MaxAge, MaxJumpSpeed: c.MaxJump, MaxBatch: c.MaxBatch},
		PingRate: c.PingRate, PingBurst: c.PingBurst})
	m.ETA, err = openETA(c.MapFile, c.ETAModel, c.etaModelDir(), c.Prefix, m.rdb, reg, m)
	if err != nil {
		return err
	}
	if m.archive != nil && c.ETATrainEvery > 0 {
		if err := m.ETA.newTrainer(archiveReads{m.archive}, c, c.etaModelDir(), reg, m.Logger); err != nil {
			return err
		}
	} else if c.ETATrainEvery > 0 {
		m.Logger.Info("eta training: off, no archive (--database-url, --data-dir)")
	}
	m.Drivers.SetEstimator(m.ETA)
	m.Drivers.Listen(m.ETA.speeds)
	m.Feed = feedredis.New(m.rdb, feedredis.Config{Registerer: reg, Logger: m.Logger, PositionCheck: c.FeedPositionCheck,
		ArchiveMarks: m.archive != nil, Prefix: c.Prefix})
	if m.archive != nil {
		m.Drivers.RecordStatuses(statusLog{feed: m.Feed, prefix: c.Prefix})
	}
	if m.Zones, m.ZoneTracker, err = openZones(ctx, m.rdb, zoneredis.Config{Prefix: c.Prefix, Zone: c.Zones,
		Stale: idx.Stale(), Logger: m.Logger}, m.Feed.Publisher); err != nil {
		return err
	}
	m.Drivers.Listen(m.ZoneTracker)
	m.Trips = tripredis.NewService(m.rdb, m.Feed, m.Drivers, c.Stops.apply(tripredis.Config{Prefix: c.Prefix, Logger: m.Logger}))
	m.Drivers.Listen(m.Trips.Tracker())
	m.Drivers.Listen(m.Trips.StopWatch())
	opsCfg := opsredis.Config{Prefix: c.Prefix, Stale: idx.Stale(), TripTTL: m.Trips.Config().TripTTL, Logger: m.Logger}
	if m.Proofs, err = openProofs(c, m.rdb, m.Feed.Publisher, m.Trips.Config().TripTTL, m.Logger); err != nil {
		return err
	}
	if m.Proofs != nil { // else a stop needing a photo or signature can't be completed (proof_required)
		m.Trips.SetProofFiles(m.Proofs)
	}
	m.Trips.Observe(opsredis.NewIndex(m.rdb, opsCfg)) // the ops trip index, before dispatch hears of a change
	m.Ops = opsredis.New(m.rdb, m.Trips.Store(), opsCfg)
	m.OpsReport = opsredis.NewReporter(m.rdb, reg, c.Prefix)
	pcfg := c.Payment.config(c.Dev, m.Logger)
	pcfg.Prefix, pcfg.TTL = c.Prefix, m.Trips.Config().TripTTL
	m.Payments = paymentredis.New(m.rdb, m.Feed, m.Trips, pcfg)
	m.Webhooks = paymentredis.NewWebhooks(m.rdb, m.Feed, m.Trips, pcfg)
	m.Commands = dispatchredis.NewCommands(m.rdb, m.Feed, c.Prefix)
	m.Dispatch = dispatchredis.New(m.rdb, m.Trips, m.Drivers, m.Commands, dispatchredis.Config{Prefix: c.Prefix,
		OfferTimeout: c.OfferTimeout, Timeout: c.DispatchTimeout, LeaseTTL: c.LeaseTTL, Logger: m.Logger})
	m.Trips.SetHook(m.Dispatch)
	m.Drivers.Listen(m.Dispatch.Arrivals())
	m.ETA.wireDispatch(m.Dispatch, m.Drivers, m.Trips)
	m.TripETA = m.ETA.liveETA(m.Trips, m.Logger)
	m.Trips.Observe(m.TripETA)
	m.Drivers.Listen(m.TripETA)
	m.API = api.New(api.Config{JWTSecret: []byte(c.JWTSecret), Dev: c.Dev, Stream: api.StreamConfig{DrainRetry: c.DrainWindow},
		WS:          api.WSConfig{Origins: c.WSOrigins, DrainWindow: c.DrainWindow},
		CORSOrigins: c.CORSOrigins, HSTSMaxAge: c.HSTSMaxAge, PollCacheTTL: c.PollCacheTTL, Limits: c.limits()},
		m.apiDeps(c.Prefix, reg))
	m.zoneRoutes.SetDraining(m.API.Draining())

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.Addr, err)
	}
	m.ln = ln
	m.http = &http.Server{Handler: m.API.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	bg, cancelBG := context.WithCancel(context.Background())
	m.cancel = cancelBG
	if m.ETA.trainer != nil {
		go m.ETA.trainer.Run(bg, c.ETATrainEvery)
	}
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("http serve", "err", err)
		}
	}()
	go m.trimLoop(bg, idx)
	go func() { _ = m.ETA.feeder.Run(bg) }()
	go func() { _ = m.Trips.Tracker().Run(bg) }()
	go func() { _ = m.Trips.StopWatch().Run(bg) }()
	go func() { _ = m.TripETA.Run(bg) }()
	go func() { _ = m.ZoneTracker.Run(bg) }()
	rctx, stopReport := context.WithCancel(bg)
	m.stopReport, m.reportDone = stopReport, make(chan struct{})
	go func() { defer close(m.reportDone); _ = m.OpsReport.Run(rctx) }()
	m.dispatchDone = make(chan struct{})
	go func() { defer close(m.dispatchDone); _ = m.Dispatch.Run(bg) }()
	if m.archive != nil {
		m.archiveDone = runArchivePipeline(bg, m.rdb, m.archive, archiveredis.Config{Prefix: c.Prefix,
			Trips: tripRecords{m.Trips.Store()}, Changes: tripRecordChanges, Registerer: reg, Logger: m.Logger}, c.ArchiveRetention)
	}
	m.hooks.start(bg, reg)
	if c.NATSURL != "" {
		if m.export, err = startNATSExport(bg, c, m.archive, reg, m.Logger); err != nil {
			return err
		}
	}
	if c.Dev {
		m.Logger.Info("dev mode: POST /v1/dev/token is enabled")
	}
	return nil
}

// Addr is the address actually listened on (useful with :0).
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Redis is the client the server uses.
func (m *Main) Redis() redis.UniversalClient { return m.rdb }

// Archive is the node's archive: nil when none is configured or until it
// could be opened (archive.go).
func (m *Main) Archive() *sqlstore.Store { return m.archive.Store() }

func (m *Main) trimLoop(ctx context.Context, idx *georedis.Index) {
	t := time.NewTicker(m.Config.TrimEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Keep stale entries a while for ops views, then drop them.
			if _, err := idx.Trim(ctx, 10*idx.Stale()); err != nil && ctx.Err() == nil {
				m.Logger.Warn("index trim", "err", err)
			}
		}
	}
}

// Close drains and stops, in the order a load balancer needs: /readyz
// fails and the listener closes at once (new connections are refused, so
// the balancer sends them to another node), open SSE and WebSocket clients
// are told to reconnect, spread with jitter over DrainWindow, in-flight
// requests and the WebSockets are waited for, then background work stops
// and the archive and Redis are closed.
func (m *Main) Close() error {
	log := m.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	log.Info("shutting down", "drain_window", m.Config.DrainWindow)
	if m.API != nil {
		log.Info("draining streams: clients are told to reconnect", "open_streams", m.API.OpenStreams())
		m.API.StartDrain()
	}
	if m.stopReport != nil {
		m.stopReport() // a draining node leaves the ops summary at once
	}
	var err error
	shut := make(chan struct{})
	if m.http != nil {
		// Shutdown closes the listener first, then waits for the requests
		// in flight (SSE streams end on the drain signal).
		go func() {
			defer close(shut)
			ctx, cancel := context.WithTimeout(context.Background(), m.Config.DrainWindow+5*time.Second)
			err = m.http.Shutdown(ctx)
			cancel()
		}()
	} else {
		close(shut)
	}
	if m.API != nil {
		waitStreams(m.API, m.Config.DrainWindow, start, log)
		_ = m.API.Close()
	}
	<-shut
	if m.http != nil {
		<-m.done
	}
	if m.cancel != nil {
		m.cancel()
	}
	if m.dispatchDone != nil {
		<-m.dispatchDone // leases handed back before Redis closes
	}
	if m.reportDone != nil {
		<-m.reportDone // the node's report removed before Redis closes
	}
	if m.archiveDone != nil {
		<-m.archiveDone // the pipeline's leases handed back before Redis and the archive close
	}
	m.export.stop() // the export's lease handed back before the archive closes
	m.hooks.stop()  // River stopped, the routing lease handed back, before the archive closes
	if m.Feed != nil {
		_ = m.Feed.Close() // ends any subscription left; the clients resume elsewhere
	}
	if aerr := m.archive.Close(); aerr != nil {
		log.Warn("archive close", "err", aerr)
	}
	if m.rdb != nil {
		_ = m.rdb.Close()
	}
	if m.mini != nil {
		close(m.miniDone)
		m.mini.Close()
	}
	if err != nil {
		log.Warn("closed with an error", "err", err, "took", time.Since(start).Round(time.Millisecond))
	} else {
		log.Info("closed", "took", time.Since(start).Round(time.Millisecond))
	}
	return err
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// waitStreams waits for a's WebSockets and SSE streams to end, up to the
// drain window and 2 s: they are hijacked, so http.Server's Shutdown does
// not wait for them. Streams still open then are closed by a.Close.
func waitStreams(a *api.Server, window time.Duration, start time.Time, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), window+2*time.Second)
	defer cancel()
	werr := a.WaitWebSockets(ctx)
	serr := a.WaitStreams(ctx)
	if werr != nil || serr != nil {
		log.Warn("streams still open after the drain window: closing them", "open_streams", a.OpenStreams())
		return
	}
	log.Info("streams drained", "took", time.Since(start).Round(time.Millisecond))
}

// expireLoop makes the embedded Redis expire keys in real time: miniredis
// only counts TTLs down when told to, and leases, locks and dedupe keys rely
// on expiry.
func expireLoop(mr *miniredis.Miniredis, done <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			mr.FastForward(now.Sub(last))
			last = now
		}
	}
}

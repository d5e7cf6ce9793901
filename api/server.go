package api

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hextrack/hextrack/api/driverws"
	"github.com/hextrack/hextrack/api/pollcache"
	"github.com/hextrack/hextrack/api/sse"
	"github.com/hextrack/hextrack/api/webpages"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/web"

	"github.com/hextrack/hextrack/api/tokens"
)

// Config configures the HTTP layer. Zero values are documented per field.
type Config struct {
	// JWTSecret signs and verifies tokens. Required.
	JWTSecret []byte
	// Dev enables POST /v1/dev/token. Zero: off.
	Dev bool
	// MaxBody is the largest request body, bytes. Zero: 1 MiB.
	MaxBody int64
	// Stream tunes SSE streams (trips' and ops') and the drain of
	// long-polls (see sse.Config).
	Stream StreamConfig
	// WS tunes driver WebSockets (see WSConfig in ws.go).
	WS WSConfig
	// Limits are the rate limits and stream admission (limits.go).
	Limits LimitConfig
	// CORSOrigins are the browser origins allowed to call the API from
	// other sites; the driver WebSocket's origin check uses the same list
	// (plus WS.Origins). "*" allows any. Zero: none (same-origin only).
	CORSOrigins []string
	// HSTSMaxAge (seconds) sends Strict-Transport-Security on HTTPS
	// requests. Zero: not sent.
	HSTSMaxAge int
	// PollCacheTTL is how long this node may answer a poll's
	// If-None-Match from a trip or payment tag it read before, without
	// reading Redis again: the longest a change made on another node (or
	// by a ping, dispatch, an ETA) can stay hidden behind a 304 (see
	// pollcache.Cache). Zero: 100ms. Negative: off (every poll reads Redis).
	PollCacheTTL time.Duration
}

// StreamConfig tunes SSE streams: see sse.Config.
type StreamConfig = sse.Config

// Server is hextrack's HTTP API: it builds the handler types (one job
// each, each holding only the deps it calls), registers their routes and
// middlewares, renders every error (error.go) and drains and closes the
// long-lived connections.
type Server struct {
	cfg  Config
	e    *echo.Echo
	auth *tokens.Auth
	reg  *prometheus.Registry
	log  *slog.Logger
	m    *metrics
	// draining is closed when Shutdown starts; streams end on it.
	draining chan struct{}
	// lim holds the rate limiters and stream admission (limits.go).
	lim *limiter
	// health answers /healthz and /readyz and gates streams (health.go).
	health *health

	tokens   *devTokens       // auth.go
	trips    *tripHandlers    // trips.go
	polls    *tripPolls       // longpoll.go
	streams  *sse.Trips       // package sse
	payments *paymentHandlers // payments.go
	drivers  *driverHandlers  // drivers.go, commands.go
	ws       *driverSocket    // ws.go, package driverws
	ops      *opsHandlers     // ops.go
	roads    *roadsHandler    // maps.go
	groups   []Routes         // Deps.Routes
}

// New builds the API server and registers every route.
func New(cfg Config, d Deps) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	// One origin allow-list for CORS and the WebSocket origin check.
	cfg.WS.Origins = append(append([]string(nil), cfg.CORSOrigins...), cfg.WS.Origins...)
	cfg.Stream = cfg.Stream.WithDefaults()
	s := &Server{cfg: cfg, e: echo.New(), auth: tokens.NewAuth(cfg.JWTSecret), reg: d.Registry, log: d.Logger,
		draining: make(chan struct{})}
	s.groups = d.Routes
	s.m = newMetrics(d.Registry)
	s.lim = newLimiter(cfg.Limits, d.Limiter, d.Registry)
	s.health = &health{pinger: d.Health, optional: d.Optional, draining: s.draining}
	s.tokens = &devTokens{auth: s.auth, on: cfg.Dev}
	var drivers driverService
	if d.Pings != nil && d.Drivers != nil {
		drivers = struct {
			Pings
			Drivers
		}{d.Pings, d.Drivers}
	}
	var cmds driverCommands
	if d.Commands != nil && d.Sessions != nil {
		cmds = struct {
			Commands
			Sessions
		}{d.Commands, d.Sessions}
	}
	pc := pollcache.New(cfg.PollCacheTTL)
	s.polls = &tripPolls{feed: d.Feed, snaps: d.Snapshots, draining: s.draining, waiting: s.m.connections.WithLabelValues("longpoll")}
	sseStreams := prometheus.NewGauge(prometheus.GaugeOpts{Name: "hextrack_sse_streams", Help: "Open SSE streams of trips."})
	_ = d.Registry.Register(sseStreams)
	s.streams = sse.NewTrips(cfg.Stream, sse.Deps{Feed: d.Feed, Snapshots: d.Snapshots, Shares: d.Shares, Log: d.Logger,
		Draining: s.draining, Hold: s.lim.hold, Gauge: alsoGauge{Gauge: sseStreams, also: s.m.connections.WithLabelValues("sse")}})
	s.trips = &tripHandlers{trips: d.Trips, views: d.TripViews, snaps: d.Snapshots, shares: d.Shares, chat: d.Chat,
		feed: d.Feed, polls: pc, auth: s.auth, sse: s.streams, longPoll: s.polls}
	s.payments = &paymentHandlers{payments: d.Payments, webhooks: d.Webhooks, polls: pc, trip: s.trips.trip}
	s.drivers = &driverHandlers{drivers: drivers, cmds: cmds, polls: d.CommandPolls, maxBody: cfg.MaxBody, draining: s.draining,
		waiting: s.m.connections.WithLabelValues("longpoll")}
	s.ws = &driverSocket{origins: cfg.WS.Origins, draining: s.draining}
	var wsDeps driverws.Deps
	if cmds != nil && drivers != nil && d.Trips != nil {
		wsDeps = driverws.Deps{Commands: cmds, Drivers: drivers, Trips: d.Trips}
	}
	wsDeps.CheckOrigin, wsDeps.Errors, wsDeps.Log = s.ws.checkOrigin, wsErrors, d.Logger
	wsDeps.Draining, wsDeps.Gauge = s.draining, s.m.connections.WithLabelValues("ws")
	s.ws.ch = driverws.New(cfg.WS, wsDeps)
	s.ops = &opsHandlers{ops: d.Ops, cfg: cfg.Stream, log: d.Logger, draining: s.draining, gauge: s.m.connections.WithLabelValues("sse")}
	s.roads = &roadsHandler{graph: d.Roads, source: d.MapSource}
	if d.Pings != nil {
		d.Pings.SetMetrics(driver.Metrics{
			Accepted: func(n int) { s.m.pingsAccepted.Add(float64(n)) },
			Rejected: func(r string) { s.m.pingsRejected.WithLabelValues(r).Inc() },
			Ingest:   func(t time.Duration) { s.m.ingest.Observe(t.Seconds()) },
			Nearby:   func(t time.Duration) { s.m.nearby.Observe(t.Seconds()) },
		})
	}
	e := s.e
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	if ipx, err := ipExtractor(cfg.Limits.TrustedProxies); err == nil {
		e.IPExtractor = ipx
	} else {
		s.log.Error("limits: ignoring trusted proxies", "err", err)
		e.IPExtractor = echo.ExtractIPDirect()
	}
	// Outermost first. echo applies them to every request, matched or not
	// (404, 405, CORS preflight), after routing, so c.Path() is the route.
	e.Use(
		requestIDs(),
		middleware.Recover(),
		s.logRequests,
		s.m.observe,
		secureHeaders(cfg.HSTSMaxAge),
		corsMiddleware(s.cfg.WS.Origins),
		bodyLimit(s.cfg.MaxBody, d.Routes),
		s.lim.streamIP, s.lim.actionIP, // per IP, before any token work
		authenticate(s.auth, d.Keys),
		s.health.streamGate, // no data store: streams refused with 503 (health.go)
		s.lim.admitStream, s.lim.perSubject,
		pc.ForgetTripChanges, // a change through this node: polls of the trip read Redis again
	)
	s.routes()
	return s
}

// requestIDs is echo's RequestID without its per-request crypto/rand
// read: a client's (or proxy's) X-Request-Id is kept, otherwise the id is
// a random per-process prefix and a counter, unique across nodes and
// restarts.
func requestIDs() echo.MiddlewareFunc {
	var b [8]byte
	_, _ = cryptorand.Read(b[:])
	prefix := hex.EncodeToString(b[:]) + "-"
	var n atomic.Uint64
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			rid := c.Request().Header.Get(echo.HeaderXRequestID)
			if rid == "" {
				var buf [40]byte
				rid = string(strconv.AppendUint(append(buf[:0], prefix...), n.Add(1), 36))
			}
			c.Response().Header()[echo.HeaderXRequestID] = []string{rid}
			return next(c)
		}
	}
}

// Handler is the http.Handler serving the API.
func (s *Server) Handler() http.Handler { return s.e }

// Echo exposes the router (route listing in tests and tools).
func (s *Server) Echo() *echo.Echo { return s.e }

// Auth is the token minter/verifier of this server.
func (s *Server) Auth() *tokens.Auth { return s.auth }

// StartDrain marks the server as draining: /readyz fails and open streams
// are told to reconnect elsewhere.
func (s *Server) StartDrain() {
	select {
	case <-s.draining:
	default:
		close(s.draining)
	}
}

// WaitStreams waits until every SSE stream that took its connection over
// from net/http has ended (after StartDrain they end at once, after a
// jittered retry: hint), or ctx is done. http.Server.Shutdown does not
// wait for them.
func (s *Server) WaitStreams(ctx context.Context) error { return s.streams.Wait(ctx) }

// Close ends the SSE streams that took their connection over from
// net/http, at once: their connections are closed (clients reconnect and
// resume by ID) and streams opened later end after their first frames.
// It waits up to 5 s for them to end. For a graceful stop call StartDrain
// and WaitStreams first. Other requests and WebSockets are unaffected.
func (s *Server) Close() error { return s.streams.Close() }

// WaitWebSockets waits until every driver WebSocket of this node has
// closed (after StartDrain they close within WSConfig.DrainWindow), or ctx
// is done. http.Server.Shutdown does not wait for hijacked connections.
func (s *Server) WaitWebSockets(ctx context.Context) error { return s.ws.ch.Wait(ctx) }

// Draining is closed once StartDrain was called.
func (s *Server) Draining() <-chan struct{} { return s.draining }

func (s *Server) routes() {
	e := s.e
	e.GET("/healthz", healthz)
	e.GET("/readyz", s.health.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})))
	e.GET("/openapi.yaml", serveOpenAPI)
	e.POST("/v1/dev/token", s.tokens.devToken)
	s.driverRoutes()
	s.mapRoutes()
	s.tripRoutes()
	s.paymentRoutes()
	e.GET("/v1/drivers/:id/ws", guard(s.ws.driverWS, tokens.RoleDriver))
	s.opsRoutes()
	for _, r := range s.groups {
		r.Register(e)
	}
	s.webRoutes()
}

// webRoutes serves the web pages (/, /ops, /driver), their assets under
// /assets/ and the page settings at /config.json, all from the files
// embedded by package web (package webpages).
func (s *Server) webRoutes() {
	h := webpages.New(web.Files())
	s.e.GET("/", h.Page("index.html"))
	s.e.GET("/ops", h.Page("ops.html"))
	s.e.GET("/driver", h.Page("driver.html"))
	s.e.GET("/favicon.svg", h.File)
	s.e.GET("/config.json", h.File)
	s.e.GET("/assets/*", h.File)
}

// logRequests writes one slog line per request with its id. It logs the
// path without the query string, so access_token never reaches a log.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			if ae, _ := toError(err); ae != nil {
				status = ae.Status
			}
		}
		lvl := slog.LevelDebug
		if status >= 500 {
			lvl = slog.LevelWarn
		}
		ctx := c.Request().Context()
		if !s.log.Enabled(ctx, lvl) {
			return err // no line at this level: build no attributes
		}
		s.log.Log(ctx, lvl, "http",
			"request_id", requestID(c), "method", c.Request().Method, "route", c.Path(),
			"path", c.Request().URL.Path, "status", status, "dur", time.Since(start))
		return err
	}
}

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

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
)

// Config configures the HTTP layer. Zero values are documented per field.
type Config struct {
	// JWTSecret signs and verifies tokens. Required.
	JWTSecret []byte
	// Dev enables POST /v1/dev/token. Zero: off.
	Dev bool
	// MaxBody is the largest request body, bytes. Zero: 1 MiB.
	MaxBody int64
	// Stream tunes SSE and long-poll streams (see StreamConfig).
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
	// pollCache). Zero: 100ms. Negative: off (every poll reads Redis).
	PollCacheTTL time.Duration
}

// Server is hextrack's HTTP API.
type Server struct {
	cfg     Config
	e       *echo.Echo
	auth    *Auth
	pinger  Pinger
	drivers driverService // nil: no driver routes
	trips   Trips
	views   TripViews
	snaps   Snapshots
	shares  Shares
	chat    Chat
	feed    Feed
	reg     *prometheus.Registry
	log     *slog.Logger
	// roadsGraph and mapSource serve /v1/map/roads.geojson (maps.go).
	roadsGraph *geo.Graph
	mapSource  string
	m          *metrics
	// draining is closed when Shutdown starts; streams end on it.
	draining chan struct{}
	// dc is the driver command channel: open WebSockets (ws.go).
	dc *driverChannel
	// payments and webhooks serve payments.go's routes.
	payments Payments
	webhooks Webhooks
	// health caches whether the data store answers (health.go: the
	// stream gate).
	health health
	// sseStreams counts open trip SSE streams.
	sseStreams prometheus.Gauge
	// sse tracks the trip SSE streams that took their connection over
	// from net/http (sse_conn.go).
	sse streamConns
	// lim holds the rate limiters and stream admission (limits.go).
	lim *limiter
	// ops serves the ops dashboard's routes (ops.go); nil: 503.
	ops Ops
	// polls caches the tags polls were answered with (pollcache.go);
	// nil: off.
	polls *pollCache
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
	s := &Server{cfg: cfg, e: echo.New(), auth: NewAuth(cfg.JWTSecret), pinger: d.Health,
		ops: d.Ops, reg: d.Registry, log: d.Logger, draining: make(chan struct{})}
	s.m = newMetrics(d.Registry)
	if d.Pings != nil && d.Drivers != nil {
		s.drivers = struct {
			Pings
			Drivers
		}{d.Pings, d.Drivers}
	}
	s.trips, s.views, s.snaps, s.shares, s.chat, s.feed = d.Trips, d.TripViews, d.Snapshots, d.Shares, d.Chat, d.Feed
	s.payments, s.webhooks = d.Payments, d.Webhooks
	s.polls = newPollCache(cfg.PollCacheTTL)
	s.roadsGraph, s.mapSource = d.Roads, d.MapSource
	// One origin allow-list for CORS and the WebSocket origin check.
	s.cfg.WS.Origins = append(append([]string(nil), cfg.CORSOrigins...), cfg.WS.Origins...)
	s.lim = newLimiter(cfg.Limits, d.Limiter, d.Registry)
	s.initDriverChannel(d)
	s.cfg.Stream = s.cfg.Stream.withDefaults()
	sse := prometheus.NewGauge(prometheus.GaugeOpts{Name: "hextrack_sse_streams", Help: "Open SSE streams of trips."})
	_ = d.Registry.Register(sse)
	s.sseStreams = alsoGauge{Gauge: sse, also: s.m.connections.WithLabelValues("sse")}
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
		bodyLimit(s.cfg.MaxBody),
		s.lim.streamIP, s.lim.actionIP, // per IP, before any token work
		s.authenticate,
		s.streamGate, // no data store: streams refused with 503 (health.go)
		s.lim.admitStream, s.lim.perSubject,
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
func (s *Server) Auth() *Auth { return s.auth }

// StartDrain marks the server as draining: /readyz fails and open streams
// are told to reconnect elsewhere.
func (s *Server) StartDrain() {
	select {
	case <-s.draining:
	default:
		close(s.draining)
	}
}

// Draining is closed once StartDrain was called.
func (s *Server) Draining() <-chan struct{} { return s.draining }

func (s *Server) routes() {
	e := s.e
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})))
	e.GET("/openapi.yaml", s.openapi)
	e.POST("/v1/dev/token", s.devToken)
	s.driverRoutes()
	s.mapRoutes()
	s.tripRoutes()
	s.paymentRoutes()
	s.driverChannelRoutes()
	s.opsRoutes()
	s.webRoutes()
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

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	select {
	case <-s.draining:
		return &Error{Status: http.StatusServiceUnavailable, Code: "draining", Message: "node is draining"}
	default:
	}
	if s.pinger != nil {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := s.pinger.Ping(ctx); err != nil {
			return &Error{Status: http.StatusServiceUnavailable, Code: "redis_unavailable", Message: "redis is not reachable"}
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

type devTokenRequest struct {
	Role string `json:"role"`
	Sub  string `json:"sub"`
	TTL  string `json:"ttl"`
	Trip string `json:"trip"`
}

// devToken mints tokens in dev mode only; otherwise the route is a 404.
func (s *Server) devToken(c echo.Context) error {
	if !s.cfg.Dev {
		return echo.ErrNotFound
	}
	var r devTokenRequest
	if err := bindJSON(c, &r); err != nil {
		return err
	}
	ttl := time.Hour
	if r.TTL != "" {
		d, err := time.ParseDuration(r.TTL)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "ttl must be a duration like 1h"}
		}
		ttl = d
	}
	tok, err := s.auth.Mint(TokenRequest{Role: r.Role, Sub: r.Sub, TTL: ttl, Trip: r.Trip})
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: err.Error()}
	}
	return c.JSON(http.StatusOK, map[string]string{"token": tok})
}

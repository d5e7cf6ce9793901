package api

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// LimitConfig bounds what one client, and all clients together, may ask of
// a node. Zero values are the documented defaults; a negative rate turns
// that limit off. Per-IP limits are per node (x/time/rate in memory, via
// echo's RateLimiter): behind N nodes a client gets up to N× as much, which
// is fine for their purpose (keep one address from hogging a node). The
// per-subject action limit (Deps.Limiter) and the drivers' ping limit
// (driver.Config) are kept in Redis (package ratelimit) and hold across
// nodes.
type LimitConfig struct {
	// SubjectRate / SubjectBurst: POST/PUT/PATCH/DELETE requests per token
	// subject (role+sub), across nodes, in Redis. Pings have their own
	// bucket (driver.Config.PingRate). Zero: 5/s, burst 30.
	SubjectRate  float64
	SubjectBurst int
	// IPRate / IPBurst: POST/PUT/PATCH/DELETE requests per client IP on
	// this node (pings excluded). Zero: 20/s, burst 100.
	IPRate  float64
	IPBurst int
	// StreamIPRate / StreamIPBurst: new SSE / WebSocket connections per
	// client IP on this node. Zero: 5/s, burst 50.
	StreamIPRate  float64
	StreamIPBurst int
	// StreamRate / StreamBurst: admission of new streams on this node, all
	// clients together; beyond it a client gets 503 with a jittered
	// Retry-After (a reconnect storm after a deploy is spread out instead
	// of taking the node down). Zero: 500/s, burst 500.
	StreamRate  float64
	StreamBurst int
	// MaxStreams caps the open SSE + WebSocket streams of this node; keep
	// it well below the process's file descriptor limit. Zero: 15000.
	MaxStreams int
	// RetrySpread is the range of the random part of Retry-After on a 503
	// from admission. Zero: 10s.
	RetrySpread time.Duration
	// TrustedProxies are the CIDRs of proxies whose X-Forwarded-For names
	// the client; with none, the client is the TCP peer. Zero: none.
	TrustedProxies []string
	// LimitLoopback applies the per-IP limits to loopback clients too.
	// Zero: loopback peers (local tools and simulators, a same-host proxy
	// not listed in TrustedProxies) are exempt from the per-IP limits; the
	// per-subject, per-driver and admission limits still apply.
	LimitLoopback bool
}

func (l LimitConfig) withDefaults() LimitConfig {
	def := func(r *float64, b *int, dr float64, db int) {
		if *r == 0 {
			*r = dr
		}
		if *b <= 0 {
			*b = db
		}
	}
	def(&l.SubjectRate, &l.SubjectBurst, 5, 30)
	def(&l.IPRate, &l.IPBurst, 20, 100)
	def(&l.StreamIPRate, &l.StreamIPBurst, 5, 50)
	def(&l.StreamRate, &l.StreamBurst, 500, 500)
	if l.MaxStreams <= 0 {
		l.MaxStreams = 15000
	}
	if l.RetrySpread <= 0 {
		l.RetrySpread = 10 * time.Second
	}
	return l
}

// ipExtractor returns how the client's IP is found: the TCP peer, or the
// right-most untrusted X-Forwarded-For entry when proxies are configured
// (a client can't dodge per-IP limits by sending its own header).
func ipExtractor(trusted []string) (echo.IPExtractor, error) {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect(), nil
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, s := range trusted {
		if !strings.Contains(s, "/") {
			if strings.Contains(s, ":") {
				s += "/128"
			} else {
				s += "/32"
			}
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), nil
}

// limiter holds the node's limiters.
type limiter struct {
	cfg      LimitConfig
	buckets  Limiter // nil: no per-subject limit
	streamIP echo.MiddlewareFunc
	actionIP echo.MiddlewareFunc
	admit    *rate.Limiter
	open     atomic.Int64
	// rejected counts requests refused, by limit (metrics).
	rejected func(limit string)
}

func newLimiter(cfg LimitConfig, buckets Limiter, reg prometheus.Registerer) *limiter {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hextrack_limited_total", Help: "Requests refused by a rate or admission limit, by limit.",
	}, []string{"limit"})
	_ = reg.Register(refused)
	l := &limiter{cfg: cfg.withDefaults(), buckets: buckets, rejected: func(name string) { refused.WithLabelValues(name).Inc() }}
	_ = reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hextrack_streams_open", Help: "Open SSE + WebSocket streams of this node (admission counts these against MaxStreams).",
	}, func() float64 { return float64(l.open.Load()) }))
	cfg = l.cfg
	l.streamIP = l.perIP("stream_ip", cfg.StreamIPRate, cfg.StreamIPBurst, func(c echo.Context) bool { return !isStream(c) })
	l.actionIP = l.perIP("action_ip", cfg.IPRate, cfg.IPBurst, func(c echo.Context) bool { return !isAction(c) })
	if cfg.StreamRate > 0 {
		l.admit = rate.NewLimiter(rate.Limit(cfg.StreamRate), cfg.StreamBurst)
	}
	return l
}

// perIP is echo's RateLimiter over an in-memory x/time/rate store keyed by
// the client IP; a refusal is a 429 with a Retry-After of one token's time.
func (l *limiter) perIP(name string, r float64, burst int, skip middleware.Skipper) echo.MiddlewareFunc {
	if r < 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	wait := time.Duration(float64(time.Second) / r)
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Skipper: func(c echo.Context) bool {
			return skip(c) || (!l.cfg.LimitLoopback && isLoopback(c.RealIP()))
		},
		Store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: rate.Limit(r), Burst: burst, ExpiresIn: 3 * time.Minute}),
		IdentifierExtractor: func(c echo.Context) (string, error) { return clientKey(c.RealIP()), nil },
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			l.rejected(name)
			return tooMany(c, wait, "too many requests from this address")
		},
	})
}

// clientKey is the per-IP limit's key: the address, or its /64 for IPv6
// (one subscriber usually holds a whole /64 and can rotate within it).
func clientKey(ip string) string {
	a := net.ParseIP(ip)
	if a == nil || a.To4() != nil {
		return ip
	}
	return a.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

func isLoopback(ip string) bool {
	a := net.ParseIP(ip)
	return a != nil && a.IsLoopback()
}

// tooMany sets Retry-After (whole seconds, at least 1) and returns the 429.
func tooMany(c echo.Context, wait time.Duration, msg string) error {
	setRetryAfter(c, wait)
	return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: msg}
}

func setRetryAfter(c echo.Context, wait time.Duration) {
	c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
}

// streamRoutes always stream, whatever the Accept header says.
var streamRoutes = map[string]bool{"/v1/drivers/:id/ws": true, "/v1/ops/summary/stream": true, "/v1/ops/drivers/stream": true}

// isStream: a request that opens a long-lived stream (SSE or WebSocket).
func isStream(c echo.Context) bool {
	r := c.Request()
	return r.Method == http.MethodGet && (streamRoutes[c.Path()] || websocket.IsWebSocketUpgrade(r) ||
		strings.Contains(r.Header.Get(echo.HeaderAccept), "text/event-stream"))
}

// pingRoute has its own per-driver bucket (driver.Config.PingRate).
const pingRoute = "/v1/drivers/:id/locations"

// isAction: a state-changing request subject to the action limits.
func isAction(c echo.Context) bool {
	switch c.Request().Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return c.Path() != pingRoute
	}
	return false
}

// admitStream is the node-wide admission of new streams: a token bucket of
// new streams per second and a cap on open ones. The excess gets 503 with a
// jittered Retry-After, so a reconnect storm after a deploy arrives spread
// over RetrySpread instead of all at once. It runs after authentication:
// requests with a bad token never take a slot.
func (l *limiter) admitStream(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !isStream(c) || claims(c) == nil {
			return next(c)
		}
		if n := l.open.Add(1); n > int64(l.cfg.MaxStreams) {
			l.open.Add(-1)
			l.rejected("streams_open")
			return l.unavailable(c, 0)
		}
		slot := &streamSlot{}
		defer func() {
			if !slot.held {
				l.open.Add(-1)
			}
		}()
		if l.admit != nil {
			now := time.Now()
			r := l.admit.ReserveN(now, 1)
			if d := r.DelayFrom(now); !r.OK() || d > 0 {
				r.CancelAt(now)
				l.rejected("stream_rate")
				return l.unavailable(c, d)
			}
		}
		c.Set(streamSlotKey, slot)
		return next(c)
	}
}

// streamSlot is the admission slot of a stream request: given back when
// its handler returns, unless a stream that outlives the handler holds it
// (hold).
type streamSlot struct{ held bool }

const streamSlotKey = "hextrack.stream_slot"

// hold hands c's admission slot over to a stream that outlives its
// handler (an SSE stream that took its connection over: sse.Deps.Hold),
// so that the stream is counted once, also while the handler returns
// after the client got its response head. A request admitted elsewhere
// takes a slot of its own. release gives the slot back, once.
func (l *limiter) hold(c echo.Context) (release func()) {
	if slot, _ := c.Get(streamSlotKey).(*streamSlot); slot != nil && !slot.held {
		slot.held = true
	} else {
		l.open.Add(1)
	}
	var once sync.Once
	return func() { once.Do(func() { l.open.Add(-1) }) }
}

// unavailable is the 503 of admission: Retry-After is the wait for the next
// token plus a random part within RetrySpread.
func (l *limiter) unavailable(c echo.Context, base time.Duration) error {
	setRetryAfter(c, base+rand.N(l.cfg.RetrySpread))
	return &Error{Status: http.StatusServiceUnavailable, Code: "overloaded",
		Message: "this node is admitting connections slowly; retry after the Retry-After delay"}
}

// perSubject limits actions per token subject in a bucket shared by every
// node (Deps.Limiter), so the limit holds whichever node a request reaches.
// If the bucket fails (Redis) the request goes on: the action itself needs
// Redis and will report the failure.
func (l *limiter) perSubject(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		cl := claims(c)
		if l.cfg.SubjectRate < 0 || l.buckets == nil || cl == nil || !isAction(c) {
			return next(c)
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
		wait, err := l.buckets.Take(ctx, "rl:{"+cl.Role+":"+cl.Subject+"}",
			l.cfg.SubjectRate, l.cfg.SubjectBurst, 1)
		cancel()
		if err == nil && wait > 0 {
			l.rejected("action_subject")
			return tooMany(c, wait, "too many actions for this token")
		}
		return next(c)
	}
}

// OpenStreams is the number of SSE and WebSocket streams this node holds.
func (s *Server) OpenStreams() int64 { return s.lim.open.Load() }

package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
)

// Pinger tells whether this node reaches its data store (Redis): /readyz
// and the stream gate ask it. cmd adapts the Redis client to it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// healthCheckEvery bounds the pings of the stream gate: at most one per
// interval per node, whatever the number of requests.
const healthCheckEvery = 500 * time.Millisecond

// health answers /healthz and /readyz and gates streams on whether this
// node reaches its data store, which it caches.
type health struct {
	pinger   Pinger            // nil: no check
	optional map[string]Pinger // reported by /readyz, never failing it
	draining <-chan struct{}   // closed by StartDrain: /readyz fails

	mu      sync.Mutex
	checked time.Time
	ok      bool
}

// reachable reports whether the store answered a ping recently; a stale
// answer is refreshed by one caller while the others use the cached one.
func (h *health) reachable(ctx context.Context) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.checked) < healthCheckEvery {
		return h.ok
	}
	pctx, cancel := context.WithTimeout(ctx, healthCheckEvery)
	defer cancel()
	h.ok = h.pinger.Ping(pctx) == nil
	h.checked = time.Now()
	return h.ok
}

// opensStream: a GET that opens a long-lived stream (SSE or WebSocket).
func opensStream(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		(websocket.IsWebSocketUpgrade(r) || strings.Contains(r.Header.Get(echo.HeaderAccept), "text/event-stream"))
}

// errUnavailable is the 503 of a node that cannot reach its data store
// (the same the error table gives feed.ErrUnavailable).
var errUnavailable = &Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
	Message: "this node cannot reach its data store; retry shortly"}

// streamGate refuses a request opening a stream (SSE, driver WebSocket)
// with 503 "unavailable" and Retry-After before the upgrade while the node
// cannot reach its data store, so a load balancer that retries 503s
// elsewhere (nginx: proxy_next_upstream http_503) puts the client on a
// healthy node instead of a dead end. A handler's error that is the store
// being unreachable (feed.ErrUnavailable, which the Redis adapter wraps
// around connection refused, timeouts, LOADING, CLUSTERDOWN, ...: see
// feedredis.UnavailableHook) is a 503 through the error table (error.go).
func (h *health) streamGate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if h.pinger != nil && opensStream(r) && !h.reachable(r.Context()) {
			setRetryAfter(c, time.Second)
			return errUnavailable
		}
		return next(c)
	}
}

func healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// optionalCheck bounds /readyz's ping of each optional component.
const optionalCheck = time.Second

// readiness is /readyz's body: "ready", or "degraded" with the optional
// components that failed; components says how each check went ("ok" or
// "unavailable").
type readiness struct {
	Status     string            `json:"status"`
	Components map[string]string `json:"components,omitempty"`
	Degraded   []string          `json:"degraded,omitempty"`
}

// readyz fails while the node drains or cannot reach its data store. An
// optional component that does not answer (the archive) only makes the
// node degraded: still 200 and ready for traffic, the component named in
// the body. The optional components are pinged while Redis is.
func (h *health) readyz(c echo.Context) error {
	select {
	case <-h.draining:
		return &Error{Status: http.StatusServiceUnavailable, Code: "draining", Message: "node is draining"}
	default:
	}
	optional := h.pingOptional(c.Request().Context())
	r := readiness{Status: "ready", Components: map[string]string{}}
	if h.pinger != nil {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := h.pinger.Ping(ctx); err != nil {
			return &Error{Status: http.StatusServiceUnavailable, Code: "redis_unavailable", Message: "redis is not reachable"}
		}
		r.Components["redis"] = "ok"
	}
	for name, err := range optional() {
		r.Components[name] = "ok"
		if err != nil {
			r.Components[name] = "unavailable"
			r.Degraded = append(r.Degraded, name)
		}
	}
	if len(r.Degraded) > 0 {
		r.Status = "degraded"
		slices.Sort(r.Degraded)
	}
	if len(r.Components) == 0 {
		r.Components = nil
	}
	return c.JSON(http.StatusOK, r)
}

// pingOptional pings every optional component at once and returns a
// function that waits for their answers (name → error).
func (h *health) pingOptional(ctx context.Context) func() map[string]error {
	if len(h.optional) == 0 {
		return func() map[string]error { return nil }
	}
	ctx, cancel := context.WithTimeout(ctx, optionalCheck)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out = make(map[string]error, len(h.optional))
	)
	for name, p := range h.optional {
		wg.Go(func() {
			err := p.Ping(ctx)
			mu.Lock()
			out[name] = err
			mu.Unlock()
		})
	}
	return func() map[string]error {
		wg.Wait()
		cancel()
		return out
	}
}

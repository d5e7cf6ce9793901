package api

import (
	"context"
	"net/http"
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

// health caches whether this node reaches its data store.
type health struct {
	mu      sync.Mutex
	checked time.Time
	ok      bool
}

// reachable reports whether the store answered a ping recently; a stale
// answer is refreshed by one caller while the others use the cached one.
func (s *Server) reachable(ctx context.Context) bool {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.checked) < healthCheckEvery {
		return h.ok
	}
	pctx, cancel := context.WithTimeout(ctx, healthCheckEvery)
	defer cancel()
	h.ok = s.pinger.Ping(pctx) == nil
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
// feed.UnavailableHook) is a 503 through the error table (error.go).
func (s *Server) streamGate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if s.pinger != nil && opensStream(r) && !s.reachable(r.Context()) {
			setRetryAfter(c, time.Second)
			return errUnavailable
		}
		return next(c)
	}
}

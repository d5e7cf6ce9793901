package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
)

// redisCheckEvery bounds the PINGs of the stream gate: at most one per
// interval per node, whatever the number of requests.
const redisCheckEvery = 500 * time.Millisecond

// redisHealth caches whether this node reaches Redis.
type redisHealth struct {
	mu      sync.Mutex
	checked time.Time
	ok      bool
}

// reachable reports whether Redis answered a PING recently; a stale answer
// is refreshed by one caller while the others use the cached one.
func (s *Server) redisReachable(ctx context.Context) bool {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.checked) < redisCheckEvery {
		return h.ok
	}
	pctx, cancel := context.WithTimeout(ctx, redisCheckEvery)
	defer cancel()
	h.ok = s.rdb.Ping(pctx).Err() == nil
	h.checked = time.Now()
	return h.ok
}

// opensStream: a GET that opens a long-lived stream (SSE or WebSocket).
func opensStream(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		(websocket.IsWebSocketUpgrade(r) || strings.Contains(r.Header.Get(echo.HeaderAccept), "text/event-stream"))
}

// errRedisUnavailable is the 503 of a node that cannot reach Redis.
func errRedisUnavailable(c echo.Context) error {
	c.Response().Header().Set("Retry-After", "1")
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
		Message: "this node cannot reach its data store; retry shortly"}
}

// redisGate makes a node without Redis say so clearly:
//
//   - a request opening a stream (SSE, driver WebSocket) is refused with 503
//     before the upgrade while the node cannot reach Redis, so a load
//     balancer that retries 503s elsewhere (nginx: proxy_next_upstream
//     http_503) puts the client on a healthy node instead of a dead end;
//   - a handler error that is Redis being unreachable (connection refused
//     or reset, timeouts, pool exhausted, LOADING, CLUSTERDOWN, ...) becomes
//     503 "unavailable" with Retry-After instead of a 500 "internal".
func (s *Server) redisGate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if s.rdb != nil && opensStream(r) && !s.redisReachable(r.Context()) {
			return errRedisUnavailable(c)
		}
		err := next(c)
		if err != nil && !c.Response().Committed && r.Context().Err() == nil && redisUnavailable(err) {
			s.log.Warn("redis unavailable", "request_id", requestID(c), "route", c.Path(), "err", err)
			return errRedisUnavailable(c)
		}
		return err
	}
}

// redisUnavailable tells errors of an unreachable or not-serving Redis from
// everything else.
func redisUnavailable(err error) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return false // already decided
	}
	switch {
	case errors.Is(err, feed.ErrUnavailable), errors.Is(err, redis.ErrClosed),
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING ", "CLUSTERDOWN ", "TRYAGAIN ", "MASTERDOWN ", "READONLY ", "BUSY "} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
	}
	return false
}

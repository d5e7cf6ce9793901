package sse

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// A trip SSE stream on HTTP/1.x takes its connection over from net/http
// (Hijack) once its first frames are built, and the handler returns. What
// net/http keeps per connection while a handler runs — its read and write
// buffers, the request and its headers, the connection's goroutine (its
// stack grown through the middlewares and the snapshot) and the background
// read goroutine — goes with it; the stream is served by one goroutine
// that holds the connection, the subscription, a few fields and one timer.
//
// The response is written by hand: the status line, the headers the
// middlewares set (request id, CORS, security headers) with the SSE ones,
// and `Connection: close`, since the body ends when the connection does
// (no chunked encoding). Nothing is read after the request: a client that
// went away is noticed when a write fails (its side answers the first
// write after its FIN with a reset), or at the next heartbeat of an idle
// stream (Heartbeat, 15 s by default after the last write), where a
// non-blocking read sees its FIN.
//
// http.Server.Shutdown neither waits for nor closes taken-over
// connections: Trips tracks them (streamConns); a drain ends them after a
// jittered retry: hint, Wait waits for them and Close ends them at once.

// canHijack reports whether the stream can take its connection over:
// HTTP/1.x and a writer (under echo's and any middleware's wrappers) that
// can hijack. HTTP/2 and test recorders can't; those streams are served by
// their handler.
func canHijack(c echo.Context) bool {
	if c.Request().ProtoMajor != 1 {
		return false
	}
	w := c.Response().Writer
	for {
		if _, ok := w.(http.Hijacker); ok {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// hijackSSE takes the connection over from net/http. The request (a GET)
// has no body and SSE clients send nothing more, so nothing buffered by
// net/http's reader is needed. The response is marked as sent with 200 for
// the logging and metrics middlewares, which see the handler return once
// the stream is set up (their duration is the setup's, not the stream's).
func hijackSSE(c echo.Context) (net.Conn, error) {
	conn, _, err := http.NewResponseController(c.Response()).Hijack()
	if err != nil {
		return nil, err
	}
	r := c.Response()
	r.Status, r.Committed = http.StatusOK, true
	return conn, nil
}

// sseHead writes the response head of a taken-over stream: the headers
// the middlewares set plus the SSE ones.
func sseHead(b *bytes.Buffer, h http.Header) {
	SetHeaders(h)
	h.Set("Connection", "close") // the body ends with the connection
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	b.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(b) // sorted; newlines in values are replaced by spaces
	b.WriteString("\r\n")
}

// takeOver starts serving the stream on conn, taken over from net/http,
// on a goroutine of its own; h is the response header the middlewares
// set. failed (the first snapshot failed) ends the stream after the first
// frames, and the client reconnects. release gives back the stream's
// admission slot (Deps.Hold), which it holds until it ends.
func (s *Trips) takeOver(t *tripStream, conn net.Conn, h http.Header, release func(), failed bool) {
	t.conn, t.release = conn, release
	hb := frameBufs.Get().(*bytes.Buffer)
	sseHead(hb, h)
	if t.buf != nil {
		hb.Write(t.buf.Bytes())
		putFrameBuf(t.buf)
	}
	t.buf = hb
	if !s.conns.add(conn) { // Close came first
		failed = true
	}
	go s.serveConn(t, failed)
}

// serveConn serves a taken-over stream: the response head with the first
// frames in one write, then run. It owns the connection, the subscription
// and the stream's counts.
func (s *Trips) serveConn(t *tripStream, failed bool) {
	defer func() {
		if r := recover(); r != nil { // what echo's Recover did for the handler
			s.log.Error("sse: panic", "trip", t.id, "panic", r, "stack", string(debug.Stack()))
		}
		if t.buf != nil {
			putFrameBuf(t.buf)
			t.buf = nil
		}
		t.sub.Close()
		_ = t.conn.Close()
		// The counts first: remove may wake Wait and Close, whose callers
		// then read them.
		t.release()
		s.gauge.Dec()
		s.conns.remove(t.conn)
	}()
	if t.flush() != nil || failed {
		return
	}
	t.run(nil)
}

// streamConns tracks the connections of taken-over streams. Its zero value
// is ready to use.
type streamConns struct {
	once   sync.Once
	ctx    context.Context // the streams' Redis calls and subscriptions; cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed by Close

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	empty  chan struct{} // closed when conns becomes empty
	closed bool
}

func (sc *streamConns) init() {
	sc.once.Do(func() {
		sc.ctx, sc.cancel = context.WithCancel(context.Background())
		sc.done = make(chan struct{})
		sc.conns = map[net.Conn]struct{}{}
	})
}

// context is the context of taken-over streams.
func (sc *streamConns) context() context.Context {
	sc.init()
	return sc.ctx
}

// closing is closed by Close.
func (sc *streamConns) closing() <-chan struct{} {
	sc.init()
	return sc.done
}

// add tracks c; false after Close (the caller ends the stream).
func (sc *streamConns) add(c net.Conn) bool {
	sc.init()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.conns) == 0 {
		sc.empty = make(chan struct{})
	}
	sc.conns[c] = struct{}{}
	return !sc.closed
}

func (sc *streamConns) remove(c net.Conn) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if _, ok := sc.conns[c]; !ok {
		return
	}
	delete(sc.conns, c)
	if len(sc.conns) == 0 {
		close(sc.empty)
	}
}

// wait returns once no stream is tracked, or with ctx's error.
func (sc *streamConns) wait(ctx context.Context) error {
	sc.init()
	for {
		sc.mu.Lock()
		n, empty := len(sc.conns), sc.empty
		sc.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-empty:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Wait waits until every stream that took its connection over from
// net/http has ended (once the node drains they end at once, after a
// jittered retry: hint), or ctx is done. http.Server.Shutdown does not
// wait for them.
func (s *Trips) Wait(ctx context.Context) error { return s.conns.wait(ctx) }

// Close ends the streams that took their connection over from net/http,
// at once: their connections are closed (clients reconnect and resume by
// ID), streams opened later end after their first frames and new ones
// are refused (ErrShuttingDown). It waits up to 5 s for them to end.
func (s *Trips) Close() error {
	sc := &s.conns
	sc.init()
	sc.mu.Lock()
	if !sc.closed {
		sc.closed = true
		close(sc.done)
		sc.cancel()
	}
	for c := range sc.conns {
		_ = c.Close() // a write in progress fails at once
	}
	sc.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sc.wait(ctx); err != nil {
		return errors.New("sse: streams still open 5 s after Close")
	}
	return nil
}

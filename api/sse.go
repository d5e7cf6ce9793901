package api

import (
	"bytes"
	"log/slog"
	"sync/atomic"

	"context"
	"encoding/json"
	"errors"
	"github.com/prometheus/client_golang/prometheus"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
)

// StreamConfig tunes SSE and long-poll streams. Zero values are the
// documented defaults.
type StreamConfig struct {
	// Heartbeat is the period of SSE comment lines that keep proxies from
	// closing an idle stream: one goes out when nothing else was written
	// for that long. Zero: 15s.
	Heartbeat time.Duration
	// Retry is the reconnect delay hint sent at the start of a stream
	// (`retry:`). Zero: 2s.
	Retry time.Duration
	// DrainRetry bounds the jittered reconnect hint sent when the node
	// drains, so that clients spread over the other nodes. Zero: 5s.
	DrainRetry time.Duration
	// AuthCheck is how often an open stream re-checks its token's expiry
	// and, for viewers, that the share link is not revoked. Zero: 2s.
	AuthCheck time.Duration
	// WriteTimeout bounds one write to a stream client. Zero: 10s.
	WriteTimeout time.Duration
	// LocationDelay: after a resume, the latest location is sent once the
	// missed events are out, or after this delay at the latest. Zero: 100ms.
	LocationDelay time.Duration
}

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.Retry <= 0 {
		c.Retry = 2 * time.Second
	}
	if c.DrainRetry <= 0 {
		c.DrainRetry = 5 * time.Second
	}
	if c.AuthCheck <= 0 {
		c.AuthCheck = 2 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.LocationDelay <= 0 {
		c.LocationDelay = 100 * time.Millisecond
	}
	return c
}

// sseWriter writes SSE frames into a buffer flushed once per batch.
type sseWriter struct {
	w   *echo.Response
	rc  *http.ResponseController
	buf bytes.Buffer
	to  time.Duration
}

// frame appends one event. id "" omits the id line (live-only events and
// comments must not move the client's Last-Event-ID).
func (w *sseWriter) frame(id, event string, data []byte) { appendFrame(&w.buf, id, event, data) }
func (w *sseWriter) retry(d time.Duration)               { appendRetry(&w.buf, d) }
func (w *sseWriter) comment(s string)                    { appendComment(&w.buf, s) }

// appendFrame appends one event to b. id "" omits the id line (live-only
// events and comments must not move the client's Last-Event-ID).
func appendFrame(b *bytes.Buffer, id, event string, data []byte) {
	if id != "" {
		b.WriteString("id: ")
		b.WriteString(id)
		b.WriteByte('\n')
	}
	b.WriteString("event: ")
	b.WriteString(event)
	b.WriteString("\ndata: ")
	b.Write(data) // compact JSON: never a newline
	b.WriteString("\n\n")
}

// appendRetry appends a reconnect delay hint.
func appendRetry(b *bytes.Buffer, d time.Duration) {
	b.WriteString("retry: ")
	b.WriteString(strconv.FormatInt(d.Milliseconds(), 10))
	b.WriteString("\n\n")
}

// appendComment appends a comment line (heartbeats).
func appendComment(b *bytes.Buffer, s string) {
	b.WriteString(": ")
	b.WriteString(s)
	b.WriteString("\n\n")
}

func (w *sseWriter) flush() error {
	if w.buf.Len() == 0 {
		return nil
	}
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.to))
	_, err := w.w.Write(w.buf.Bytes())
	// Release the buffer rather than keep its capacity: most streams sit
	// idle between flushes, and one allocation per flush is cheaper than a
	// snapshot-sized buffer held by every idle connection.
	w.buf = bytes.Buffer{}
	if err != nil {
		return err
	}
	w.w.Flush()
	return nil
}

// setSSEHeaders sets the headers of an event stream: its type, no caching
// or transforming by proxies, no buffering by nginx.
func setSSEHeaders(h http.Header) {
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
}

// envelope is the frame data of snapshot and reset events: the event
// envelope with the snapshot as data.
type envelope struct {
	ID    string    `json:"id,omitempty"`
	Type  string    `json:"type"`
	Topic string    `json:"topic"`
	TS    time.Time `json:"ts"`
	Data  any       `json:"data"`
}

// serve streams a trip's feed as Server-Sent Events, per DESIGN.md:
// subscribe first; on a fresh connect a `snapshot` (its id: is the feed
// position it reflects); on a resume (Last-Event-ID header or lastEventId
// query) the missed events, then the latest location, then live events; a
// `reset` with a fresh snapshot when continuity can't be proven. Durable
// events carry id:, live trip.location does not and is dropped when not
// newer than the last location sent. The stream ends when the client goes,
// the subscription is dropped (slow consumer; the client resumes by ID),
// the token expires or a viewer's share link is revoked (an `error` event
// first), the node drains (a jittered retry: hint first) or Close is
// called.
//
// On HTTP/1.x the stream takes its connection over from net/http once the
// first frames are built (sse_conn.go): the handler returns, and one
// goroutine holding little more than the connection and the subscription
// serves the stream, which is what keeps an idle stream small. Where the
// connection can't be taken over (HTTP/2, a test recorder) the handler
// serves the stream itself, the same way.
func (s *tripStreams) serve(c echo.Context, id string, a trip.Actor) error {
	req := c.Request()
	last := req.Header.Get("Last-Event-ID")
	if last == "" {
		last = c.QueryParam("lastEventId")
	}
	// A stream that takes its connection over outlives the request: its
	// subscription and later Redis calls use the streams' context (ended
	// by Close), not the request's (cancelled when the handler returns).
	takeOver := canHijack(c)
	sctx := req.Context()
	if takeOver {
		sctx = s.conns.context()
		if sctx.Err() != nil {
			return &Error{Status: http.StatusServiceUnavailable, Code: "draining", Message: "node is shutting down"}
		}
	}
	topic := trip.Topic(id)
	sub, err := s.feed.Subscribe(sctx, topic, last)
	if err != nil {
		return err
	}
	s.gauge.Inc()
	t := &tripStream{s: s, sub: sub, ctx: sctx, id: id, topic: topic, a: a, resumed: last != ""}
	if cl := claims(c); cl != nil && cl.ExpiresAt != nil {
		t.expiry = cl.ExpiresAt.Time
	}
	t.retry(s.cfg.Retry)
	failed := false
	if last == "" {
		// The snapshot's Redis calls run here, on the request's goroutine,
		// whose deep stack goes away with it.
		failed = t.snapshot(req.Context(), "snapshot", sub.Position()) != nil
	}
	if takeOver {
		if conn, err := hijackSSE(c); err == nil {
			s.takeOver(t, conn, c.Response().Header(), failed)
			return nil
		}
	}
	defer s.gauge.Dec()
	defer sub.Close()
	h := c.Response().Header()
	setSSEHeaders(h)
	h.Set("Connection", "keep-alive")
	c.Response().WriteHeader(http.StatusOK)
	t.resp, t.rc = c.Response(), http.NewResponseController(c.Response())
	// A failed snapshot: the headers and retry: go out, and the client
	// reconnects (an HTTP error would make EventSource give up).
	if t.flush() != nil || failed {
		return nil
	}
	t.run(req.Context().Done())
	return nil
}

// tripStreams serve trips' feeds as SSE streams (serve), and track the
// streams that took their connection over from net/http (sse_conn.go).
type tripStreams struct {
	cfg      StreamConfig
	feed     Feed
	snaps    Snapshots
	shares   Shares // a viewer's share link is re-checked while it watches
	log      *slog.Logger
	draining <-chan struct{}
	// open is the limiter's count of open streams (admitStream): a
	// taken-over stream holds one until it ends.
	open  *atomic.Int64
	gauge prometheus.Gauge // open trip SSE streams
	conns streamConns
}

// tripStream is one trip SSE stream once its first frames are built: what
// its serving goroutine owns. Exactly one of conn (taken over from
// net/http) and resp is set.
type tripStream struct {
	s         *tripStreams
	sub       *feed.Subscription
	ctx       context.Context // the Redis calls of resets, locations and share checks
	id, topic string
	a         trip.Actor
	expiry    time.Time // the token's; zero: none
	locSeq    int64     // highest location seq sent
	resumed   bool      // the latest location follows the missed events
	// buf holds the frames of the batch being built; nil between batches
	// (an idle stream holds no buffer).
	buf      *bytes.Buffer
	conn     net.Conn
	deadline time.Time // conn's write deadline
	// wrote is when the last write succeeded (Unix ns): a stream that wrote
	// within the heartbeat period is not idle and needs no heartbeat.
	wrote int64
	resp  *echo.Response
	rc    *http.ResponseController
}

// frameBufs recycles batch buffers: most streams sit idle between batches,
// and one pooled buffer per batch beats both an allocation per batch and a
// buffer held by every idle stream.
var frameBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (t *tripStream) b() *bytes.Buffer {
	if t.buf == nil {
		t.buf = frameBufs.Get().(*bytes.Buffer)
	}
	return t.buf
}

func (t *tripStream) frame(id, event string, data []byte) { appendFrame(t.b(), id, event, data) }
func (t *tripStream) retry(d time.Duration)               { appendRetry(t.b(), d) }
func (t *tripStream) comment(s string)                    { appendComment(t.b(), s) }

// buffered is the size of the batch being built.
func (t *tripStream) buffered() int {
	if t.buf == nil {
		return 0
	}
	return t.buf.Len()
}

// flush writes the batch, bounded by WriteTimeout: on a taken-over
// connection one write syscall, else through net/http and a flush.
func (t *tripStream) flush() error {
	b := t.buf
	if b == nil {
		return nil
	}
	t.buf = nil
	defer putFrameBuf(b)
	to := t.s.cfg.WriteTimeout
	now := time.Now()
	if t.conn != nil {
		// The deadline is moved only once less than half of WriteTimeout is
		// left (not on every write of a busy stream): a write gets between
		// WriteTimeout/2 and WriteTimeout.
		if t.deadline.Sub(now) < to/2 {
			t.deadline = now.Add(to)
			_ = t.conn.SetWriteDeadline(t.deadline)
		}
		if _, err := t.conn.Write(b.Bytes()); err != nil {
			return err
		}
		t.wrote = now.UnixNano()
		return nil
	}
	_ = t.rc.SetWriteDeadline(now.Add(to))
	if _, err := t.resp.Write(b.Bytes()); err != nil {
		return err
	}
	t.resp.Flush()
	t.wrote = now.UnixNano()
	return nil
}

func putFrameBuf(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 { // a large snapshot's buffer is not kept
		b.Reset()
		frameBufs.Put(b)
	}
}

// snapshot appends a snapshot (event "snapshot" or "reset") at feed
// position pos.
func (t *tripStream) snapshot(ctx context.Context, event, pos string) error {
	snap, err := t.s.snaps.Snapshot(ctx, t.id, t.a)
	if err != nil {
		return err
	}
	snap.FeedPosition = pos
	if snap.Location != nil {
		t.locSeq = max(t.locSeq, snap.Location.Seq)
	}
	b, _ := json.Marshal(envelope{Type: event, Topic: t.topic, TS: time.Now().UTC(), Data: snap})
	t.frame(pos, event, b)
	return nil
}

// location appends the trip's latest location unless it is not newer than
// the last one sent.
func (t *tripStream) location() error {
	l, err := t.s.snaps.LocationOf(t.ctx, t.id)
	if err != nil || l == nil || l.Seq <= t.locSeq {
		return err
	}
	t.locSeq = l.Seq
	data, _ := json.Marshal(struct {
		TripID string `json:"trip_id"`
		*trip.Location
	}{t.id, l})
	b, _ := json.Marshal(feed.Event{Type: trip.EventLocation, Topic: t.topic, TS: time.Now().UTC(), Data: data})
	t.frame("", trip.EventLocation, b)
	return nil
}

// item appends one item of the subscription; an error ends the stream.
func (t *tripStream) item(it feed.Item) error {
	if it.Reset {
		return t.snapshot(t.ctx, "reset", it.Position)
	}
	ev := it.Event
	if !ev.Durable() && ev.Type == trip.EventLocation && ev.Seq != 0 {
		// Latest wins: a fix not newer than the last sent is stale. (A
		// trip.location without a sequence, from a node of an older
		// release during a rolling upgrade, goes out unchecked.)
		if ev.Seq <= t.locSeq {
			return nil
		}
		t.locSeq = ev.Seq
	}
	b, err := it.JSON() // a live event is encoded once per node
	if err != nil {
		return err
	}
	t.frame(ev.ID, ev.Type, b)
	return nil
}

// tokenExpired tells the client to fetch a fresh token and reconnect with
// Last-Event-ID.
func (t *tripStream) tokenExpired() {
	b, _ := json.Marshal(envelope{Type: "token_expired", Topic: t.topic, TS: time.Now().UTC(),
		Data: map[string]string{"code": "token_expired", "message": "the access token expired; reconnect with a fresh token and Last-Event-ID"}})
	t.frame("", "token_expired", b)
	_ = t.flush()
}

// run serves the stream after its first frames until it ends (see
// serveSSE); gone is closed when net/http sees the client go (nil on a
// taken-over connection, where a write or the heartbeat's check notices).
func (t *tripStream) run(gone <-chan struct{}) {
	s, cfg, sub := t.s, t.s.cfg, t.sub
	var locDue <-chan time.Time
	if t.resumed {
		locDue = time.After(cfg.LocationDelay)
	}
	// One timer per stream serves the heartbeat, the token's expiry and,
	// for viewers, the share link's re-check (each idle stream holds it;
	// three would cost three). Other roles' access can only end by expiry,
	// so their streams wake once per heartbeat, not once per AuthCheck.
	now := time.Now()
	nextHB := now.Add(cfg.Heartbeat)
	var nextCheck time.Time // zero: no share link to re-check
	if t.a.Role == RoleViewer {
		nextCheck = now.Add(cfg.AuthCheck)
	}
	due := func() time.Duration {
		next := nextHB
		if !nextCheck.IsZero() && nextCheck.Before(next) {
			next = nextCheck
		}
		if !t.expiry.IsZero() && t.expiry.Before(next) {
			next = t.expiry
		}
		return time.Until(next)
	}
	tick := time.NewTimer(due())
	defer tick.Stop()
	closing := s.conns.closing()
	for {
		select {
		case it, ok := <-sub.C():
			if !ok {
				if err := sub.Err(); err != nil && !errors.Is(err, feed.ErrSlowConsumer) && !errors.Is(err, feed.ErrClosed) && t.ctx.Err() == nil {
					s.log.Warn("sse: subscription ended", "trip", t.id, "err", err)
				}
				return
			}
			if t.item(it) != nil {
				return
			}
			for more := true; more && t.buffered() < 64<<10; {
				select {
				case it, ok := <-sub.C():
					if !ok {
						more = false
						break
					}
					if t.item(it) != nil {
						return
					}
				default:
					more = false
				}
			}
			if locDue != nil && len(sub.C()) == 0 {
				locDue = nil
				if t.location() != nil {
					return
				}
			}
			if t.flush() != nil {
				return
			}
		case <-locDue:
			locDue = nil
			if t.location() != nil || t.flush() != nil {
				return
			}
		case now := <-tick.C:
			if !t.expiry.IsZero() && !now.Before(t.expiry) {
				t.tokenExpired()
				return
			}
			if !nextCheck.IsZero() && !now.Before(nextCheck) {
				nextCheck = now.Add(cfg.AuthCheck)
				if err := s.shares.CheckShare(t.ctx, t.id, t.a.Share); err != nil {
					if t.ctx.Err() != nil {
						return // Close or the client went: no verdict
					}
					b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": "access_revoked", "message": "access to this trip ended; open a new link"}})
					t.frame("", "error", b)
					_ = t.flush()
					return
				}
			}
			if !now.Before(nextHB) {
				// now is when the timer fired: events may have been
				// written since.
				cur := time.Now()
				if since := cur.UnixNano() - t.wrote; since >= 0 && since < int64(cfg.Heartbeat-cfg.Heartbeat/8) {
					// Not idle: events went out within the period, which
					// keeps proxies from closing the stream as a comment
					// would (and a write notices a client that went). The
					// heartbeat is due a period after the last write. (The
					// eighth spares an idle stream, whose last write was its
					// previous heartbeat, a wake-up just short of it.)
					nextHB = cur.Add(cfg.Heartbeat - time.Duration(since))
				} else {
					nextHB = now.Add(cfg.Heartbeat)
					if t.conn != nil && peerClosed(t.conn) {
						return
					}
					t.comment("hb")
					if t.flush() != nil {
						return
					}
				}
			}
			tick.Reset(due())
		case <-s.draining:
			// Spread the reconnects of this node's clients over DrainRetry.
			t.retry(time.Duration(250+rand.Int64N(cfg.DrainRetry.Milliseconds()+1)) * time.Millisecond)
			_ = t.flush()
			return
		case <-gone:
			return
		case <-closing:
			return
		}
	}
}

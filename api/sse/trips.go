package sse

import (
	"bytes"
	"log/slog"

	"context"
	"encoding/json"
	"errors"
	"github.com/prometheus/client_golang/prometheus"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
)

// Serve streams a trip's feed as Server-Sent Events, per DESIGN.md:
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
// first frames are built (conn.go): the handler returns, and one
// goroutine holding little more than the connection and the subscription
// serves the stream, which is what keeps an idle stream small. Where the
// connection can't be taken over (HTTP/2, a test recorder) the handler
// serves the stream itself, the same way. a is the authorized caller,
// expiry its token's (zero: none).
func (s *Trips) Serve(c echo.Context, id string, a trip.Actor, expiry time.Time) error {
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
			return ErrShuttingDown
		}
	}
	topic := trip.Topic(id)
	sub, err := s.feed.Subscribe(sctx, topic, last)
	if err != nil {
		return err
	}
	s.gauge.Inc()
	t := &tripStream{s: s, sub: sub, ctx: sctx, id: id, topic: topic, a: a, resumed: last != "", expiry: expiry}
	t.retry(s.cfg.Retry)
	failed := false
	if last == "" {
		// The snapshot's Redis calls run here, on the request's goroutine,
		// whose deep stack goes away with it.
		failed = t.snapshot(req.Context(), "snapshot", sub.Position()) != nil
	}
	if takeOver {
		if conn, err := hijackSSE(c); err == nil {
			s.takeOver(t, conn, c.Response().Header(), s.hold(c), failed)
			return nil
		}
	}
	defer s.gauge.Dec()
	defer sub.Close()
	h := c.Response().Header()
	SetHeaders(h)
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

// Trips serve trips' feeds as SSE streams (Serve), and track the streams
// that took their connection over from net/http (conn.go).
type Trips struct {
	cfg      Config
	feed     Feed
	snaps    Snapshots
	shares   Shares // a viewer's share link is re-checked while it watches
	log      *slog.Logger
	draining <-chan struct{}
	// hold keeps the caller's admission slot of a stream that takes its
	// connection over; the stream releases it when it ends.
	hold  func(echo.Context) (release func())
	gauge prometheus.Gauge // open trip SSE streams
	conns streamConns
}

// Deps are what Trips calls and counts with.
type Deps struct {
	Feed      Feed
	Snapshots Snapshots
	Shares    Shares
	Log       *slog.Logger
	// Draining is closed when the node drains: streams end after a
	// jittered retry: hint.
	Draining <-chan struct{}
	// Hold hands the admission slot of c's stream (api's count of open
	// streams) over to a stream that takes its connection over and so
	// outlives its handler; the stream calls release when it ends. The
	// slot is handed over, not taken twice: a client that got its
	// response head must not find its stream counted twice while the
	// handler returns. Nil: streams are not counted.
	Hold  func(c echo.Context) (release func())
	Gauge prometheus.Gauge // open trip SSE streams
}

// NewTrips returns the trip streams of a node; cfg's zero fields take
// their defaults.
func NewTrips(cfg Config, d Deps) *Trips {
	t := &Trips{cfg: cfg.WithDefaults(), feed: d.Feed, snaps: d.Snapshots, shares: d.Shares, log: d.Log,
		draining: d.Draining, hold: d.Hold, gauge: d.Gauge}
	if t.hold == nil {
		t.hold = func(echo.Context) func() { return func() {} }
	}
	return t
}

// Feed is a trip's event feed, subscribed live.
type Feed interface {
	Subscribe(ctx context.Context, topic, lastID string) (Subscription, error)
}

// Subscription is a stream's live subscription to its trip's feed
// (feedredis.Subscription): items from C until it is closed, then Err says
// why; Position is where a fresh connect's snapshot stands.
type Subscription interface {
	C() <-chan feed.Item
	Position() string
	Err() error
	Close()
}

// Snapshots are what a stream starts from and resets to, and the trip's
// latest location.
type Snapshots interface {
	Snapshot(ctx context.Context, id string, a trip.Actor) (trip.Snapshot, error)
	LocationOf(ctx context.Context, id string) (*trip.Location, error)
}

// Shares re-check a viewer's share link while it watches.
type Shares interface {
	CheckShare(ctx context.Context, id, shareID string) error
}

// ErrShuttingDown: Close was called; a new stream is refused (api maps it
// to 503 "draining").
var ErrShuttingDown = errors.New("node is shutting down")

// tripStream is one trip SSE stream once its first frames are built: what
// its serving goroutine owns. Exactly one of conn (taken over from
// net/http) and resp is set.
type tripStream struct {
	s         *Trips
	sub       Subscription
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
	release  func()    // gives back conn's admission slot (Deps.Hold)
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
	b, _ := json.Marshal(Envelope{Type: event, Topic: t.topic, TS: time.Now().UTC(), Data: snap})
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
	b, _ := json.Marshal(Envelope{Type: "token_expired", Topic: t.topic, TS: time.Now().UTC(),
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
	if t.a.Role == trip.RoleViewer {
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

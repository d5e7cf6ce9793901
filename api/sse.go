package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/rider"
)

// StreamConfig tunes SSE and long-poll streams. Zero values are the
// documented defaults.
type StreamConfig struct {
	// Heartbeat is the period of SSE comment lines that keep proxies from
	// closing an idle stream. Zero: 15s.
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
func (w *sseWriter) frame(id, event string, data []byte) {
	if id != "" {
		w.buf.WriteString("id: ")
		w.buf.WriteString(id)
		w.buf.WriteByte('\n')
	}
	w.buf.WriteString("event: ")
	w.buf.WriteString(event)
	w.buf.WriteString("\ndata: ")
	w.buf.Write(data) // compact JSON: never a newline
	w.buf.WriteString("\n\n")
}

func (w *sseWriter) retry(d time.Duration) {
	w.buf.WriteString("retry: ")
	w.buf.WriteString(strconv.FormatInt(d.Milliseconds(), 10))
	w.buf.WriteString("\n\n")
}

func (w *sseWriter) comment(s string) {
	w.buf.WriteString(": ")
	w.buf.WriteString(s)
	w.buf.WriteString("\n\n")
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

// envelope is the frame data of snapshot and reset events: the event
// envelope with the snapshot as data.
type envelope struct {
	ID    string    `json:"id,omitempty"`
	Type  string    `json:"type"`
	Topic string    `json:"topic"`
	TS    time.Time `json:"ts"`
	Data  any       `json:"data"`
}

// serveSSE streams a trip's feed as Server-Sent Events, per DESIGN.md:
// subscribe first; on a fresh connect a `snapshot` (its id: is the feed
// position it reflects); on a resume (Last-Event-ID header or lastEventId
// query) the missed events, then the latest location, then live events; a
// `reset` with a fresh snapshot when continuity can't be proven. Durable
// events carry id:, live trip.location does not and is dropped when not
// newer than the last location sent. The stream ends when the client goes,
// the subscription is dropped (slow consumer; the client resumes by ID),
// the token expires or a viewer's share link is revoked (an `error` event
// first), or the node drains (a jittered retry: hint first).
func (s *Server) serveSSE(c echo.Context, id string, a rider.Actor) error {
	ctx := c.Request().Context()
	cfg := s.cfg.Stream
	last := c.Request().Header.Get("Last-Event-ID")
	if last == "" {
		last = c.QueryParam("lastEventId")
	}
	topic := rider.Topic(id)
	sub, err := s.feed.Subscribe(ctx, topic, last)
	if err != nil {
		return err
	}
	defer sub.Close()
	s.sseStreams.Inc()
	defer s.sseStreams.Dec()

	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Connection", "keep-alive")
	c.Response().WriteHeader(http.StatusOK)
	w := &sseWriter{w: c.Response(), rc: http.NewResponseController(c.Response()), to: cfg.WriteTimeout}
	w.retry(cfg.Retry)

	var locSeq int64 // highest location seq sent
	sendSnapshot := func(event, pos string) error {
		snap, err := s.trips.Snapshot(ctx, id, a)
		if err != nil {
			return err
		}
		snap.FeedPosition = pos
		if snap.Location != nil {
			locSeq = max(locSeq, snap.Location.Seq)
		}
		b, _ := json.Marshal(envelope{Type: event, Topic: topic, TS: time.Now().UTC(), Data: snap})
		w.frame(pos, event, b)
		return nil
	}
	sendLocation := func() error {
		l, err := s.trips.LocationOf(ctx, id)
		if err != nil || l == nil || l.Seq <= locSeq {
			return err
		}
		locSeq = l.Seq
		data, _ := json.Marshal(struct {
			TripID string `json:"trip_id"`
			*rider.Location
		}{id, l})
		b, _ := json.Marshal(feed.Event{Type: rider.EventLocation, Topic: topic, TS: time.Now().UTC(), Data: data})
		w.frame("", rider.EventLocation, b)
		return nil
	}
	// writeItem appends one item; false when the stream must end.
	writeItem := func(it feed.Item) error {
		if it.Reset {
			return sendSnapshot("reset", it.Position)
		}
		ev := it.Event
		if !ev.Durable() {
			if ev.Type == rider.EventLocation {
				seq, ok := locationSeq(ev.Data)
				if !ok || seq <= locSeq {
					return nil // stale or malformed fix: latest wins
				}
				locSeq = seq
			}
		}
		b, err := it.JSON() // a live event is encoded once per node
		if err != nil {
			return err
		}
		w.frame(ev.ID, ev.Type, b)
		return nil
	}

	if last == "" {
		if err := sendSnapshot("snapshot", sub.Position()); err != nil {
			return nil // headers are out; the client reconnects
		}
	}
	if err := w.flush(); err != nil {
		return nil
	}
	// On a resume the latest location follows the missed events.
	var locDue <-chan time.Time
	if last != "" {
		locDue = time.After(cfg.LocationDelay)
	}
	// One timer per stream serves the heartbeat, the access re-check and
	// the token's expiry (each idle connection holds it; three would cost
	// three). The stream ends when its token expires: a token_expired event
	// tells the client to fetch a fresh token and reconnect with
	// Last-Event-ID.
	now := time.Now()
	nextHB, nextCheck := now.Add(cfg.Heartbeat), now.Add(cfg.AuthCheck)
	var expiry time.Time
	if cl := claims(c); cl != nil && cl.ExpiresAt != nil {
		expiry = cl.ExpiresAt.Time
	}
	due := func() time.Duration {
		next := nextHB
		if nextCheck.Before(next) {
			next = nextCheck
		}
		if !expiry.IsZero() && expiry.Before(next) {
			next = expiry
		}
		return time.Until(next)
	}
	tick := time.NewTimer(due())
	defer tick.Stop()
	tokenExpired := func() {
		b, _ := json.Marshal(envelope{Type: "token_expired", Topic: topic, TS: time.Now().UTC(),
			Data: map[string]string{"code": "token_expired", "message": "the access token expired; reconnect with a fresh token and Last-Event-ID"}})
		w.frame("", "token_expired", b)
		_ = w.flush()
	}
	for {
		select {
		case it, ok := <-sub.C():
			if !ok {
				if err := sub.Err(); err != nil && !errors.Is(err, feed.ErrSlowConsumer) && !errors.Is(err, feed.ErrClosed) && ctx.Err() == nil {
					s.log.Warn("sse: subscription ended", "trip", id, "err", err)
				}
				return nil
			}
			if err := writeItem(it); err != nil {
				return nil
			}
			for more := true; more && w.buf.Len() < 64<<10; {
				select {
				case it, ok := <-sub.C():
					if !ok {
						more = false
						break
					}
					if err := writeItem(it); err != nil {
						return nil
					}
				default:
					more = false
				}
			}
			if locDue != nil && len(sub.C()) == 0 {
				locDue = nil
				if err := sendLocation(); err != nil {
					return nil
				}
			}
			if err := w.flush(); err != nil {
				return nil
			}
		case <-locDue:
			locDue = nil
			if sendLocation() != nil || w.flush() != nil {
				return nil
			}
		case now := <-tick.C:
			if !expiry.IsZero() && !now.Before(expiry) {
				tokenExpired()
				return nil
			}
			if !now.Before(nextCheck) {
				nextCheck = now.Add(cfg.AuthCheck)
				if err := s.streamAuth(ctx, c, id, a); errors.Is(err, ErrUnauthorized) {
					tokenExpired()
					return nil
				} else if err != nil {
					b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": "access_revoked", "message": "access to this trip ended; open a new link"}})
					w.frame("", "error", b)
					_ = w.flush()
					return nil
				}
			}
			if !now.Before(nextHB) {
				nextHB = now.Add(cfg.Heartbeat)
				w.comment("hb")
				if err := w.flush(); err != nil {
					return nil
				}
			}
			tick.Reset(due())
		case <-s.draining:
			// Spread the reconnects of this node's clients over DrainRetry.
			w.retry(time.Duration(250+rand.Int64N(cfg.DrainRetry.Milliseconds()+1)) * time.Millisecond)
			_ = w.flush()
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// streamAuth re-checks an open stream's access: the token must not have
// expired, and a viewer's share link must still be valid.
func (s *Server) streamAuth(ctx context.Context, c echo.Context, id string, a rider.Actor) error {
	if cl := claims(c); cl != nil && cl.ExpiresAt != nil && !time.Now().Before(cl.ExpiresAt.Time) {
		return ErrUnauthorized
	}
	if a.Role == RoleViewer {
		return s.trips.CheckShare(ctx, id, a.Share)
	}
	return nil
}

// locationSeq reads the seq of a trip.location's data. rider writes it
// first after the trip ID ({"trip_id":"…","seq":N,…}), where it is read
// without decoding the JSON; anything else is decoded.
func locationSeq(data []byte) (int64, bool) {
	const pre, key = `{"trip_id":"`, `","seq":`
	if rest, ok := bytes.CutPrefix(data, []byte(pre)); ok {
		if i := bytes.IndexByte(rest, '"'); i >= 0 && bytes.HasPrefix(rest[i:], []byte(key)) {
			rest = rest[i+len(key):]
			n := 0
			for n < len(rest) && n < 19 && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			if n > 0 && n < len(rest) && (rest[n] == ',' || rest[n] == '}') && !mayHaveSeq(rest[n:]) {
				if v, err := strconv.ParseInt(string(rest[:n]), 10, 64); err == nil {
					return v, true
				}
			}
		}
	}
	var l struct {
		Seq int64 `json:"seq"`
	}
	if json.Unmarshal(data, &l) != nil {
		return 0, false
	}
	return l.Seq, true
}

// mayHaveSeq reports whether b might hold another "seq" key: encoding/json
// matches keys case-insensitively (with Unicode folding), and escapes could
// spell one, so any escape or non-ASCII byte counts.
func mayHaveSeq(b []byte) bool {
	for i, c := range b {
		if c == '\\' || c >= 0x80 {
			return true
		}
		if c == '"' && i+4 <= len(b) && bytes.EqualFold(b[i+1:i+4], []byte("seq")) {
			return true
		}
	}
	return false
}

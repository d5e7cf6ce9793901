package sse

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// Config tunes SSE streams (api's StreamConfig: trip and ops streams, and
// the long-poll's drain). Zero values are the documented defaults.
type Config struct {
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

// WithDefaults fills the zero fields with their defaults.
func (c Config) WithDefaults() Config {
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

// Writer writes SSE frames into a buffer flushed once per batch: the
// writer of streams served by their handler (api's ops streams).
type Writer struct {
	w   *echo.Response
	rc  *http.ResponseController
	buf bytes.Buffer
	to  time.Duration
}

// NewWriter is a Writer of the response of c, each flush bounded by
// timeout.
func NewWriter(c echo.Context, timeout time.Duration) *Writer {
	return &Writer{w: c.Response(), rc: http.NewResponseController(c.Response()), to: timeout}
}

// Frame appends one event. id "" omits the id line (live-only events and
// comments must not move the client's Last-Event-ID).
func (w *Writer) Frame(id, event string, data []byte) { appendFrame(&w.buf, id, event, data) }

// Retry appends a reconnect delay hint.
func (w *Writer) Retry(d time.Duration) { appendRetry(&w.buf, d) }

// Comment appends a comment line (heartbeats).
func (w *Writer) Comment(s string) { appendComment(&w.buf, s) }

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

// Flush writes the frames appended since the last flush.
func (w *Writer) Flush() error {
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

// SetHeaders sets the headers of an event stream: its type, no caching
// or transforming by proxies, no buffering by nginx.
func SetHeaders(h http.Header) {
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
}

// Envelope is the frame data of events that are not feed events (snapshot,
// reset, token_expired, ops frames): the event envelope around Data.
type Envelope struct {
	ID    string    `json:"id,omitempty"`
	Type  string    `json:"type"`
	Topic string    `json:"topic"`
	TS    time.Time `json:"ts"`
	Data  any       `json:"data"`
}

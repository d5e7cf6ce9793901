package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
)

// metricValue reads one sample of the server's /metrics ("" when absent).
func metricValue(t *testing.T, e *tripEnv, series string) string {
	t.Helper()
	resp, err := http.Get(e.ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// A trip SSE stream on HTTP/1.1 takes its connection over from net/http:
// the client still gets the middlewares' headers (request id, CORS,
// security), the snapshot and live events, over a body delimited by the
// connection's close; the stream's counts go back to 0 once a heartbeat
// notices the client went; the request is logged and counted as a 200.
func TestSSETakeOver(t *testing.T) {
	const origin = "https://rider.example.com"
	e := newSecEnv(t, api.Config{CORSOrigins: []string{origin}, Limits: unlimited,
		Stream: api.StreamConfig{Heartbeat: 100 * time.Millisecond}}, nil, 1)[0]
	snap, rc := e.newTrip(t)
	c := openSSE(t, e.eventsURL(snap.Trip.ID), rc.Token(), map[string]string{"Origin": origin, "X-Request-Id": "take-over-1"})
	h := c.resp.Header
	for k, want := range map[string]string{
		"Content-Type":                  "text/event-stream; charset=utf-8",
		"Cache-Control":                 "no-cache, no-transform",
		"X-Accel-Buffering":             "no",
		"X-Request-Id":                  "take-over-1",
		"Access-Control-Allow-Origin":   origin,
		"Access-Control-Expose-Headers": "",
		"X-Content-Type-Options":        "nosniff",
	} {
		if got := h.Get(k); got != want && (want != "" || got == "") {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if c.resp.StatusCode != 200 || !c.resp.Close || len(c.resp.TransferEncoding) != 0 || c.resp.ContentLength != -1 {
		t.Fatalf("status %d, close %v, transfer encoding %v, length %d: want 200 delimited by the connection's close",
			c.resp.StatusCode, c.resp.Close, c.resp.TransferEncoding, c.resp.ContentLength)
	}
	if f, err := c.next(); err != nil || f.retry != "2000" {
		t.Fatalf("first block %+v (%v), want retry: 2000", f, err)
	}
	if f := c.nextEvent(t, 5*time.Second); f.event != "snapshot" || !f.hasID || !strings.Contains(f.data, snap.Trip.ID) {
		t.Fatalf("first event %+v, want the snapshot", f)
	}
	if _, err := rc.SendMessage(context.Background(), snap.Trip.ID, "m1", "at the north entrance"); err != nil {
		t.Fatal(err)
	}
	if f := c.nextEvent(t, 5*time.Second); f.event != "trip.message" || !f.hasID {
		t.Fatalf("live event %+v, want trip.message with an id", f)
	}
	if n := e.srv.OpenStreams(); n != 1 {
		t.Fatalf("open streams %d, want 1", n)
	}
	if v := metricValue(t, e, "hextrack_sse_streams"); v != "1" {
		t.Fatalf("hextrack_sse_streams %q, want 1", v)
	}
	if v := metricValue(t, e, `hextrack_http_requests_total{method="GET",route="/v1/trips/:id/events",status="200"}`); v != "1" {
		t.Fatalf("requests counted as 200: %q, want 1", v)
	}
	c.resp.Body.Close() // the client goes; the next heartbeat notices
	waitFor(t, 3*time.Second, "the streams' counts at 0 after the client went", func() (bool, string) {
		n, v := e.srv.OpenStreams(), metricValue(t, e, "hextrack_sse_streams")
		return n == 0 && v == "0", fmt.Sprintf("open streams %d, hextrack_sse_streams %s", n, v)
	})
}

// Close ends every taken-over stream at once (http.Server.Shutdown knows
// nothing of them) and refuses new ones; WaitStreams returns once they are
// gone.
func TestSSECloseEndsStreams(t *testing.T) {
	e := newTripEnv(t, api.StreamConfig{})
	snap, rc := e.newTrip(t)
	var conns []*sseConn
	for range 3 {
		c := openSSE(t, e.eventsURL(snap.Trip.ID), rc.Token(), nil)
		if f := c.nextEvent(t, 5*time.Second); f.event != "snapshot" {
			t.Fatalf("first event %+v, want snapshot", f)
		}
		conns = append(conns, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.srv.WaitStreams(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitStreams with 3 open streams: %v, want a deadline error", err)
	}
	start := time.Now()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	// At once: well before the next heartbeat (15 s), which is what would
	// otherwise end them; the bound leaves room for a loaded machine.
	for i, c := range conns {
		if err := readToEnd(c, 5*time.Second); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("streams ended %v after Close, want at once (before the 15 s heartbeat)", d)
	}
	if n := e.srv.OpenStreams(); n != 0 {
		t.Fatalf("open streams %d after Close, want 0", n)
	}
	if err := e.srv.WaitStreams(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := call(t, "GET", e.eventsURL(snap.Trip.ID), rc.Token(), ""); r.status != 200 {
		t.Fatalf("long-poll after Close: %d, want 200 (only streams end)", r.status)
	}
	late := openSSE(t, e.eventsURL(snap.Trip.ID), rc.Token(), nil)
	if late.resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stream after Close: %d, want 503", late.resp.StatusCode)
	}
}

// readToEnd reads the stream's remaining blocks until it ends; an error if
// it does not end within d.
func readToEnd(c *sseConn, d time.Duration) error {
	done := make(chan error, 1)
	go func() {
		for {
			if f, err := c.next(); err != nil {
				done <- nil
				return
			} else if f.event != "" {
				done <- errors.New("unexpected event " + f.event)
				return
			}
		}
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		c.resp.Body.Close()
		return errors.New("stream still open")
	}
}

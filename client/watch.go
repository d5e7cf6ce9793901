package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Transports a Stream follows a trip over.
const (
	TransportSSE      = "sse"
	TransportLongPoll = "longpoll"
)

// WatchConfig tunes how WatchTrip chooses between SSE and long-polling.
// Zero values are the documented defaults.
type WatchConfig struct {
	// FirstByte: an SSE response that delivers no byte within this long
	// after the request went out is being held by a buffering proxy (the
	// server writes its retry: hint at once, before anything else); the
	// stream falls back to long-polling at once. Zero: 5s.
	FirstByte time.Duration
	// Idle: a stream that delivered bytes and then nothing for this long
	// has stalled (the server writes a heartbeat comment after 15s of
	// silence); it is dropped, opened again and counted as a failure.
	// Zero: 45s.
	Idle time.Duration
	// Failures: consecutive SSE attempts that fail (no connection, an
	// answer 5xx without Retry-After such as a proxy's 502, a stream cut
	// before its first byte or stalled) before the stream falls back to
	// long-polling. A 429 or 503 with Retry-After is the server pacing
	// reconnects: it is honoured and not counted. Zero: 3.
	Failures int
	// RetrySSE: how long the stream long-polls before trying SSE again; a
	// try whose first byte does not come within FirstByte leaves it on
	// long-polling for another RetrySSE. Zero: 1m.
	RetrySSE time.Duration
	// PollWait: how long one long-poll waits for events (the server allows
	// up to 30s). Zero: 25s, or half the *http.Client's Timeout when that
	// is shorter than 30s.
	PollWait time.Duration
	// SSEOnly turns the fallback off: the stream reconnects over SSE only,
	// as a browser's EventSource does.
	SSEOnly bool
}

func (w WatchConfig) withDefaults(hc *http.Client) WatchConfig {
	if w.FirstByte <= 0 {
		w.FirstByte = 5 * time.Second
	}
	if w.Idle <= 0 {
		w.Idle = 45 * time.Second
	}
	if w.Failures <= 0 {
		w.Failures = 3
	}
	if w.RetrySSE <= 0 {
		w.RetrySSE = time.Minute
	}
	if w.PollWait <= 0 {
		w.PollWait = 25 * time.Second
		if hc.Timeout > 0 && hc.Timeout < 30*time.Second {
			w.PollWait = hc.Timeout / 2
		}
	}
	return w
}

// WithWatch returns a copy of c whose WatchTrip streams use cfg.
func (c *Client) WithWatch(cfg WatchConfig) *Client {
	cp := *c
	cp.watch = cfg
	return &cp
}

// Frame is one event of a trip stream. Snapshot is set for "snapshot" and
// "reset" events; Event is the envelope of the others. Transport says how
// it arrived (TransportSSE or TransportLongPoll).
type Frame struct {
	ID        string
	Type      string
	Event     Event
	Snapshot  *Snapshot
	Transport string
}

// Stream follows a trip's feed and keeps following it by itself: over SSE,
// reconnecting after drops and resuming after the last ID it saw
// (Last-Event-ID) after the server's retry: delay, like a browser's
// EventSource; over long-polling (TripEvents after the same ID) when an
// SSE stream can't be held, and back to SSE after a while (see
// WatchConfig). Either way each durable event is delivered once, in
// order. Read frames from C; it is closed when ctx ends or the server
// refuses the stream (Err tells why).
type Stream struct {
	C          <-chan Frame
	c          chan Frame
	err        atomic.Value
	reconnects atomic.Int64
	switches   atomic.Int64
	lastID     atomic.Value
	transport  atomic.Value
}

// Err is why the stream ended (nil when its context was cancelled).
func (s *Stream) Err() error {
	e, _ := s.err.Load().(error)
	return e
}

// Reconnects counts reconnections so far: SSE streams opened again and
// switches of transport.
func (s *Stream) Reconnects() int { return int(s.reconnects.Load()) }

// Switches counts switches between SSE and long-polling so far.
func (s *Stream) Switches() int { return int(s.switches.Load()) }

// Transport is how the stream follows the trip now: TransportSSE or
// TransportLongPoll.
func (s *Stream) Transport() string {
	v, _ := s.transport.Load().(string)
	return v
}

// LastID is the last event ID delivered on C. It moves just after the
// frame is received, so a resume from it may repeat a frame, never skip
// one.
func (s *Stream) LastID() string {
	v, _ := s.lastID.Load().(string)
	return v
}

// WatchTrip follows the trip's feed, resuming after lastID ("" for a fresh
// start, which begins with a snapshot). It starts on SSE and falls back to
// long-polling when a stream can't be held (see WatchConfig and
// WithWatch). It goes on until ctx is done; an HTTP error answer (401,
// 403, 404) or an error event from the server ends it.
func (c *Client) WatchTrip(ctx context.Context, id, lastID string) *Stream {
	ch := make(chan Frame, 64)
	s := &Stream{C: ch, c: ch}
	s.lastID.Store(lastID)
	s.transport.Store(TransportSSE)
	hc := *c.http
	hc.Timeout = 0 // a stream lives long; its deadlines are WatchConfig's
	w := &watch{s: s, c: c, id: id, cfg: c.watch.withDefaults(c.http), hc: &hc, retry: time.Second, out: delivery{s: s}}
	go w.run(ctx)
	return s
}

// watch is the state of one Stream's goroutine.
type watch struct {
	s   *Stream
	c   *Client
	id  string
	cfg WatchConfig
	hc  *http.Client // c's without its timeout
	// retry is the server's reconnect hint; after its Retry-After for the
	// next attempt.
	retry, after time.Duration
	failures     int  // consecutive failed SSE attempts
	pollErrs     int  // consecutive failed long-polls
	snapped      bool // a snapshot without a feed position was delivered
	out          delivery
}

// outcome is how one SSE attempt ended.
type outcome int

const (
	held     outcome = iota // bytes came, then the stream ended: reconnect
	buffered                // no byte within FirstByte: fall back now
	failed                  // counts towards Failures
	paced                   // the server said when to come back
)

func (w *watch) run(ctx context.Context) {
	defer close(w.s.c)
	err := w.loop(ctx)
	if err != nil && ctx.Err() == nil {
		w.s.err.Store(err)
	}
}

func (w *watch) loop(ctx context.Context) error {
	var pollSince time.Time
	for first := true; ctx.Err() == nil; first = false {
		if w.s.Transport() == TransportLongPoll {
			if time.Since(pollSince) >= w.cfg.RetrySSE {
				// Try SSE again: the stream becomes SSE with its first byte.
				if _, err := w.attempt(ctx); err != nil {
					return err
				}
				if w.s.Transport() == TransportLongPoll {
					pollSince = time.Now() // not held: another RetrySSE on long-poll
					w.after = 0
				}
				continue
			}
			if err := w.poll(ctx); err != nil {
				return err
			}
			continue
		}
		if !first {
			w.s.reconnects.Add(1)
			wait := w.retry
			if w.after > 0 {
				wait, w.after = w.after, 0
			}
			if !sleep(ctx, wait) {
				return nil
			}
		}
		out, err := w.attempt(ctx)
		if err != nil {
			return err
		}
		if w.cfg.SSEOnly {
			continue
		}
		if out == failed {
			w.failures++
		}
		if out == buffered || w.failures >= w.cfg.Failures {
			w.failures = 0
			w.switchTo(TransportLongPoll)
			pollSince = time.Now()
		}
	}
	return nil
}

func (w *watch) switchTo(t string) {
	if w.s.transport.Swap(t) != t {
		w.s.switches.Add(1)
		w.s.reconnects.Add(1)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// delivery hands a Stream's frames to its reader, in order, whichever
// transport they came over.
type delivery struct {
	s *Stream
	// The latest location delivered: a location of the same driver not
	// newer is dropped (latest wins, across reconnects and switches).
	locDriver string
	locSeq    int64
}

// emit delivers f; lastID moves only once it is delivered.
func (d *delivery) emit(ctx context.Context, f Frame, hasID bool) bool {
	switch f.Type {
	case "snapshot", "reset":
		if f.Snapshot != nil && f.Snapshot.Location != nil {
			d.locDriver, d.locSeq = f.Snapshot.Location.DriverID, f.Snapshot.Location.Seq
		}
	case "trip.location":
		var l TripLocation
		if !hasID && json.Unmarshal(f.Event.Data, &l) == nil {
			if l.DriverID == d.locDriver && l.Seq <= d.locSeq {
				return true // not newer than the one delivered
			}
			d.locDriver, d.locSeq = l.DriverID, l.Seq
		}
	}
	select {
	case d.s.c <- f:
	case <-ctx.Done():
		return false
	}
	if hasID {
		d.s.lastID.Store(f.ID)
	}
	return true
}

// attempt opens one SSE stream and reads it until it ends. The first byte
// makes the stream's transport SSE. err is non-nil only when the stream
// must end (an HTTP refusal, an error event).
func (w *watch) attempt(ctx context.Context) (outcome, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got, late atomic.Bool
	timer := time.AfterFunc(w.cfg.FirstByte, func() { late.Store(true); cancel() })
	defer timer.Stop()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, w.c.base+tripPath(w.id, "events"), nil)
	if err != nil {
		return failed, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if w.c.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.c.token)
	}
	if last := w.s.LastID(); last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		if late.Load() && ctx.Err() == nil {
			return buffered, nil
		}
		return failed, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			// Overloaded or rate limited: come back when told to (a
			// reconnect storm is spread by the server's jitter).
			if sec, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && sec > 0 {
				w.after = time.Duration(sec) * time.Second
				return paced, nil
			}
			return failed, nil
		}
		return failed, fmt.Errorf("hextrack: stream %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	body := &watchdog{r: resp.Body, first: func() {
		got.Store(true)
		if w.s.Transport() != TransportSSE {
			w.switchTo(TransportSSE)
		}
		w.failures = 0
	}, timer: timer, idle: w.cfg.Idle}
	if err := w.read(actx, body); err != nil {
		return failed, err
	}
	switch {
	case !got.Load() && late.Load():
		return buffered, nil
	case !got.Load() || late.Load():
		return failed, nil // cut before its first byte, or stalled
	}
	return held, nil
}

// watchdog wraps an SSE body: its first byte calls first, and every read
// with bytes pushes the timer (which cancels the request) Idle ahead.
type watchdog struct {
	r     io.Reader
	first func()
	timer *time.Timer
	idle  time.Duration
	seen  bool
}

func (d *watchdog) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if n > 0 {
		if !d.seen {
			d.seen = true
			d.first()
		}
		d.timer.Reset(d.idle)
	}
	return n, err
}

// read parses frames until the body ends. It returns a non-nil error only
// when the stream must not reconnect (ctx done returns nil).
func (w *watch) read(ctx context.Context, body io.Reader) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var id, typ string
	var data strings.Builder
	hasID := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data.Len() > 0 || typ != "" {
				raw := []byte(data.String())
				f := sseFrame(id, typ, raw)
				if !w.out.emit(ctx, f, hasID) {
					return nil
				}
				if f.Type == "error" {
					return fmt.Errorf("hextrack: stream ended by the server: %s", raw)
				}
			}
			id, typ, hasID = "", "", false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id, hasID = value, true
		case "event":
			typ = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms >= 0 {
				w.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return nil
}

// sseFrame decodes one SSE event (its id, event and data fields).
func sseFrame(id, typ string, raw []byte) Frame {
	f := Frame{ID: id, Type: typ, Transport: TransportSSE}
	if f.Type == "" {
		f.Type = "message"
	}
	switch f.Type {
	case "snapshot", "reset":
		var env struct {
			Data Snapshot `json:"data"`
		}
		if json.Unmarshal(raw, &env) == nil {
			f.Snapshot = &env.Data
		}
	default:
		_ = json.Unmarshal(raw, &f.Event)
	}
	return f
}

// poll makes one long-poll after the last ID delivered (after a snapshot
// first when there is none) and delivers what it got as frames. err is
// non-nil only when the stream must end.
func (w *watch) poll(ctx context.Context) error {
	after := w.s.LastID()
	if after == "" && !w.snapped {
		p, err := w.c.GetTrip(ctx, w.id, "")
		if err != nil {
			return w.pollFailed(ctx, err)
		}
		snap := p.Snapshot
		// Without a position (no feed yet) the polls go on from the
		// oldest retained event.
		w.snapped = snap.FeedPosition == ""
		w.out.emit(ctx, Frame{ID: snap.FeedPosition, Type: "snapshot", Snapshot: &snap, Transport: TransportLongPoll}, snap.FeedPosition != "")
		return nil
	}
	page, err := w.c.TripEvents(ctx, w.id, after, 0, w.cfg.PollWait)
	if err != nil {
		if snap, ok := GoneSnapshot(err); ok {
			// Continuity can't be proven: a fresh snapshot, as SSE's reset.
			w.out.emit(ctx, Frame{ID: snap.FeedPosition, Type: "reset", Snapshot: &snap, Transport: TransportLongPoll}, true)
			return nil
		}
		return w.pollFailed(ctx, err)
	}
	w.pollErrs = 0
	for _, e := range page.Events {
		if !w.out.emit(ctx, Frame{ID: e.ID, Type: e.Type, Event: e, Transport: TransportLongPoll}, true) {
			return nil
		}
	}
	if l := page.Location; l != nil {
		loc := *l
		loc.TripID = w.id
		data, _ := json.Marshal(loc)
		w.out.emit(ctx, Frame{Type: "trip.location", Transport: TransportLongPoll,
			Event: Event{Type: "trip.location", Topic: "trip:" + w.id, TS: time.Now().UTC(), Data: data}}, false)
	}
	return nil
}

// pollFailed waits before the next poll after a retryable error (network,
// 5xx, 429; doubling from 500ms up to 8s) and returns the others.
func (w *watch) pollFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	var ae *Error
	if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
		return err
	}
	w.pollErrs++
	sleep(ctx, time.Duration(250<<min(w.pollErrs, 5))*time.Millisecond)
	return nil
}

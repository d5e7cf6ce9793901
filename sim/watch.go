package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/hextrack/hextrack/api/client"
)

// Rider transports.
const (
	RiderSSE      = "sse"
	RiderLongPoll = "longpoll"
	RiderPoll     = "poll"
)

// ItemKind says what a watcher delivered.
type ItemKind int

// Kinds of Item.
const (
	ItemSnapshot ItemKind = iota // a full state (first connect, a poll answer)
	ItemReset                    // continuity lost: a fresh snapshot
	ItemEvent                    // a durable event
	ItemLocation                 // a live trip.location
)

// Item is one thing a watcher delivers.
type Item struct {
	Kind     ItemKind
	Event    Event     // ItemEvent, ItemLocation
	Snapshot *Snapshot // ItemSnapshot, ItemReset
	Location *Location // ItemLocation
	At       time.Time // when it arrived
}

// Watcher follows one trip over a rider transport until its context ends
// or fn returns false. It reconnects and resumes by the last durable ID on
// its own; every reconnect is counted in Reconnects.
type Watcher struct {
	Client    *client.Client
	Stream    *http.Client // for SSE; nil: Client's transport without a timeout
	Transport string       // RiderSSE (default), RiderLongPoll, RiderPoll
	Trip      string
	// Reconnected is called on every reconnect after the first connect.
	Reconnected func(err error)
}

// Run delivers items to fn.
func (w *Watcher) Run(ctx context.Context, fn func(Item) bool) error {
	switch w.Transport {
	case RiderLongPoll:
		return w.longPoll(ctx, fn)
	case RiderPoll:
		return w.poll(ctx, fn)
	case RiderSSE, "":
		return w.sse(ctx, fn)
	}
	return fmt.Errorf("sim: unknown rider transport %q (sse, longpoll, poll)", w.Transport)
}

var errStop = errors.New("stop")

func (w *Watcher) backoff(ctx context.Context, attempt int, err error) bool {
	if w.Reconnected != nil {
		w.Reconnected(err)
	}
	d := time.Duration(100*(1<<min(attempt, 5))) * time.Millisecond
	d += time.Duration(rand.Int64N(int64(d)/2 + 1))
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (w *Watcher) sse(ctx context.Context, fn func(Item) bool) error {
	hc := w.Stream
	if hc == nil {
		hc = &http.Client{Transport: w.Client.HTTPClient().Transport}
	}
	last := ""
	for attempt := 0; ; attempt++ {
		err := w.sseOnce(ctx, hc, &last, fn)
		if errors.Is(err, errStop) || ctx.Err() != nil {
			return nil
		}
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != 429 {
			return err // bad token, no such trip: retrying won't help
		}
		if err == nil {
			attempt = 0 // a clean end (server drain): resume promptly
		}
		if !w.backoff(ctx, attempt, err) {
			return nil
		}
	}
}

func (w *Watcher) sseOnce(ctx context.Context, hc *http.Client, last *string, fn func(Item) bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.Client.BaseURL()+tripPath(w.Trip)+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+w.Client.Token())
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(b, &eb)
		return &client.Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return ReadSSE(resp.Body, func(f Frame) error {
		it, ok, err := frameItem(f)
		if err != nil || !ok {
			return err
		}
		if f.ID != "" {
			*last = f.ID
		}
		if !fn(it) {
			return errStop
		}
		return nil
	})
}

// frameItem decodes an SSE frame's envelope.
func frameItem(f Frame) (Item, bool, error) {
	it := Item{At: time.Now()}
	switch f.Event {
	case "snapshot", "reset":
		var env struct {
			Data Snapshot `json:"data"`
		}
		if err := json.Unmarshal([]byte(f.Data), &env); err != nil {
			return it, false, fmt.Errorf("sim: bad %s frame: %w", f.Event, err)
		}
		if env.Data.FeedPosition == "" {
			env.Data.FeedPosition = f.ID
		}
		it.Kind, it.Snapshot = ItemSnapshot, &env.Data
		if f.Event == "reset" {
			it.Kind = ItemReset
		}
		return it, true, nil
	case "error":
		return it, false, fmt.Errorf("sim: stream error: %s", f.Data)
	}
	if err := json.Unmarshal([]byte(f.Data), &it.Event); err != nil {
		return it, false, fmt.Errorf("sim: bad %s frame: %w", f.Event, err)
	}
	if it.Event.Type == "trip.location" {
		var l Location
		if json.Unmarshal(it.Event.Data, &l) == nil {
			it.Kind, it.Location = ItemLocation, &l
			return it, true, nil
		}
		return it, false, nil
	}
	if it.Event.ID == "" {
		return it, false, nil // some other live-only message
	}
	it.Kind = ItemEvent
	return it, true, nil
}

// Frame is one Server-Sent Event.
type Frame struct {
	ID, Event, Data string
	Retry           time.Duration
}

// ReadSSE parses a text/event-stream and calls fn for every dispatched
// event (comments and retry-only blocks are skipped). Lines longer than
// 1 MB are an error. It returns fn's first error, or the read error.
func ReadSSE(r io.Reader, fn func(Frame) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var f Frame
	var data strings.Builder
	hasData := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasData {
				f.Data = data.String()
				if err := fn(f); err != nil {
					return err
				}
			}
			f, hasData = Frame{}, false
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, val, _ := strings.Cut(line, ":")
		val = strings.TrimPrefix(val, " ")
		switch field {
		case "id":
			f.ID = val
		case "event":
			f.Event = val
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(val)
			hasData = true
		case "retry":
			var ms int64
			if _, err := fmt.Sscan(val, &ms); err == nil {
				f.Retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

func (w *Watcher) longPoll(ctx context.Context, fn func(Item) bool) error {
	snap, err := GetTrip(ctx, w.Client, w.Trip)
	if err != nil {
		return err
	}
	if !fn(Item{Kind: ItemSnapshot, Snapshot: &snap, At: time.Now()}) {
		return nil
	}
	after := snap.FeedPosition
	var locSeq int64
	if snap.Location != nil {
		locSeq = snap.Location.Seq
	}
	for attempt := 0; ctx.Err() == nil; {
		p, err := PollEvents(ctx, w.Client, w.Trip, after, 100, 25*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ae *client.Error
			if errors.As(err, &ae) && ae.Status == http.StatusGone {
				var s Snapshot
				if json.Unmarshal(ae.Details, &s) == nil && s.FeedPosition != "" {
					after = s.FeedPosition
					if !fn(Item{Kind: ItemReset, Snapshot: &s, At: time.Now()}) {
						return nil
					}
					continue
				}
			}
			if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != 429 {
				return err
			}
			attempt++
			if !w.backoff(ctx, attempt, err) {
				return nil
			}
			continue
		}
		attempt = 0
		now := time.Now()
		for _, e := range p.Events {
			if !fn(Item{Kind: ItemEvent, Event: e, At: now}) {
				return nil
			}
		}
		if p.Next != "" {
			after = p.Next
		}
		if l := p.Location; l != nil && l.Seq > locSeq {
			locSeq = l.Seq
			if !fn(Item{Kind: ItemLocation, Location: l, At: now}) {
				return nil
			}
		}
	}
	return nil
}

func (w *Watcher) poll(ctx context.Context, fn func(Item) bool) error {
	etag := ""
	for attempt := 0; ctx.Err() == nil; {
		var s Snapshot
		h := http.Header{}
		if etag != "" {
			h.Set("If-None-Match", etag)
		}
		hdr, status, err := w.Client.Do(ctx, http.MethodGet, tripPath(w.Trip), nil, &s, h)
		wait := 2 * time.Second
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ae *client.Error
			if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != 429 {
				return err
			}
			attempt++
			if !w.backoff(ctx, attempt, err) {
				return nil
			}
			continue
		}
		attempt = 0
		if status == http.StatusOK {
			etag = hdr.Get("ETag")
			now := time.Now()
			if !fn(Item{Kind: ItemSnapshot, Snapshot: &s, At: now}) {
				return nil
			}
			if s.Location != nil && !fn(Item{Kind: ItemLocation, Location: s.Location, At: now}) {
				return nil
			}
		}
		if v := hdr.Get("X-Poll-Interval"); v != "" {
			var n int
			if _, err := fmt.Sscan(v, &n); err == nil && n > 0 {
				wait = time.Duration(n) * time.Second
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

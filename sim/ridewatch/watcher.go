package ridewatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/hextrack/hextrack/client"
)

// Rider transports.
const (
	SSE      = "sse"
	LongPoll = "longpoll"
	Poll     = "poll"
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
	Event    client.Event         // ItemEvent, ItemLocation
	Snapshot *client.Snapshot     // ItemSnapshot, ItemReset
	Location *client.TripLocation // ItemLocation
	At       time.Time            // when it arrived
}

// Watcher follows one trip over a rider transport, speaking only
// the client package: SSE is client.WatchTrip (which reconnects by itself,
// resuming after the last event ID), long-poll client.TripEvents, poll
// client.GetTrip with its ETag. It runs until its context ends or fn
// returns false; every reconnect is reported to Reconnected.
type Watcher struct {
	Client    *client.Client
	Transport string // SSE (default), LongPoll, Poll
	Trip      string
	// Reconnected is called on every reconnect after the first connect
	// (err: why, when known).
	Reconnected func(err error)
}

// Run delivers items to fn.
func (w *Watcher) Run(ctx context.Context, fn func(Item) bool) error {
	switch w.Transport {
	case LongPoll:
		return w.longPoll(ctx, fn)
	case Poll:
		return w.poll(ctx, fn)
	case SSE, "":
		return w.sse(ctx, fn)
	}
	return fmt.Errorf("ridewatch: unknown rider transport %q (sse, longpoll, poll)", w.Transport)
}

func (w *Watcher) reconnected(err error) {
	if w.Reconnected != nil {
		w.Reconnected(err)
	}
}

// backoff waits before retry attempt (jittered, doubling up to ~5 s).
func (w *Watcher) backoff(ctx context.Context, attempt int, err error) bool {
	w.reconnected(err)
	d := time.Duration(100*(1<<min(attempt, 5))) * time.Millisecond
	d += rand.N(d/2 + 1)
	return sleep(ctx, d)
}

// sse follows the trip's SSE stream. client.WatchTrip resumes by itself
// after drops and 5xx; when it gives up (an HTTP error answer such as a
// 429 from the server's stream admission, or the server ending the
// stream) the watcher opens it again after the last ID it saw, a few
// times, before reporting the error.
func (w *Watcher) sse(ctx context.Context, fn func(Item) bool) error {
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	last := ""
	for attempt := 0; ; attempt++ {
		s := w.Client.WatchTrip(sctx, w.Trip, last)
		reopened := attempt > 0 || last != ""
		seen := 0
		for f := range s.C {
			for ; seen < s.Reconnects(); seen++ {
				w.reconnected(nil)
			}
			it, ok := frameItem(f)
			if !ok {
				continue
			}
			if reopened && it.Kind == ItemSnapshot {
				// A fresh snapshot on a stream opened again without a
				// resume point: continuity is not proven, like a reset.
				it.Kind = ItemReset
			}
			reopened, attempt = false, 0
			if !fn(it) {
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		err := s.Err()
		last = s.LastID()
		if attempt >= 5 {
			return err
		}
		if !w.backoff(ctx, attempt, err) {
			return nil
		}
	}
}

// frameItem turns an SSE frame into an Item; ok is false for frames the
// simulator does not follow (live-only messages other than locations).
func frameItem(f client.Frame) (Item, bool) {
	it := Item{At: time.Now()}
	switch f.Type {
	case "snapshot", "reset":
		if f.Snapshot == nil {
			return it, false
		}
		s := *f.Snapshot
		if s.FeedPosition == "" {
			s.FeedPosition = f.ID
		}
		it.Kind, it.Snapshot = ItemSnapshot, &s
		if f.Type == "reset" {
			it.Kind = ItemReset
		}
		return it, true
	}
	it.Event = f.Event
	if f.Event.Type == "trip.location" {
		var l client.TripLocation
		if json.Unmarshal(f.Event.Data, &l) != nil {
			return it, false
		}
		it.Kind, it.Location = ItemLocation, &l
		return it, true
	}
	if f.Event.ID == "" {
		return it, false
	}
	it.Kind = ItemEvent
	return it, true
}

// retryable: an error worth retrying (network, 5xx, 429), not a refusal.
func retryable(err error) bool {
	var ae *client.Error
	return !errors.As(err, &ae) || ae.Status >= 500 || ae.Status == http.StatusTooManyRequests
}

func (w *Watcher) longPoll(ctx context.Context, fn func(Item) bool) error {
	var snap client.Snapshot
	for attempt := 0; ; attempt++ {
		p, err := w.Client.GetTrip(ctx, w.Trip, "")
		if err == nil {
			snap = p.Snapshot
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if !retryable(err) {
			return err
		}
		if !w.backoff(ctx, attempt, err) {
			return nil
		}
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
		p, err := w.Client.TripEvents(ctx, w.Trip, after, 100, 25*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if s, ok := client.GoneSnapshot(err); ok && s.FeedPosition != "" {
				after = s.FeedPosition
				if !fn(Item{Kind: ItemReset, Snapshot: &s, At: time.Now()}) {
					return nil
				}
				continue
			}
			if !retryable(err) {
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
		p, err := w.Client.GetTrip(ctx, w.Trip, etag)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !retryable(err) {
				return err
			}
			attempt++
			if !w.backoff(ctx, attempt, err) {
				return nil
			}
			continue
		}
		attempt = 0
		if !p.NotModified {
			etag = p.ETag
			now := time.Now()
			s := p.Snapshot
			if !fn(Item{Kind: ItemSnapshot, Snapshot: &s, At: now}) {
				return nil
			}
			if s.Location != nil && !fn(Item{Kind: ItemLocation, Location: s.Location, At: now}) {
				return nil
			}
		}
		wait := p.Every
		if wait <= 0 {
			wait = 2 * time.Second
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
	return nil
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

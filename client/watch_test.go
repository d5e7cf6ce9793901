package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
)

// TestWatchFallsBackAfterFailures: SSE answers a proxy's 502 every time;
// after WatchConfig.Failures attempts the stream long-polls from the ID it
// was given, and each event arrives once, in order. (The buffering-proxy
// case runs against a real server: cmd/hextrack TestWatchFallsBackToLongPoll.)
func TestWatchFallsBackAfterFailures(t *testing.T) {
	var sse atomic.Int64
	evs := []client.Event{{ID: "1-1", Type: "trip.message"}, {ID: "1-2", Type: "trip.status"}, {ID: "2-0", Type: "trip.message"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") == "text/event-stream" {
			sse.Add(1)
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		after := r.URL.Query().Get("after")
		page := client.EventPage{Events: []client.Event{}, Next: after}
		for i, e := range evs {
			if e.ID == after && i+1 < len(evs) {
				page.Events, page.Next = evs[i+1:i+2], evs[i+1].ID // one per poll
			}
		}
		if len(page.Events) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
		_ = json.NewEncoder(w).Encode(page)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := client.New(srv.URL, "", nil).WithWatch(client.WatchConfig{Failures: 2, RetrySSE: time.Hour, PollWait: time.Second})
	s := c.WatchTrip(ctx, "t1", "1-1")
	for _, want := range evs[1:] {
		select {
		case f := <-s.C:
			if f.ID != want.ID || f.Type != want.Type || f.Transport != client.TransportLongPoll {
				t.Fatalf("got %s %s over %s, want %s %s over long-poll", f.ID, f.Type, f.Transport, want.ID, want.Type)
			}
		case <-ctx.Done():
			t.Fatalf("no frame %s; stream: %v, %d SSE attempts", want.ID, s.Err(), sse.Load())
		}
	}
	if n := sse.Load(); n != 2 {
		t.Fatalf("%d SSE attempts before the fallback, want 2", n)
	}
	// LastID moves just after the frame is taken (a resume from it may
	// repeat a frame, never skip one): it is the last one within moments.
	for deadline := time.Now().Add(2 * time.Second); s.LastID() != "2-0" && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if s.Transport() != client.TransportLongPoll || s.Switches() != 1 || s.LastID() != "2-0" {
		t.Fatalf("transport %s, switches %d, last ID %s", s.Transport(), s.Switches(), s.LastID())
	}
	// Nothing more: no duplicate of the last event.
	select {
	case f := <-s.C:
		t.Fatalf("extra frame %s %s", f.ID, f.Type)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestWatchSSEOnly: with the fallback off, failing SSE attempts keep
// reconnecting over SSE (a second apart, the client's default retry).
func TestWatchSSEOnly(t *testing.T) {
	var sse, polls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") == "text/event-stream" {
			sse.Add(1)
			http.Error(w, "bad gateway", http.StatusBadGateway) // a failure: would fall back at once
			return
		}
		polls.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := client.New(srv.URL, "", nil).WithWatch(client.WatchConfig{SSEOnly: true, Failures: 1})
	s := c.WatchTrip(ctx, "t1", "1-1")
	deadline := time.Now().Add(5 * time.Second)
	for sse.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	for range s.C {
	}
	if sse.Load() < 3 || polls.Load() != 0 || s.Switches() != 0 {
		t.Fatalf("%d SSE attempts, %d polls, %d switches", sse.Load(), polls.Load(), s.Switches())
	}
}

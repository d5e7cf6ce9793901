package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
)

// bufferingProxy is a reverse proxy that, while buffering is on, holds
// each response, headers and body, until the server ends it (a proxy with
// response buffering on, as nginx's default): an SSE stream never gets
// through, a long-poll answer does.
type bufferingProxy struct {
	rp        *httputil.ReverseProxy
	buffering atomic.Bool
	held      atomic.Int64 // SSE requests it held
}

func (p *bufferingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.buffering.Load() {
		p.rp.ServeHTTP(w, r)
		return
	}
	if r.Header.Get("Accept") == "text/event-stream" {
		p.held.Add(1)
	}
	rec := httptest.NewRecorder()
	p.rp.ServeHTTP(rec, r)
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// TestWatchFallsBackToLongPoll: a rider watches a trip through a proxy
// that buffers responses. The client's SSE stream gets no byte, so it
// long-polls; once the proxy stops buffering it goes back to SSE. Every
// chat message posted meanwhile arrives once, in order, and the durable
// event IDs only grow across both switches.
func TestWatchFallsBackToLongPoll(t *testing.T) {
	m := MustRunMain(t, realRedis(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	target, _ := url.Parse("http://" + m.Addr())
	proxy := &bufferingProxy{rp: httputil.NewSingleHostReverseProxy(target)}
	proxy.buffering.Store(true)
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)

	direct := client.New("http://"+m.Addr(), "", nil)
	rtok, err := direct.DevToken(ctx, "rider", "r_watch", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rider := direct.WithToken(rtok)
	snap, err := rider.CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	watcher := client.New(ps.URL, rtok, nil).WithWatch(client.WatchConfig{
		FirstByte: time.Second, RetrySSE: time.Second, PollWait: time.Second})
	s := watcher.WatchTrip(ctx, id, "")

	type got struct {
		id, text, via string
	}
	var msgs []got
	var lastID string
	// next reads frames until a chat message arrives (other durable events
	// of the trip, such as dispatch's, are checked for order and skipped).
	next := func() got {
		t.Helper()
		for {
			select {
			case f, ok := <-s.C:
				if !ok {
					t.Fatalf("stream ended: %v", s.Err())
				}
				if f.ID == "" {
					continue // live-only
				}
				if lastID != "" && cmpFeedID(f.ID, lastID) <= 0 {
					t.Fatalf("%s frame %s (%s) after %s: not in order or twice", f.Transport, f.ID, f.Type, lastID)
				}
				lastID = f.ID
				if f.Type != "trip.message" {
					continue
				}
				var m struct {
					Text string `json:"text"`
				}
				if err := json.Unmarshal(f.Event.Data, &m); err != nil {
					t.Fatal(err)
				}
				g := got{f.ID, m.Text, f.Transport}
				msgs = append(msgs, g)
				return g
			case <-ctx.Done():
				t.Fatalf("waiting for a message; got %+v, transport %s", msgs, s.Transport())
			}
		}
	}
	send := func(i int) {
		t.Helper()
		if _, err := rider.SendMessage(ctx, id, fmt.Sprintf("c%d", i), fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	f := <-s.C
	if f.Type != "snapshot" || f.Transport != client.TransportLongPoll || f.Snapshot == nil || f.Snapshot.Trip.ID != id {
		t.Fatalf("first frame: %s over %s (%+v), want a snapshot over long-poll", f.Type, f.Transport, f)
	}
	lastID = f.ID
	// On long-poll for longer than RetrySSE: the SSE retries, still held by
	// the proxy, leave it there.
	n := 0
	for start := time.Now(); time.Since(start) < 2500*time.Millisecond || proxy.held.Load() < 2; n++ {
		send(n)
		if g := next(); g.via != client.TransportLongPoll {
			t.Fatalf("message %d over %s while the proxy buffers", n, g.via)
		}
		time.Sleep(200 * time.Millisecond)
	}
	proxy.buffering.Store(false)
	// Back on SSE within RetrySSE (plus a poll's wait); messages keep
	// coming through the switch.
	for deadline := time.Now().Add(10 * time.Second); ; n++ {
		send(n)
		g := next()
		if g.via == client.TransportSSE {
			n++
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still on %s 10s after the proxy stopped buffering", s.Transport())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for range 3 {
		send(n)
		if g := next(); g.via != client.TransportSSE {
			t.Fatalf("message %d over %s after the switch back", n, g.via)
		}
		n++
	}
	if len(msgs) != n {
		t.Fatalf("got %d messages, sent %d: %+v", len(msgs), n, msgs)
	}
	for i, g := range msgs {
		if g.text != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d is %q: %+v", i, g.text, msgs)
		}
	}
	if sw := s.Switches(); sw != 2 {
		t.Fatalf("%d switches, want 2 (to long-poll and back)", sw)
	}
	if s.Transport() != client.TransportSSE {
		t.Fatalf("transport %s at the end", s.Transport())
	}
	via := map[string]int{}
	for _, g := range msgs {
		via[g.via]++
	}
	t.Logf("%d messages once and in order: %d over long-poll, %d over SSE; the proxy held %d SSE requests", len(msgs),
		via[client.TransportLongPoll], via[client.TransportSSE], proxy.held.Load())
}

// cmpFeedID orders feed IDs ("ms-seq").
func cmpFeedID(a, b string) int {
	var am, as, bm, bs int64
	_, _ = fmt.Sscanf(a, "%d-%d", &am, &as)
	_, _ = fmt.Sscanf(b, "%d-%d", &bm, &bs)
	return cmp.Or(cmp.Compare(am, bm), cmp.Compare(as, bs))
}

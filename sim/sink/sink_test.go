package sink_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/sim/sink"
)

var secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("a test secret of 32 bytes, 256b!"))

// sender signs and posts deliveries to a sink, as hextrack's deliverer does.
type sender struct {
	t    *testing.T
	url  string
	wh   *standardwebhooks.Webhook
	http *http.Client
}

func newSender(t *testing.T, url, secret string) *sender {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return &sender{t: t, url: url, wh: wh, http: &http.Client{}}
}

// event is a delivery body: the feed's envelope.
func event(trip, id, typ string) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "type": typ, "topic": "trip:" + trip, "trip": trip,
		"ts": time.Now().UTC(), "data": map[string]any{"status": "x"}})
	return b
}

// post sends body signed as webhook-id id at ts; it returns the status (0:
// no answer).
func (s *sender) post(id string, ts time.Time, body []byte, tamper func(h http.Header)) int {
	s.t.Helper()
	sig, err := s.wh.Sign(id, ts, body)
	if err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	if tamper != nil {
		tamper(req.Header)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// send delivers one event of trip.
func (s *sender) send(trip, id string) int {
	return s.post(id, time.Now(), event(trip, id, "trip.status"), nil)
}

func mustSink(t *testing.T, cfg sink.Config) (*sink.Sink, *httptest.Server) {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	k, err := sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(k)
	t.Cleanup(srv.Close)
	return k, srv
}

// TestCounters: each counter moves for its case and no other.
func TestCounters(t *testing.T) {
	k, srv := mustSink(t, sink.Config{})
	s := newSender(t, srv.URL, secret)
	for _, tc := range []struct {
		name   string
		status int
		do     func() int
	}{
		{"first of trip a", 204, func() int { return s.send("a", "1000-0") }},
		{"second of trip a", 204, func() int { return s.send("a", "1000-1") }},
		{"redelivery: a duplicate, not a reorder", 204, func() int { return s.send("a", "1000-0") }},
		{"third of trip a, numerically after -1", 204, func() int { return s.send("a", "1000-10") }},
		{"an earlier event after a later one: out of order", 204, func() int { return s.send("a", "1000-2") }},
		{"trip b orders on its own", 204, func() int { return s.send("b", "900-0") }},
		{"another secret", 401, func() int {
			return newSender(t, srv.URL, "whsec_"+base64.StdEncoding.EncodeToString([]byte("another"))).send("a", "2000-0")
		}},
		{"webhook-id changed after signing", 401, func() int {
			return s.post("2000-1", time.Now(), event("a", "2000-1", "trip.status"), func(h http.Header) { h.Set("webhook-id", "2000-2") })
		}},
		{"timestamp 10 min old", 401, func() int {
			return s.post("2000-3", time.Now().Add(-10*time.Minute), event("a", "2000-3", "trip.status"), nil)
		}},
		{"no signature", 401, func() int {
			return s.post("2000-4", time.Now(), event("a", "2000-4", "trip.status"), func(h http.Header) { h.Del("webhook-signature") })
		}},
		{"not JSON", 400, func() int { return s.post("2000-5", time.Now(), []byte("hello"), nil) }},
		{"id not <ms>-<seq>", 400, func() int { return s.post("x", time.Now(), event("a", "abc", "trip.status"), nil) }},
		{"webhook-id is not the event id", 204, func() int { return s.post("other", time.Now(), event("c", "5-0", "trip.status"), nil) }},
		{"webhook-id <topic>/<event id>", 204, func() int {
			return s.post("trip:c/6-0", time.Now(), event("c", "6-0", "trip.status"), nil)
		}},
		{"topic alone orders by trip", 204, func() int {
			b, _ := json.Marshal(map[string]any{"id": "7-0", "type": "trip.status", "topic": "trip:c", "ts": time.Now(), "data": nil})
			return s.post("trip:c/7-0", time.Now(), b, nil)
		}},
	} {
		if got := tc.do(); got != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.status)
		}
	}
	r := k.Report(context.Background())
	want := sink.Report{Received: 15, BadSignatures: 4, Malformed: 2, IDMismatch: 1, Delivered: 9, Unique: 8,
		Duplicates: 1, OutOfOrder: 1, Gaps: -1, Trips: 3}
	if !reportEqual(r, want) {
		t.Fatalf("report = %+v\nwant     %+v", r, want)
	}
	var out bytes.Buffer
	r.Write(&out)
	for _, w := range []string{"received 15", "unique 8", "duplicates 1", "out-of-order 1", "gaps unchecked", "bad signatures 4"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("printed report lacks %q:\n%s", w, out.String())
		}
	}
}

func reportEqual(a, b sink.Report) bool {
	a.GapIDs, b.GapIDs, a.HistoryErrors, b.HistoryErrors = nil, nil, nil, nil
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// history serves GET /v1/trips/{id}/events pages of 2 from fixed
// histories, as hextrack's long-poll does (read through the real client).
func history(t *testing.T, trips map[string][]client.Event) sink.History {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer hx_test" {
			http.Error(w, `{"error":{"code":"unauthorized","message":"no"}}`, http.StatusUnauthorized)
			return
		}
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/trips/"), "/events")
		evs, ok := trips[id]
		if !ok {
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"no trip"}}`)
			return
		}
		i := 0
		if a := r.URL.Query().Get("after"); a != "" {
			i = slices.IndexFunc(evs, func(e client.Event) bool { return e.ID == a }) + 1
		}
		page := evs[i:min(i+2, len(evs))]
		next := r.URL.Query().Get("after")
		if len(page) > 0 {
			next = page[len(page)-1].ID
		}
		_ = json.NewEncoder(w).Encode(client.EventPage{Events: page, Next: next})
	}))
	t.Cleanup(srv.Close)
	return sink.ServerHistory{C: client.New(srv.URL, "hx_test", nil)}
}

// TestGaps: an event of the trip's history (of the checked types) never
// delivered is a gap; other types and live events are not compared; a
// history that cannot be read is reported.
func TestGaps(t *testing.T) {
	h := history(t, map[string][]client.Event{
		"a": {{ID: "1-0", Type: "trip.status"}, {ID: "2-0", Type: "trip.eta"}, {ID: "3-0", Type: "trip.status"},
			{ID: "4-0", Type: "payment.status"}, {Type: "trip.location"}, {ID: "5-0", Type: "trip.status"}, {ID: "6-0", Type: "trip.status"}},
	})
	k, srv := mustSink(t, sink.Config{History: h, Types: []string{"trip.status", "payment.*"}})
	s := newSender(t, srv.URL, secret)
	for _, id := range []string{"1-0", "3-0", "6-0"} { // 4-0 and 5-0 never come; 2-0 is not of a checked type
		s.send("a", id)
	}
	s.send("gone", "1-0")
	r := k.Report(context.Background())
	if r.Gaps != 2 || !slices.Equal(r.GapIDs["a"], []string{"4-0", "5-0"}) || r.Checked != 1 || r.Trips != 2 || len(r.HistoryErrors) != 1 ||
		!strings.Contains(r.HistoryErrors[0], "gone") {
		t.Fatalf("report = %+v, want gaps 4-0 and 5-0 of trip a, trip gone's history not read", r)
	}
}

// TestFailShare: a sender retrying until 2xx delivers every event in order
// through a sink failing half the requests; the failures are about half.
func TestFailShare(t *testing.T) {
	k, srv := mustSink(t, sink.Config{Fail: 0.5, Seed: 7})
	s := newSender(t, srv.URL, secret)
	const n = 200
	for i := range n {
		id := fmt.Sprintf("100-%d", i)
		for s.send("a", id) != 204 {
		}
	}
	r := k.Report(context.Background())
	if r.Delivered != n || r.Unique != n || r.Duplicates != 0 || r.OutOfOrder != 0 || r.Failed+r.Delivered != r.Received ||
		r.Failed < n*6/10 || r.Failed > n*14/10 {
		t.Fatalf("report = %+v, want %d delivered in order and about as many failed", r, n)
	}
}

// TestFailFor: every request fails for FailFor from the first one, then
// none.
func TestFailFor(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	k, srv := mustSink(t, sink.Config{FailFor: 2 * time.Minute, Now: clock})
	s := newSender(t, srv.URL, secret)
	for _, step := range []struct {
		after  time.Duration
		status int
	}{{0, 500}, {time.Minute, 500}, {59 * time.Second, 500}, {time.Second, 204}, {time.Hour, 204}} {
		advance(step.after)
		if got := s.send("a", "1-0"); got != step.status {
			t.Fatalf("at +%v: %d, want %d", step.after, got, step.status)
		}
	}
	if r := k.Report(context.Background()); r.Failed != 3 || r.Delivered != 2 || r.Duplicates != 1 {
		t.Fatalf("report = %+v", r)
	}
}

// TestStall: a stalled request the sender gives up on is not delivered;
// one it waits for is.
func TestStall(t *testing.T) {
	k, srv := mustSink(t, sink.Config{Stall: 300 * time.Millisecond, StallShare: 1})
	s := newSender(t, srv.URL, secret)
	s.http.Timeout = 50 * time.Millisecond
	if got := s.send("a", "1-0"); got != 0 {
		t.Fatalf("a stalled request answered %d before the sender's timeout", got)
	}
	s.http.Timeout = 0
	if got := s.send("a", "1-0"); got != 204 {
		t.Fatalf("a stalled request the sender waited for: %d", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for k.Report(context.Background()).Abandoned != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the server sees the first request's cancellation
	}
	if r := k.Report(context.Background()); r.Stalled != 2 || r.Abandoned != 1 || r.Delivered != 1 || r.Duplicates != 0 {
		t.Fatalf("report = %+v, want 2 stalled, 1 abandoned, 1 delivered", r)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []sink.Config{{Secret: "plain"}, {Secret: "whsec_!!"}, {Secret: secret, Fail: 1.5}, {Secret: secret, StallShare: -1}} {
		if _, err := sink.New(c); err == nil {
			t.Errorf("New(%+v): no error", c)
		}
	}
}

// FuzzDelivery: any signed body is answered 204, 400 or 401 (an empty
// webhook-id), never a panic.
func FuzzDelivery(f *testing.F) {
	f.Add([]byte(`{"id":"1-0","type":"trip.status","trip":"a"}`), "1-0")
	f.Add([]byte(`{"id":"18446744073709551615-1","type":"x","topic":"ops"}`), "x")
	f.Add([]byte(`{"id":"","type":"","trip":""}`), "")
	f.Add([]byte(`[1,2]`), "1-0")
	k, err := sink.New(sink.Config{Secret: secret})
	if err != nil {
		f.Fatal(err)
	}
	wh, _ := standardwebhooks.NewWebhook(secret)
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		ts := time.Now()
		sig, _ := wh.Sign(id, ts, body)
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
		rec := httptest.NewRecorder()
		k.ServeHTTP(rec, req)
		if c := rec.Code; c != 204 && c != 400 && c != 401 {
			t.Fatalf("status %d for %q", c, body)
		}
	})
}

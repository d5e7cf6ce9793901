package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/payment"
	"github.com/hextrack/hextrack/payment/paymentredis"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"

	"github.com/hextrack/hextrack/api/tokens"
)

var (
	whOld = []byte("whsec_api_old_0123456789")
	whNew = []byte("whsec_api_new_0123456789")
)

// payEnv is an API server with trips and payments over the real test Redis;
// webhook secrets whNew and whOld (rotation).
type payEnv struct {
	srv   *api.Server
	ts    *httptest.Server
	trips *tripredis.Service
	pays  *paymentredis.Service
	hooks *paymentredis.Webhooks
	feed  *feedredis.Broker
	n     atomic.Int64
}

func newPayEnv(tb testing.TB) *payEnv {
	tb.Helper()
	rdb, prefix := redistest.MustOpen(tb)
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
	drivers := driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix})
	b := feedredis.New(rdb, feedredis.Config{MaxAge: 10 * time.Minute, Prefix: prefix})
	trips := tripredis.NewService(rdb, b, drivers, tripredis.Config{Prefix: prefix})
	pcfg := paymentredis.Config{GatewayURL: "http://gw.test", Secrets: [][]byte{whNew, whOld}, Prefix: prefix}
	pays, hooks := paymentredis.New(rdb, b, trips, pcfg), paymentredis.NewWebhooks(rdb, b, trips, pcfg)
	srv := api.New(api.Config{JWTSecret: []byte(secret), Dev: true},
		depsWith(newDeps(rdb, prefix, drivers, trips, b), func(d *api.Deps) { d.Payments, d.Webhooks = pays, hooks }))
	ts := httptest.NewServer(srv.Handler())
	tb.Cleanup(func() { ts.Close(); _ = b.Close() })
	return &payEnv{srv: srv, ts: ts, trips: trips, pays: pays, hooks: hooks, feed: b}
}

func (e *payEnv) tok(tb testing.TB, role, sub string) string {
	tb.Helper()
	t, err := e.srv.Auth().Mint(tokens.Request{Role: role, Sub: sub, TTL: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

type httpReply struct {
	status int
	header http.Header
	body   []byte
	code   string
}

func (e *payEnv) do(tb testing.TB, method, path, tok string, body []byte, hdr map[string]string) httpReply {
	tb.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, e.ts.URL+path, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &eb)
	return httpReply{resp.StatusCode, resp.Header, b, eb.Error.Code}
}

// pendingPayment creates an online delivery for a new rider and its
// payment over HTTP.
func (e *payEnv) pendingPayment(tb testing.TB) (payment.Payment, string) {
	tb.Helper()
	rid := fmt.Sprintf("r%d_%d", time.Now().UnixNano()%1e9, e.n.Add(1))
	rt := e.tok(tb, tokens.RoleRider, rid)
	r := e.do(tb, "POST", "/v1/trips", rt, []byte(`{"kind":"delivery","payment":"online","pickup":{"lat":52.52,"lng":13.405},"dropoff":{"lat":52.5,"lng":13.38}}`), nil)
	if r.status != 201 {
		tb.Fatalf("create trip: %d %s", r.status, r.body)
	}
	var snap trip.Snapshot
	_ = json.Unmarshal(r.body, &snap)
	if snap.Trip.Status != trip.StatusAwaitingPayment {
		tb.Fatalf("trip status %s", snap.Trip.Status)
	}
	r = e.do(tb, "POST", "/v1/trips/"+snap.Trip.ID+"/payment", rt, []byte(`{"return_path":"/?trip=`+snap.Trip.ID+`"}`), nil)
	if r.status != 201 {
		tb.Fatalf("create payment: %d %s", r.status, r.body)
	}
	var pay payment.Payment
	_ = json.Unmarshal(r.body, &pay)
	return pay, rt
}

func webhookBody(id, typ string, pay payment.Payment) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "type": typ, "created": time.Now().Unix(),
		"data": map[string]any{"payment_id": pay.ID, "amount": pay.Amount, "currency": pay.Currency}})
	return b
}

func (e *payEnv) webhook(tb testing.TB, sig string, body []byte) httpReply {
	tb.Helper()
	h := map[string]string{}
	if sig != "" {
		h[payment.SignatureHeader] = sig
	}
	return e.do(tb, "POST", "/v1/webhooks/payments", "", body, h)
}

// TestPaymentWebhookHTTP is the signature table over HTTP, then
// idempotency: every refusal changes nothing; the first valid event
// applies; its redelivery is 200 and changes nothing.
func TestPaymentWebhookHTTP(t *testing.T) {
	e := newPayEnv(t)
	pay, rt := e.pendingPayment(t)
	now := time.Now()
	body := webhookBody("evt_http_"+pay.ID[4:20], payment.WebhookSucceeded, pay)
	tampered := bytes.Replace(body, []byte(`"amount":`), []byte(`"amount":1`), 1)
	_, mac, _ := strings.Cut(payment.Sign(whNew, now, body), "v1=")
	refused := []struct {
		name   string
		sig    string
		body   []byte
		status int
		code   string
	}{
		{"wrong secret", payment.Sign([]byte("whsec_guess"), now, body), body, 401, "invalid_signature"},
		{"stale timestamp", payment.Sign(whNew, now.Add(-5*time.Minute-2*time.Second), body), body, 401, "invalid_signature"},
		{"missing header", "", body, 401, "invalid_signature"},
		{"garbled header", "v1;" + mac, body, 401, "invalid_signature"},
		{"garbled hex", "t=" + fmt.Sprint(now.Unix()) + ",v1=" + strings.Repeat("g", 64), body, 401, "invalid_signature"},
		{"tampered body", payment.Sign(whNew, now, body), tampered, 401, "invalid_signature"},
		{"retired secret", payment.Sign([]byte("whsec_api_older_0123456789"), now, body), body, 401, "invalid_signature"},
		{"malformed body, signed", payment.Sign(whNew, now, []byte(`{"id":"evt_1",`)), []byte(`{"id":"evt_1",`), 400, "invalid_event"},
		{"unknown type, signed", payment.Sign(whNew, now, bytes.Replace(body, []byte("payment.succeeded"), []byte("payment.refunded"), 1)),
			bytes.Replace(body, []byte("payment.succeeded"), []byte("payment.refunded"), 1), 400, "invalid_event"},
		{"body over 64 KiB", payment.Sign(whNew, now, bytes.Repeat([]byte(" "), 70<<10)), bytes.Repeat([]byte(" "), 70<<10), 413, "body_too_large"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			r := e.webhook(t, tc.sig, tc.body)
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("got %d %s: %s", r.status, r.code, r.body)
			}
		})
	}
	if got := e.do(t, "GET", "/v1/payments/"+pay.ID, rt, nil, nil); !strings.Contains(string(got.body), `"status":"pending"`) {
		t.Fatalf("refused webhooks changed the payment: %s", got.body)
	}
	if stored, _ := e.hooks.Events(context.Background(), pay.ID); len(stored) != 0 {
		t.Fatalf("refused webhooks were stored: %d", len(stored))
	}
	t.Run("rotated: old secret applies", func(t *testing.T) {
		r := e.webhook(t, payment.Sign(whOld, time.Now(), body), body)
		var res payment.WebhookResult
		_ = json.Unmarshal(r.body, &res)
		if r.status != 200 || res.Outcome != payment.OutcomeApplied || res.TripStatus != trip.StatusRequested {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("redelivery with a fresh signature", func(t *testing.T) {
		for range 3 {
			r := e.webhook(t, payment.Sign(whNew, time.Now(), body), body)
			var res payment.WebhookResult
			_ = json.Unmarshal(r.body, &res)
			if r.status != 200 || res.Outcome != payment.OutcomeDuplicate || res.Status != payment.StatusSucceeded {
				t.Fatalf("%d %s", r.status, r.body)
			}
		}
	})
	t.Run("late contrary event", func(t *testing.T) {
		late := webhookBody("evt_late_"+pay.ID[4:20], payment.WebhookFailed, pay)
		r := e.webhook(t, payment.Sign(whNew, time.Now(), late), late)
		if r.status != 200 || !strings.Contains(string(r.body), `"outcome":"conflict"`) {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("unknown payment", func(t *testing.T) {
		ghost := pay
		ghost.ID = "pay_ffffffffffffffff_" + pay.TripID
		b := webhookBody("evt_ghost", payment.WebhookSucceeded, ghost)
		if r := e.webhook(t, payment.Sign(whNew, time.Now(), b), b); r.status != 404 || r.code != "payment_not_found" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	// The trip's feed: pending, succeeded, then the trip's requested.
	evs, _, err := e.feed.Read(context.Background(), trip.Topic(pay.TripID), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	if got := strings.Join(types, ","); got != "trip.created,payment.status,payment.status,trip.status" {
		t.Fatalf("feed: %s", got)
	}
}

// TestPaymentPolling: ETag/304, Retry-After only while pending, access.
func TestPaymentPolling(t *testing.T) {
	e := newPayEnv(t)
	pay, rt := e.pendingPayment(t)
	path := "/v1/payments/" + pay.ID
	if pay.Status != "pending" || !strings.HasPrefix(pay.CheckoutURL, "http://gw.test/checkout/"+pay.ID+"?") ||
		!strings.Contains(pay.CheckoutURL, "return=http%3A%2F%2F127.0.0.1") {
		t.Fatalf("payment %+v", pay)
	}
	retry := func(r httpReply) string { return r.header.Get("Retry-After") }

	r := e.do(t, "GET", path, rt, nil, nil)
	if r.status != 200 || r.header.Get("ETag") != `"p1"` || (retry(r) != "2" && retry(r) != "3") {
		t.Fatalf("pending: %d etag %q retry %q", r.status, r.header.Get("ETag"), retry(r))
	}
	r = e.do(t, "GET", path, rt, nil, map[string]string{"If-None-Match": `"p1"`})
	if r.status != 304 || len(r.body) != 0 || (retry(r) != "2" && retry(r) != "3") {
		t.Fatalf("pending 304: %d retry %q body %q", r.status, retry(r), r.body)
	}
	// Same trip: POST again gives the same payment.
	r = e.do(t, "POST", "/v1/trips/"+pay.TripID+"/payment", rt, nil, nil)
	if r.status != 200 || r.header.Get("Idempotent-Replayed") != "true" || !strings.Contains(string(r.body), pay.ID) {
		t.Fatalf("again: %d %s", r.status, r.body)
	}
	b := webhookBody("evt_poll_"+pay.ID[4:20], payment.WebhookFailed, pay)
	if w := e.webhook(t, payment.Sign(whNew, time.Now(), b), b); w.status != 200 {
		t.Fatalf("webhook %d %s", w.status, w.body)
	}
	r = e.do(t, "GET", path, rt, nil, map[string]string{"If-None-Match": `"p1"`})
	if r.status != 200 || r.header.Get("ETag") != `"p2"` || retry(r) != "" || !strings.Contains(string(r.body), `"status":"failed"`) {
		t.Fatalf("final: %d etag %q retry %q %s", r.status, r.header.Get("ETag"), retry(r), r.body)
	}
	r = e.do(t, "GET", path, rt, nil, map[string]string{"If-None-Match": `W/"p2"`})
	if r.status != 304 || retry(r) != "" {
		t.Fatalf("final 304: %d retry %q", r.status, retry(r))
	}
	tr := e.do(t, "GET", "/v1/trips/"+pay.TripID, rt, nil, nil)
	if !strings.Contains(string(tr.body), `"status":"cancelled"`) {
		t.Fatalf("trip after failed payment: %s", tr.body)
	}

	other, _ := e.pendingPayment(t)
	cash := e.do(t, "POST", "/v1/trips", rt, []byte(`{"kind":"delivery","payment":"cash","pickup":{"lat":52.52,"lng":13.405},"dropoff":{"lat":52.5,"lng":13.38}}`), nil)
	var cashSnap trip.Snapshot
	_ = json.Unmarshal(cash.body, &cashSnap)
	access := []struct {
		name, method, path, tok, body string
		status                        int
		code                          string
	}{
		{"no token", "GET", path, "", "", 401, "unauthorized"},
		{"driver", "GET", path, e.tok(t, tokens.RoleDriver, "d1"), "", 403, "forbidden"},
		{"another rider", "GET", "/v1/payments/" + other.ID, rt, "", 403, "forbidden"},
		{"ops", "GET", "/v1/payments/" + other.ID, e.tok(t, tokens.RoleOps, "ops"), "", 200, ""},
		{"malformed id", "GET", "/v1/payments/pay_x", rt, "", 404, "payment_not_found"},
		{"no such payment", "GET", "/v1/payments/pay_0123456789abcdef_t_none", rt, "", 404, "payment_not_found"},
		{"open redirect", "POST", "/v1/trips/" + other.TripID + "/payment", e.tok(t, tokens.RoleOps, "ops"), `{"return_path":"//evil.example/"}`, 400, "invalid_argument"},
		{"absolute return", "POST", "/v1/trips/" + other.TripID + "/payment", e.tok(t, tokens.RoleOps, "ops"), `{"return_path":"https://evil.example/"}`, 400, "invalid_argument"},
		{"unknown field", "POST", "/v1/trips/" + other.TripID + "/payment", e.tok(t, tokens.RoleOps, "ops"), `{"amount":1}`, 400, "invalid_json"},
		{"cash trip", "POST", "/v1/trips/" + cashSnap.Trip.ID + "/payment", rt, "", 400, "invalid_argument"},
		{"cancelled trip", "POST", "/v1/trips/" + pay.TripID + "/payment", rt, "", 200, ""}, // has its payment already
		{"driver creates", "POST", "/v1/trips/" + other.TripID + "/payment", e.tok(t, tokens.RoleDriver, "d1"), "", 403, "forbidden"},
	}
	for _, tc := range access {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, tc.tok, []byte(tc.body), nil)
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("got %d %q: %s", r.status, r.code, r.body)
			}
		})
	}
	t.Run("cancelled before paying is 409", func(t *testing.T) {
		snap := e.do(t, "POST", "/v1/trips", rt, []byte(`{"kind":"delivery","payment":"online","pickup":{"lat":52.52,"lng":13.405},"dropoff":{"lat":52.5,"lng":13.38}}`), nil)
		var s trip.Snapshot
		_ = json.Unmarshal(snap.body, &s)
		if r := e.do(t, "POST", "/v1/trips/"+s.Trip.ID+"/cancel", rt, nil, nil); r.status != 200 {
			t.Fatalf("cancel %d", r.status)
		}
		r := e.do(t, "POST", "/v1/trips/"+s.Trip.ID+"/payment", rt, nil, nil)
		if r.status != 409 || r.code != "invalid_transition" || !strings.Contains(string(r.body), `"status":"cancelled"`) {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

// FuzzPaymentWebhook sends arbitrary bodies and headers to the webhook:
// the answer is always a 2xx/4xx (never 500), and a body signed with a
// configured secret is either applied or refused as malformed / unknown.
func FuzzPaymentWebhook(f *testing.F) {
	e := newPayEnv(f)
	f.Add([]byte(`{"id":"evt_1","type":"payment.succeeded","created":1750000000,"data":{"payment_id":"pay_0123456789abcdef_t_1","amount":1,"currency":"EUR"}}`), "", true)
	f.Add([]byte(`{}`), "t=1,v1=00", false)
	f.Add([]byte(`not json`), "", true)
	f.Add([]byte(`{"id":"evt_x","type":"payment.failed","created":-1,"data":null}`), "t=99999999999,v1="+strings.Repeat("a", 64), false)
	var ip atomic.Uint32
	f.Fuzz(func(t *testing.T, body []byte, header string, sign bool) {
		if sign {
			header = payment.Sign(whNew, time.Now(), body)
		}
		req := httptest.NewRequest("POST", "/v1/webhooks/payments", bytes.NewReader(body))
		req.Header.Set(payment.SignatureHeader, header)
		// A new client address per input: the per-IP action limit is not
		// what is fuzzed here.
		n := ip.Add(1)
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:1234", n>>16&255, n>>8&255, n&255)
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("%d for body %q header %q: %s", rec.Code, body, header, rec.Body)
		case !sign && rec.Code != 401 && rec.Code != 413:
			t.Fatalf("unsigned: %d for %q %q", rec.Code, body, header)
		case sign && rec.Code != 200 && rec.Code != 400 && rec.Code != 404 && rec.Code != 413:
			t.Fatalf("signed: %d for %q", rec.Code, body)
		}
	})
}

// BenchmarkPaymentPoll304 is the polling hot path: GET /v1/payments/{id}
// with a matching If-None-Match, in parallel over real HTTP. "pending" is
// one Redis read per request; "final" is served from memory.
func BenchmarkPaymentPoll304(b *testing.B) {
	e := newPayEnv(b)
	for _, final := range []bool{false, true} {
		name := "pending"
		if final {
			name = "final"
		}
		b.Run(name, func(b *testing.B) {
			pay, rt := e.pendingPayment(b)
			etag := `"p1"`
			if final {
				body := webhookBody("evt_bench_"+pay.ID[4:20], payment.WebhookSucceeded, pay)
				if r := e.webhook(b, payment.Sign(whNew, time.Now(), body), body); r.status != 200 {
					b.Fatal(r.status)
				}
				etag = `"p2"`
			}
			tr := &http.Transport{MaxIdleConnsPerHost: 256}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			url := e.ts.URL + "/v1/payments/" + pay.ID
			b.ReportAllocs()
			b.SetParallelism(16)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", url, nil)
					req.Header.Set("Authorization", "Bearer "+rt)
					req.Header.Set("If-None-Match", etag)
					resp, err := cl.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusNotModified {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}

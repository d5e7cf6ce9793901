package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/trip/tripredis"

	"github.com/hextrack/hextrack/api/tokens"
)

// newSecEnv is newTripEnv with a whole api.Config (limits, CORS) and an
// optional logger; n nodes share one Redis prefix (the same deployment).
func newSecEnv(tb testing.TB, cfg api.Config, logger *slog.Logger, n int) []*tripEnv {
	tb.Helper()
	rdb, prefix := redistest.MustOpen(tb)
	var out []*tripEnv
	for range n {
		idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
		drivers := driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix})
		b := feedredis.New(rdb, feedredis.Config{MaxAge: 10 * time.Minute, Prefix: prefix})
		trips := tripredis.NewService(rdb, b, drivers, tripredis.Config{Prefix: prefix, LocationEvery: 100 * time.Millisecond})
		drivers.Listen(trips.Tracker())
		ctx, cancel := context.WithCancel(context.Background())
		go func() { _ = trips.Tracker().Run(ctx) }()
		c := cfg
		c.JWTSecret, c.Dev = []byte(secret), true
		srv := api.New(c, depsWith(newDeps(rdb, prefix, drivers, trips, b), func(d *api.Deps) { d.Logger = logger }))
		ts := httptest.NewServer(srv.Handler())
		tb.Cleanup(func() {
			srv.StartDrain()
			ts.CloseClientConnections()
			ts.Close()
			cancel()
			_ = b.Close()
		})
		out = append(out, &tripEnv{srv: srv, ts: ts, trips: trips, drivers: drivers, feed: b, rdb: rdb})
	}
	return out
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestActionLimits: per-subject limits hold across nodes (Redis), per-IP
// limits hold per node; both answer 429 with Retry-After.
func TestActionLimits(t *testing.T) {
	t.Run("per subject, across nodes", func(t *testing.T) {
		nodes := newSecEnv(t, api.Config{Limits: api.LimitConfig{SubjectRate: 1, SubjectBurst: 4, IPRate: -1}}, nil, 2)
		snap, rc := nodes[0].newTrip(t) // one action of the burst
		tok := rc.Token()
		var got []int
		for i := range 5 {
			r := call(t, "POST", nodes[i%2].ts.URL+"/v1/trips/"+snap.Trip.ID+"/messages", tok, `{"client_id":"c`+strconv.Itoa(i)+`","text":"hi"}`)
			got = append(got, r.status)
		}
		want := []int{201, 201, 201, 429, 429}
		if !slicesEqual(got, want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
		req, _ := http.NewRequest("POST", nodes[1].ts.URL+"/v1/trips/"+snap.Trip.ID+"/messages", strings.NewReader(`{"client_id":"z","text":"hi"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp := do(t, req)
		if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != 429 || ra < 1 || ra > 2 {
			t.Fatalf("status %d Retry-After %q, want 429 and 1-2 s", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		// Another subject is not affected; reads are not limited.
		if r := call(t, "GET", nodes[0].ts.URL+"/v1/trips/"+snap.Trip.ID, tok, ""); r.status != 200 {
			t.Fatalf("read after limit: %d", r.status)
		}
		if _, orc := nodes[1].newTrip(t); orc == nil {
			t.Fatal("other rider")
		}
	})
	t.Run("per IP, per node", func(t *testing.T) {
		nodes := newSecEnv(t, api.Config{Limits: api.LimitConfig{SubjectRate: -1, IPRate: 1, IPBurst: 3, LimitLoopback: true}}, nil, 1)
		var got []int
		for i := range 4 {
			// Different subjects from one address: the IP limit still holds.
			r := call(t, "POST", nodes[0].ts.URL+"/v1/trips", nodes[0].tok(t, "rider", "r"+strconv.Itoa(i)), `{"kind":"ride","pickup":{"lat":52.52,"lng":13.4},"dropoff":{"lat":52.5,"lng":13.38},"payment":"cash"}`)
			got = append(got, r.status)
		}
		if want := []int{201, 201, 201, 429}; !slicesEqual(got, want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	})
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPingLimitHTTP: the driver's ping bucket answers 429 + Retry-After on
// REST and an error on the WebSocket path alike (both call Ingest).
func TestPingLimitHTTP(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
	drivers := driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix, PingRate: 2, PingBurst: 5, Limits: driver.Limits{MaxBatch: 5}})
	srv := api.New(api.Config{JWTSecret: []byte(secret)}, newDeps(rdb, prefix, drivers, nil, nil))
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	tok := token(t, srv, tokens.RoleDriver, "d1")
	t0 := time.Now().Add(-time.Minute)
	batch := `{"pings":[` + pingBody(41.15, -8.61, t0, 1) + `,` + pingBody(41.15, -8.61, t0.Add(time.Second), 2) + `,` +
		pingBody(41.15, -8.61, t0.Add(2*time.Second), 3) + `,` + pingBody(41.15, -8.61, t0.Add(3*time.Second), 4) + `]}`
	if r := call(t, "POST", ts.URL+"/v1/drivers/d1/locations", tok, batch); r.status != 200 {
		t.Fatalf("batch of 4: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest("POST", ts.URL+"/v1/drivers/d1/locations", strings.NewReader(`{"pings":[`+pingBody(41.15, -8.61, t0.Add(5*time.Second), 5)+`,`+pingBody(41.15, -8.61, t0.Add(6*time.Second), 6)+`]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), "rate_limited") {
		t.Fatalf("batch of 2 over the bucket: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}

// TestStreamAdmission: per-IP new-stream limit (429) and the node's
// admission (503 + jittered Retry-After; a cap on open streams).
func TestStreamAdmission(t *testing.T) {
	sse := func(e *tripEnv, id, tok string) *http.Response {
		req, _ := http.NewRequest("GET", e.eventsURL(id), nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	t.Run("per IP", func(t *testing.T) {
		e := newSecEnv(t, api.Config{Limits: api.LimitConfig{SubjectRate: -1, StreamIPRate: 0.1, StreamIPBurst: 2, StreamRate: -1, LimitLoopback: true}}, nil, 1)[0]
		snap, rc := e.newTrip(t)
		var got []int
		for range 3 {
			got = append(got, sse(e, snap.Trip.ID, rc.Token()).StatusCode)
		}
		if want := []int{200, 200, 429}; !slicesEqual(got, want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
		// JSON long-polls of the same route are not streams.
		if r := call(t, "GET", e.eventsURL(snap.Trip.ID)+"?limit=1", rc.Token(), ""); r.status != 200 {
			t.Fatalf("long-poll: %d", r.status)
		}
	})
	t.Run("node rate, jittered Retry-After", func(t *testing.T) {
		e := newSecEnv(t, api.Config{Limits: api.LimitConfig{SubjectRate: -1, StreamIPRate: -1, StreamRate: 0.01, StreamBurst: 3, RetrySpread: 20 * time.Second}}, nil, 1)[0]
		snap, rc := e.newTrip(t)
		retry := map[string]bool{}
		for i := range 23 {
			resp := sse(e, snap.Trip.ID, rc.Token())
			switch {
			case i < 3 && resp.StatusCode != 200:
				t.Fatalf("stream %d: %d, want 200 within the burst", i, resp.StatusCode)
			case i >= 3 && resp.StatusCode != 503:
				t.Fatalf("stream %d: %d, want 503", i, resp.StatusCode)
			case i >= 3:
				retry[resp.Header.Get("Retry-After")] = true
			}
		}
		if len(retry) < 3 {
			t.Fatalf("Retry-After values %v: not jittered", retry)
		}
		// A bad token never takes admission: 401, not 503.
		if r := call(t, "GET", e.eventsURL(snap.Trip.ID), "garbage", ""); r.status != 401 {
			t.Fatalf("bad token: %d", r.status)
		}
	})
	t.Run("cap on open streams", func(t *testing.T) {
		// A stream notices its client went at the next heartbeat.
		e := newSecEnv(t, api.Config{Limits: api.LimitConfig{SubjectRate: -1, StreamIPRate: -1, StreamRate: -1, MaxStreams: 2},
			Stream: api.StreamConfig{Heartbeat: 100 * time.Millisecond}}, nil, 1)[0]
		snap, rc := e.newTrip(t)
		a := sse(e, snap.Trip.ID, rc.Token())
		b := sse(e, snap.Trip.ID, rc.Token())
		c := sse(e, snap.Trip.ID, rc.Token())
		if a.StatusCode != 200 || b.StatusCode != 200 || c.StatusCode != 503 || c.Header.Get("Retry-After") == "" {
			t.Fatalf("statuses %d %d %d (Retry-After %q), want 200 200 503", a.StatusCode, b.StatusCode, c.StatusCode, c.Header.Get("Retry-After"))
		}
		if e.srv.OpenStreams() != 2 {
			t.Fatalf("open streams %d", e.srv.OpenStreams())
		}
		a.Body.Close()
		waitFor(t, 20*time.Second, "one open stream after a client went", func() (bool, string) {
			n := e.srv.OpenStreams()
			return n == 1, fmt.Sprintf("open streams %d", n)
		})
		if d := sse(e, snap.Trip.ID, rc.Token()); d.StatusCode != 200 {
			t.Fatalf("after one closed: %d", d.StatusCode)
		}
	})
}

// TestCORSAndOrigins: one allow-list for CORS and the WebSocket origin
// check.
func TestCORSAndOrigins(t *testing.T) {
	e := newSecEnv(t, api.Config{CORSOrigins: []string{"https://ops.example.com"}, Limits: unlimited}, nil, 1)[0]
	tests := []struct {
		origin string
		allow  bool
	}{
		{"https://ops.example.com", true},
		{"https://OPS.example.com", true},
		{"https://evil.example.com", false},
		{"http://ops.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			req, _ := http.NewRequest("OPTIONS", e.ts.URL+"/v1/trips", nil)
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,idempotency-key")
			resp := do(t, req)
			got := resp.Header.Get("Access-Control-Allow-Origin")
			if tt.allow != (got == tt.origin) {
				t.Fatalf("preflight from %s: status %d allow-origin %q", tt.origin, resp.StatusCode, got)
			}
			if tt.allow && !strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "idempotency-key") {
				t.Fatalf("allow-headers %q", resp.Header.Get("Access-Control-Allow-Headers"))
			}
			// The WebSocket upgrade applies the same rule (checked before the
			// upgrade: 403 origin_not_allowed, or past it).
			tok := e.tok(t, "driver", "d1")
			h := http.Header{"Origin": {tt.origin}, "Authorization": {"Bearer " + tok}}
			ws, wresp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.ts.URL, "http")+"/v1/drivers/d1/ws", h)
			if ws != nil {
				ws.Close()
			}
			if wresp == nil {
				t.Fatalf("ws dial: %v", err)
			}
			refused := wresp.StatusCode == 403
			if refused == tt.allow {
				t.Fatalf("ws from %s: %d, allowed by CORS: %v", tt.origin, wresp.StatusCode, tt.allow)
			}
		})
	}
}

// TestSecurityHeaders: API responses carry echo Secure's headers and an
// API CSP; pages carry the page CSP (web.go).
func TestSecurityHeaders(t *testing.T) {
	_, ts := newServer(t)
	for _, p := range []string{"/healthz", "/v1/trips/x", "/", "/ops", "/driver", "/nope"} {
		resp := do(t, mustReq(t, "GET", ts.URL+p))
		h := resp.Header
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", p, h)
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if (p == "/" || p == "/ops" || p == "/driver") && !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: page CSP %q", p, csp)
		}
	}
}

func mustReq(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTokensStayOutOfURLsLogsAndMetrics: access_token is read only on
// stream/snapshot GETs; tokens never reach logs or metric labels.
func TestTokensStayOutOfURLsLogsAndMetrics(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newSecEnv(t, api.Config{Limits: unlimited}, logger, 1)[0]
	snap, rc := e.newTrip(t)
	id, tok := snap.Trip.ID, rc.Token()
	q := "?access_token=" + tok
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/trips/" + id + q, 200},                          // snapshot: allowed
		{"GET", "/v1/trips/" + id + "/events" + q + "&limit=1", 200}, // stream route: allowed
		{"GET", "/v1/trips/" + id + "/path" + q, 401},                // not a stream route
		{"POST", "/v1/trips/" + id + "/messages" + q, 401},           // never on writes
		{"GET", "/v1/drivers/nearby" + q + "&lat=52.5&lng=13.4", 401},
		{"GET", "/no/such/route" + q, 404},
		{"GET", "/v1/trips/" + id + q + "x", 401}, // a bad token in the URL
	}
	for _, tt := range tests {
		req := mustReq(t, tt.method, e.ts.URL+tt.path)
		if tt.method == "POST" {
			req.Body = io.NopCloser(strings.NewReader(`{"client_id":"c1","text":"hi"}`))
		}
		if resp := do(t, req); resp.StatusCode != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path[:min(len(tt.path), 40)], resp.StatusCode, tt.want)
		}
	}
	resp, err := http.Get(e.ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	for name, text := range map[string]string{"logs": logs.String(), "metrics": string(metrics)} {
		if strings.Contains(text, sig) || strings.Contains(text, "access_token") {
			t.Errorf("the token reached the %s", name)
		}
	}
	if !strings.Contains(logs.String(), "route=/v1/trips/:id/path") {
		t.Fatalf("the log check saw no request lines:\n%s", logs.String())
	}
}

// TestForeignTokensRefused: alg none, another HMAC size, another key, an
// expired token, a token without exp: all 401.
func TestForeignTokensRefused(t *testing.T) {
	srv, ts := newServer(t)
	claims := func(exp time.Time) tokens.Claims {
		return tokens.Claims{Role: tokens.RoleOps, RegisteredClaims: jwt.RegisteredClaims{Subject: "o1", ExpiresAt: jwt.NewNumericDate(exp)}}
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.Claims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hour := time.Now().Add(time.Hour)
	tests := []struct {
		name, tok string
		want      int
	}{
		{"valid", sign(jwt.SigningMethodHS256, []byte(secret), claims(hour)), 200},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(hour)), 401},
		{"HS512 same key", sign(jwt.SigningMethodHS512, []byte(secret), claims(hour)), 401},
		{"HS384 same key", sign(jwt.SigningMethodHS384, []byte(secret), claims(hour)), 401},
		{"another key", sign(jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef012345"), claims(hour)), 401},
		{"expired", sign(jwt.SigningMethodHS256, []byte(secret), claims(time.Now().Add(-time.Minute))), 401},
		{"no exp", sign(jwt.SigningMethodHS256, []byte(secret), tokens.Claims{Role: tokens.RoleOps, RegisteredClaims: jwt.RegisteredClaims{Subject: "o1"}}), 401},
		{"unknown role", sign(jwt.SigningMethodHS256, []byte(secret), tokens.Claims{Role: "admin", RegisteredClaims: jwt.RegisteredClaims{Subject: "o1", ExpiresAt: jwt.NewNumericDate(hour)}}), 401},
	}
	_ = srv
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := call(t, "GET", ts.URL+"/v1/drivers/nearby?lat=52.5&lng=13.4", tt.tok, ""); r.status != tt.want {
				t.Fatalf("%d %s, want %d", r.status, r.body, tt.want)
			}
		})
	}
}

// TestStreamEndsWhenTokenExpires: the SSE stream ends with a token_expired
// event at the token's exp; resuming with a fresh token and Last-Event-ID
// continues.
func TestStreamEndsWhenTokenExpires(t *testing.T) {
	e := newSecEnv(t, api.Config{Limits: unlimited}, nil, 1)[0]
	snap, rc := e.newTrip(t)
	id := snap.Trip.ID
	short, err := e.srv.Auth().Mint(tokens.Request{Role: tokens.RoleRider, Sub: snap.Trip.RiderID, TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := openSSE(t, e.eventsURL(id), short, nil)
	if f := c.nextEvent(t, 5*time.Second); f.event != "snapshot" {
		t.Fatalf("first frame %+v", f)
	}
	f := c.nextEvent(t, 5*time.Second)
	if f.event != "token_expired" || !strings.Contains(f.data, `"type":"token_expired"`) {
		t.Fatalf("want token_expired, got %+v", f)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("ended %v after opening a 2 s token", d)
	}
	if _, err := c.next(); err == nil {
		t.Fatal("stream open after token_expired")
	}
	if _, err := rc.SendMessage(context.Background(), id, "m1", "after expiry"); err != nil {
		t.Fatal(err)
	}
	c2 := openSSE(t, e.eventsURL(id), rc.Token(), map[string]string{"Last-Event-ID": snap.FeedPosition})
	if f := c2.nextEvent(t, 5*time.Second); f.event != "trip.message" {
		t.Fatalf("resumed frame %+v", f)
	}
}

// TestWebSocketEndsWhenTokenExpires: a driver WebSocket is closed with
// 4401 at its token's exp, so the client refreshes and resumes.
func TestWebSocketEndsWhenTokenExpires(t *testing.T) {
	e := newAuditEnv(t)
	tok, err := e.srv.Auth().Mint(tokens.Request{Role: tokens.RoleDriver, Sub: "d_ws", TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.ts.URL, "http")+"/v1/drivers/d_ws/ws",
		http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteJSON(map[string]string{"type": "hello"})
	_ = ws.SetReadDeadline(time.Now().Add(6 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != api.CloseTokenExpired {
			t.Fatalf("closed with %v, want %d", err, api.CloseTokenExpired)
		}
		break
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed %v after a 2 s token", d)
	}
}

// TestLoopbackExemptFromIPLimits: by default local tools (loopback peers)
// are not subject to the per-IP limits; subject limits still apply.
func TestLoopbackExemptFromIPLimits(t *testing.T) {
	e := newSecEnv(t, api.Config{Limits: api.LimitConfig{SubjectRate: -1, IPRate: 1, IPBurst: 1}}, nil, 1)[0]
	for i := range 3 {
		if r := call(t, "POST", e.ts.URL+"/v1/trips", e.tok(t, "rider", "r"+strconv.Itoa(i)), `{"kind":"ride","pickup":{"lat":52.52,"lng":13.4},"dropoff":{"lat":52.5,"lng":13.38},"payment":"cash"}`); r.status != 201 {
			t.Fatalf("trip %d from loopback: %d", i, r.status)
		}
	}
}

// TestForwardedForTrust: X-Forwarded-For names the client only when the
// peer is a trusted proxy; otherwise a client can't dodge per-IP limits.
func TestForwardedForTrust(t *testing.T) {
	create := func(e *tripEnv, i int, xff string) int {
		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/trips", strings.NewReader(`{"kind":"ride","pickup":{"lat":52.52,"lng":13.4},"dropoff":{"lat":52.5,"lng":13.38},"payment":"cash"}`))
		req.Header.Set("Authorization", "Bearer "+e.tok(t, "rider", "r"+strconv.Itoa(i)))
		req.Header.Set("X-Forwarded-For", xff)
		return do(t, req).StatusCode
	}
	lim := api.LimitConfig{SubjectRate: -1, IPRate: 0.01, IPBurst: 1, LimitLoopback: true}
	e := newSecEnv(t, api.Config{Limits: lim}, nil, 1)[0]
	if a, b := create(e, 1, "198.51.100.1"), create(e, 2, "198.51.100.2"); a != 201 || b != 429 {
		t.Fatalf("untrusted peer: %d %d, want 201 429 (X-Forwarded-For ignored)", a, b)
	}
	lim.TrustedProxies = []string{"127.0.0.0/8"}
	e = newSecEnv(t, api.Config{Limits: lim}, nil, 1)[0]
	if a, b, c := create(e, 1, "198.51.100.1"), create(e, 2, "198.51.100.2"), create(e, 3, "198.51.100.1"); a != 201 || b != 201 || c != 429 {
		t.Fatalf("trusted proxy: %d %d %d, want 201 201 429 (clients told apart)", a, b, c)
	}
}

// TestWebSocketPingLimit: pings over the WebSocket draw on the same
// per-driver bucket as REST: over it, an error reply with rate_limited.
func TestWebSocketPingLimit(t *testing.T) {
	e := newAuditEnvDrivers(t, driver.Config{PingRate: 1, PingBurst: 3, Limits: driver.Limits{MaxBatch: 3}})
	tok := e.mint(t, tokens.RoleDriver, "d_wsl", "", "")
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.ts.URL, "http")+"/v1/drivers/d_wsl/ws",
		http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteJSON(map[string]string{"type": "hello"})
	t0 := time.Now().Add(-time.Minute)
	send := func(ref string, seqs ...int) {
		var ps []string
		for _, s := range seqs {
			ps = append(ps, pingBody(52.52, 13.405, t0.Add(time.Duration(s)*time.Second), s))
		}
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"locations","ref":"`+ref+`","pings":[`+strings.Join(ps, ",")+`]}`)); err != nil {
			t.Fatal(err)
		}
	}
	reply := func(ref string) map[string]any {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				t.Fatalf("waiting for %s: %v", ref, err)
			}
			if m["ref"] == ref {
				return m
			}
		}
	}
	send("a", 1, 2, 3)
	if m := reply("a"); m["type"] != "ack" {
		t.Fatalf("first batch: %v", m)
	}
	send("b", 4)
	if m := reply("b"); m["type"] != "error" || m["code"] != "rate_limited" {
		t.Fatalf("over the bucket: %v, want an error rate_limited", m)
	}
	// The REST path shares the bucket.
	if r := call(t, "POST", e.ts.URL+"/v1/drivers/d_wsl/locations", tok, pingBody(52.52, 13.405, t0.Add(5*time.Second), 5)); r.status != 429 {
		t.Fatalf("REST after the WebSocket emptied the bucket: %d", r.status)
	}
}

// TestClientHonoursRetryAfter: the Go client's trip stream, refused by the
// per-IP stream limit (429 + Retry-After), comes back after the delay and
// connects instead of giving up.
func TestClientHonoursRetryAfter(t *testing.T) {
	e := newSecEnv(t, api.Config{Limits: api.LimitConfig{SubjectRate: -1, StreamIPRate: 0.5, StreamIPBurst: 1, StreamRate: -1, LimitLoopback: true}}, nil, 1)[0]
	snap, rc := e.newTrip(t)
	first := openSSE(t, e.eventsURL(snap.Trip.ID), rc.Token(), nil) // takes the only token
	if first.resp.StatusCode != 200 {
		t.Fatalf("first stream: %d", first.resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	s := rc.WatchTrip(ctx, snap.Trip.ID, "")
	select {
	case f, ok := <-s.C:
		if !ok {
			t.Fatalf("stream ended: %v", s.Err())
		}
		if s.Reconnects() == 0 {
			t.Fatalf("first frame %s without a refusal: admission did not apply", f.Type)
		}
	case <-ctx.Done():
		t.Fatal("never connected")
	}
}

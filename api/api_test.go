package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"

	"github.com/hextrack/hextrack/api/tokens"
)

const secret = "test-secret-0123456789abcdef0123456789"

// newServer returns an API server over a real Redis (own prefix) and an
// httptest server running it.
func newServer(t *testing.T) (*api.Server, *httptest.Server) {
	t.Helper()
	return newServerB(t)
}

func newServerB(t testing.TB) (*api.Server, *httptest.Server) {
	t.Helper()
	rdb, prefix := redistest.MustOpen(t)
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
	drivers := driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix})
	srv := api.New(api.Config{JWTSecret: []byte(secret), Dev: true}, newDeps(rdb, prefix, drivers, nil, nil))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return srv, ts
}

func token(t *testing.T, srv *api.Server, role, sub string) string {
	t.Helper()
	tok, err := srv.Auth().Mint(tokens.Request{Role: role, Sub: sub, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type reply struct {
	status int
	code   string
	body   string
}

func call(t *testing.T, method, url, tok, body string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return reply{resp.StatusCode, e.Error.Code, string(b)}
}

func pingBody(lat, lng float64, ts time.Time, seq int) string {
	return fmt.Sprintf(`{"lat":%v,"lng":%v,"ts":"%s","seq":%d}`, lat, lng, ts.UTC().Format(time.RFC3339Nano), seq)
}

// TestBadInputs: each bad input gets a clear 4xx with a code and stores nothing.
func TestBadInputs(t *testing.T) {
	srv, ts := newServer(t)
	d1 := token(t, srv, tokens.RoleDriver, "d1")
	ops := token(t, srv, tokens.RoleOps, "ops")
	now := time.Now()
	many := make([]string, 600)
	for i := range many {
		many[i] = pingBody(41.15, -8.61, now, i+1)
	}
	huge := `{"pings":[` + strings.Repeat(" ", 2<<20) + `]}`
	url := ts.URL + "/v1/drivers/d1/locations"
	tests := []struct {
		name   string
		url    string
		tok    string
		body   string
		status int
		code   string
	}{
		{"lat 91", url, d1, pingBody(91, -8.61, now, 1), 400, "lat_out_of_range"},
		{"lng -181", url, d1, pingBody(41.15, -181, now, 1), 400, "lng_out_of_range"},
		{"NaN", url, d1, `{"lat":NaN,"lng":-8.61,"ts":"` + now.Format(time.RFC3339) + `","seq":1}`, 400, "invalid_argument"},
		{"string lat", url, d1, `{"lat":"41.1","lng":-8.61,"ts":"` + now.Format(time.RFC3339) + `","seq":1}`, 400, "invalid_argument"},
		{"ts 1h ahead", url, d1, pingBody(41.15, -8.61, now.Add(time.Hour), 1), 400, "ts_in_future"},
		{"600 pings", url, d1, `{"pings":[` + strings.Join(many, ",") + `]}`, 400, "too_many_pings"},
		{"truncated body", url, d1, `{"pings":[` + pingBody(41.15, -8.61, now, 1), 400, "invalid_argument"},
		{"array body", url, d1, `[` + pingBody(41.15, -8.61, now, 1) + `]`, 400, "invalid_argument"},
		{"empty batch", url, d1, `{"pings":[]}`, 400, "invalid_argument"},
		{"null batch", url, d1, `{"pings":null}`, 400, "invalid_argument"},
		{"batch of an object", url, d1, `{"pings":` + pingBody(41.15, -8.61, now, 1) + `}`, 400, "invalid_argument"},
		{"number in a batch", url, d1, `{"pings":[` + pingBody(41.15, -8.61, now, 1) + `,1]}`, 400, "invalid_argument"},
		{"string lat in a batch", url, d1, `{"pings":[` + pingBody(41.15, -8.61, now, 1) + `,{"lat":"41.1","lng":-8.61,"ts":1,"seq":2}]}`, 400, "invalid_argument"},
		{"bad ts in a batch", url, d1, `{"pings":[{"lat":41.1,"lng":-8.61,"ts":"yesterday","seq":2}]}`, 400, "invalid_argument"},
		{"invalid JSON after a batch", url, d1, `{"pings":[` + pingBody(41.15, -8.61, now, 1) + `],"x":tru}`, 400, "invalid_argument"},
		{"2 MiB body", url, d1, huge, 413, "body_too_large"},
		{"no token", url, "", pingBody(41.15, -8.61, now, 1), 401, "unauthorized"},
		{"garbage token", url, "xyz", pingBody(41.15, -8.61, now, 1), 401, "unauthorized"},
		{"another driver's id", ts.URL + "/v1/drivers/d2/locations", d1, pingBody(41.15, -8.61, now, 1), 403, "forbidden"},
		{"all pings of a batch invalid", url, d1, `{"pings":[` + pingBody(95, 0, now, 1) + `]}`, 400, "invalid_pings"},
		{"missing seq", url, d1, `{"lat":41.15,"lng":-8.61,"ts":"` + now.Format(time.RFC3339) + `"}`, 400, "missing_field"},
		{"bad status", ts.URL + "/v1/drivers/d1/status", d1, `{"status":"sleeping"}`, 400, "invalid_argument"},
		{"unknown field in status", ts.URL + "/v1/drivers/d1/status", d1, `{"status":"available","x":1}`, 400, "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodPost
			if strings.HasSuffix(tt.url, "/status") {
				method = http.MethodPut
			}
			r := call(t, method, tt.url, tt.tok, tt.body)
			if r.status != tt.status || r.code != tt.code {
				t.Fatalf("got %d %s (%s), want %d %s", r.status, r.code, trunc(r.body), tt.status, tt.code)
			}
		})
	}
	// Nothing was stored for d1 or d2.
	for _, id := range []string{"d1", "d2"} {
		if r := call(t, http.MethodGet, ts.URL+"/v1/drivers/"+id, ops, ""); r.status != 404 {
			t.Fatalf("driver %s has state after bad inputs: %d %s", id, r.status, trunc(r.body))
		}
	}
	if r := call(t, http.MethodGet, ts.URL+"/v1/drivers/nearby?lat=41.15&lng=-8.61&radius_m=50000", ops, ""); !strings.Contains(r.body, `"drivers":[]`) {
		t.Fatalf("nearby after bad inputs: %s", r.body)
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// TestAuthorizationMatrix checks who may call the driver routes.
func TestAuthorizationMatrix(t *testing.T) {
	srv, ts := newServer(t)
	now := time.Now()
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, tokens.Claims{Role: "driver", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "d1", ExpiresAt: jwt.NewNumericDate(now.Add(-time.Minute))}}).SignedString([]byte(secret))
	otherSecret, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, tokens.Claims{Role: "driver", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "d1", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}).SignedString([]byte("another-secret-another-secret-xx"))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, tokens.Claims{Role: "ops", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "x", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	callers := map[string]string{
		"none":         "",
		"driver d1":    token(t, srv, tokens.RoleDriver, "d1"),
		"driver d2":    token(t, srv, tokens.RoleDriver, "d2"),
		"rider":        token(t, srv, tokens.RoleRider, "r1"),
		"ops":          token(t, srv, tokens.RoleOps, "o1"),
		"expired":      expired,
		"other secret": otherSecret,
		"alg none":     none,
	}
	post := func(tok string) int {
		return call(t, http.MethodPost, ts.URL+"/v1/drivers/d1/locations", tok, pingBody(41.15, -8.61, time.Now(), int(time.Now().UnixNano()%1e9))).status
	}
	get := func(tok string) int { return call(t, http.MethodGet, ts.URL+"/v1/drivers/d1", tok, "").status }
	nearby := func(tok string) int {
		return call(t, http.MethodGet, ts.URL+"/v1/drivers/nearby?lat=41.15&lng=-8.61", tok, "").status
	}
	status := func(tok string) int {
		return call(t, http.MethodPut, ts.URL+"/v1/drivers/d1/status", tok, `{"status":"available"}`).status
	}
	tests := []struct {
		caller                     string
		post, get, nearby, setStat int
	}{
		{"none", 401, 401, 401, 401},
		{"driver d1", 200, 200, 200, 200},
		{"driver d2", 403, 403, 200, 403},
		{"rider", 403, 403, 200, 403},
		{"ops", 200, 200, 200, 200},
		{"expired", 401, 401, 401, 401},
		{"other secret", 401, 401, 401, 401},
		{"alg none", 401, 401, 401, 401},
	}
	for _, tt := range tests {
		t.Run(tt.caller, func(t *testing.T) {
			tok := callers[tt.caller]
			got := [4]int{post(tok), get(tok), nearby(tok), status(tok)}
			want := [4]int{tt.post, tt.get, tt.nearby, tt.setStat}
			if got != want {
				t.Fatalf("post,get,nearby,status = %v, want %v", got, want)
			}
		})
	}
}

func TestDevTokenOnlyInDevMode(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
	drivers := driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix})
	for _, dev := range []bool{true, false} {
		srv := api.New(api.Config{JWTSecret: []byte(secret), Dev: dev}, newDeps(rdb, prefix, drivers, nil, nil))
		ts := httptest.NewServer(srv.Handler())
		r := call(t, http.MethodPost, ts.URL+"/v1/dev/token", "", `{"role":"driver","sub":"d1","ttl":"1h"}`)
		ts.Close()
		want := 200
		if !dev {
			want = 404
		}
		if r.status != want {
			t.Fatalf("dev=%v: status %d, want %d", dev, r.status, want)
		}
		if dev {
			var out struct{ Token string }
			_ = json.Unmarshal([]byte(r.body), &out)
			cl, err := srv.Auth().Parse(out.Token)
			if err != nil || cl.Role != "driver" || cl.Subject != "d1" {
				t.Fatalf("minted token: %+v %v", cl, err)
			}
		}
	}
}

func TestHealthAndReady(t *testing.T) {
	srv, ts := newServer(t)
	if r := call(t, http.MethodGet, ts.URL+"/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
	if r := call(t, http.MethodGet, ts.URL+"/readyz", "", ""); r.status != 200 {
		t.Fatalf("readyz %d", r.status)
	}
	srv.StartDrain()
	if r := call(t, http.MethodGet, ts.URL+"/readyz", "", ""); r.status != 503 || r.code != "draining" {
		t.Fatalf("readyz while draining %d %s", r.status, r.code)
	}
	if r := call(t, http.MethodGet, ts.URL+"/metrics", "", ""); r.status != 200 || !strings.Contains(r.body, "hextrack_http_requests_total") {
		t.Fatalf("metrics %d", r.status)
	}
}

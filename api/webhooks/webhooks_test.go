package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/api/webhooks"
	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/webhook"
	"github.com/hextrack/hextrack/webhook/webhooksql"
)

const secret = "0123456789abcdef0123456789abcdef-test"

type env struct {
	base string
	auth *tokens.Auth
}

// newEnv serves the routes over a SQLite archive, with the delivery
// policy of production (not dev mode).
func newEnv(t *testing.T) *env {
	s, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "archive.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	svc := &webhook.Service{Store: webhooksql.New(s.DB(), s.Dialect()), Policy: webhook.Policy{AllowHosts: []string{"127.0.0.2"}}}
	srv := api.New(api.Config{JWTSecret: []byte(secret)}, api.Deps{Routes: []api.Routes{webhooks.New(svc)}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{base: ts.URL, auth: srv.Auth()}
}

func (e *env) token(t *testing.T, r tokens.Request) string {
	r.TTL = time.Hour
	tok, err := e.auth.Mint(r)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type reply struct {
	status int
	code   string
	msg    string
	body   map[string]any
	raw    string
}

func (e *env) do(t *testing.T, method, path, tok, body string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, e.base+path, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	r := reply{status: resp.StatusCode, raw: buf.String()}
	_ = json.Unmarshal(buf.Bytes(), &r.body)
	if e, ok := r.body["error"].(map[string]any); ok {
		r.code, _ = e["code"].(string)
		r.msg, _ = e["message"].(string)
	}
	return r
}

func TestEndpointsCRUD(t *testing.T) {
	e := newEnv(t)
	ops := e.token(t, tokens.Request{Role: tokens.RoleOps, Sub: "ops1"})
	created := e.do(t, http.MethodPost, "/v1/webhooks/endpoints", ops, `{"url":"https://127.0.0.2/hooks","filter":["trip.*","payment.status"]}`)
	if created.status != http.StatusCreated {
		t.Fatalf("create = %d %s", created.status, created.raw)
	}
	sec, _ := created.body["secret"].(string)
	id, _ := created.body["id"].(string)
	if !strings.HasPrefix(sec, "whsec_") || len(sec) < 6+32 || created.body["status"] != "active" || id == "" {
		t.Fatalf("create answered %s", created.raw)
	}
	for _, path := range []string{"/v1/webhooks/endpoints", "/v1/webhooks/endpoints/" + id} {
		r := e.do(t, http.MethodGet, path, ops, "")
		if r.status != http.StatusOK || strings.Contains(r.raw, "secret") || strings.Contains(r.raw, sec) || !strings.Contains(r.raw, id) {
			t.Fatalf("GET %s = %d %s (never the secret)", path, r.status, r.raw)
		}
	}
	// Only ops or an API key with the scope (caller.RequireScope; API
	// keys are minted elsewhere): a rider may not, nor a caller without a token.
	rider := e.token(t, tokens.Request{Role: tokens.RoleRider, Sub: "r1"})
	for _, c := range []struct {
		tok    string
		status int
	}{{rider, http.StatusForbidden}, {"", http.StatusUnauthorized}} {
		if r := e.do(t, http.MethodGet, "/v1/webhooks/endpoints", c.tok, ""); r.status != c.status {
			t.Fatalf("GET with %q = %d, want %d", c.tok, r.status, c.status)
		}
	}

	r := e.do(t, http.MethodPatch, "/v1/webhooks/endpoints/"+id, ops, `{"enabled":false,"filter":["trip.status"]}`)
	if r.status != http.StatusOK || r.body["status"] != "disabled" || !strings.Contains(r.raw, `"filter":["trip.status"]`) {
		t.Fatalf("PATCH = %d %s", r.status, r.raw)
	}
	if r := e.do(t, http.MethodGet, "/v1/webhooks/endpoints/"+id+"/deliveries?limit=10", ops, ""); r.status != http.StatusOK || !strings.Contains(r.raw, `"deliveries":[]`) {
		t.Fatalf("deliveries = %d %s", r.status, r.raw)
	}
	if r := e.do(t, http.MethodPost, "/v1/webhooks/endpoints/"+id+"/replay", ops, `{"from_time":"2026-12-07T00:00:00Z"}`); r.status != http.StatusAccepted {
		t.Fatalf("replay = %d %s", r.status, r.raw)
	}
	if r := e.do(t, http.MethodDelete, "/v1/webhooks/endpoints/"+id, ops, ""); r.status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", r.status, r.raw)
	}
	if r := e.do(t, http.MethodGet, "/v1/webhooks/endpoints/"+id, ops, ""); r.status != http.StatusNotFound || r.code != "not_found" {
		t.Fatalf("GET deleted = %d %s", r.status, r.raw)
	}
}

// TestBadInput: each bad request is a 4xx with its code and changes
// nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	ops := e.token(t, tokens.Request{Role: tokens.RoleOps, Sub: "ops1"})
	ok := e.do(t, http.MethodPost, "/v1/webhooks/endpoints", ops, `{"url":"https://127.0.0.2/ok"}`)
	id, _ := ok.body["id"].(string)
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code, msg                string
	}{
		{"not a url", "POST", "", `{"url":"not a url"}`, 400, "invalid_url", "absolute"},
		{"no url", "POST", "", `{"filter":["*"]}`, 400, "invalid_url", "required"},
		{"unknown type", "POST", "", `{"url":"https://127.0.0.2/x","filter":["trip.teleported"]}`, 400, "invalid_event_type", "trip.teleported"},
		{"unknown prefix", "POST", "", `{"url":"https://127.0.0.2/x","filter":["rider.*"]}`, 400, "invalid_event_type", "rider.*"},
		{"loopback outside dev", "POST", "", `{"url":"http://127.0.0.1:9000/hooks"}`, 400, "url_not_allowed", "loopback"},
		{"metadata", "POST", "", `{"url":"http://169.254.169.254/latest/meta-data/"}`, 400, "url_not_allowed", "link-local"},
		{"private", "POST", "", `{"url":"https://10.0.0.8/"}`, 400, "url_not_allowed", "private"},
		{"plain http", "POST", "", `{"url":"http://hooks.example.com/"}`, 400, "url_not_allowed", "https only"},
		{"unknown field", "POST", "", `{"url":"https://127.0.0.2/x","secret":"mine"}`, 400, "invalid_argument", "secret"},
		{"patch bad url", "PATCH", "/" + id, `{"url":"ftp://x"}`, 400, "invalid_url", ""},
		{"patch bad type", "PATCH", "/" + id, `{"filter":["nope"]}`, 400, "invalid_event_type", ""},
		{"no such endpoint", "GET", "/we_nope", ``, 404, "not_found", ""},
		{"replay without start", "POST", "/" + id + "/replay", `{}`, 400, "invalid_argument", "from_event"},
		{"replay bad event", "POST", "/" + id + "/replay", `{"from_event":"yesterday"}`, 400, "invalid_argument", "from_event"},
		{"log bad cursor", "GET", "/" + id + "/deliveries?cursor=zzz", ``, 400, "invalid_argument", "cursor"},
		{"log bad limit", "GET", "/" + id + "/deliveries?limit=0", ``, 400, "invalid_argument", "limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, c.method, "/v1/webhooks/endpoints"+c.path, ops, c.body)
			if r.status != c.status || r.code != c.code || !strings.Contains(r.msg, c.msg) {
				t.Fatalf("%s %s = %d %s, want %d %s saying %q", c.method, c.path, r.status, r.raw, c.status, c.code, c.msg)
			}
		})
	}
	list := e.do(t, http.MethodGet, "/v1/webhooks/endpoints", ops, "")
	if eps, _ := list.body["endpoints"].([]any); len(eps) != 1 || !strings.Contains(list.raw, `"url":"https://127.0.0.2/ok"`) {
		t.Fatalf("after the bad requests: %s", list.raw)
	}
}

// TestOpenAPICoversRoutes: every webhook route is in openapi.yaml.
func TestOpenAPICoversRoutes(t *testing.T) {
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI(), &spec); err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	webhooks.New(nil).Register(e)
	n := 0
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, "/v1/webhooks") {
			continue
		}
		n++
		p := regexp.MustCompile(`:([A-Za-z_]+)`).ReplaceAllString(r.Path, "{$1}")
		if _, ok := spec.Paths[p][strings.ToLower(r.Method)]; !ok {
			t.Errorf("%s %s is not in openapi.yaml", r.Method, p)
		}
	}
	if n != 7 {
		t.Fatalf("%d webhook routes registered, want 7", n)
	}
}

package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMiddlewareOnEveryResponse: the middlewares (echo's Use) serve
// matched routes, 404s, 405s and refused requests alike: each response
// has its request id and the security headers, and the metrics count it.
func TestMiddlewareOnEveryResponse(t *testing.T) {
	_, ts := newServer(t)
	ids := map[string]bool{}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/healthz", 200}, {"GET", "/nope", 404}, {"DELETE", "/healthz", 405},
		{"GET", "/v1/trips/x", 401}, {"POST", "/v1/trips", 401},
	} {
		resp := do(t, mustReq(t, c.method, ts.URL+c.path))
		h := resp.Header
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, resp.StatusCode, c.status)
		}
		id := h.Get("X-Request-Id")
		if id == "" || ids[id] {
			t.Errorf("%s %s: request id %q (repeated: %v)", c.method, c.path, id, ids[id])
		}
		ids[id] = true
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s %s: headers %v", c.method, c.path, h)
		}
	}
	req := mustReq(t, "GET", ts.URL+"/healthz")
	req.Header.Set("X-Request-Id", "rid-from-proxy")
	if got := do(t, req).Header.Get("X-Request-Id"); got != "rid-from-proxy" {
		t.Errorf("request id %q, want the proxy's", got)
	}
	mresp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	body := string(b)
	for _, want := range []string{`route="unmatched"`, `route="/healthz",status="405"`, `route="/v1/trips/:id",status="401"`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

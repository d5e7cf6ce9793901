package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestETagMatch: If-None-Match's weak comparison over a list.
func TestETagMatch(t *testing.T) {
	for _, c := range []struct {
		header string
		want   bool
	}{
		{`"3.1"`, true}, {`W/"3.1"`, true}, {`"2.0", "3.1"`, true}, {` "x" ,W/"3.1" `, true}, {`*`, true},
		{``, false}, {`"3.1.2"`, false}, {`3.1`, false}, {`"3.1",`, true}, {`,`, false}, {` , "2.0"`, false},
	} {
		if got := etagMatch(c.header, `"3.1"`); got != c.want {
			t.Errorf("etagMatch(%q) = %v, want %v", c.header, got, c.want)
		}
	}
}

// TestRequestIDs: a generated id is new on every request; a client's id is
// kept.
func TestRequestIDs(t *testing.T) {
	e := echo.New()
	h := requestIDs()(func(c echo.Context) error { return nil })
	seen := map[string]bool{}
	for range 100 {
		rec := httptest.NewRecorder()
		if err := h(e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)); err != nil {
			t.Fatal(err)
		}
		id := rec.Header().Get(echo.HeaderXRequestID)
		if len(id) < 18 || seen[id] || strings.ContainsAny(id, " \r\n") {
			t.Fatalf("request id %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set(echo.HeaderXRequestID, "from-the-proxy")
	rec := httptest.NewRecorder()
	_ = h(e.NewContext(req, rec))
	if got := rec.Header().Get(echo.HeaderXRequestID); got != "from-the-proxy" {
		t.Fatalf("request id %q, want the client's", got)
	}
}

// TestSecureHeadersShared: the precomputed values survive a handler that
// replaces or adds to them, for the next response.
func TestSecureHeadersShared(t *testing.T) {
	e := echo.New()
	h := secureHeaders(60)(func(c echo.Context) error {
		c.Response().Header().Add(echo.HeaderContentSecurityPolicy, "extra")
		c.Response().Header().Set(echo.HeaderXFrameOptions, "SAMEORIGIN")
		return nil
	})
	for i := range 2 {
		req := httptest.NewRequest(http.MethodGet, "https://x.test/", nil)
		rec := httptest.NewRecorder()
		if err := h(e.NewContext(req, rec)); err != nil {
			t.Fatal(err)
		}
		got := rec.Header()
		if csp := got.Values(echo.HeaderContentSecurityPolicy); len(csp) != 2 || csp[0] != "default-src 'none'; frame-ancestors 'none'" {
			t.Fatalf("response %d: CSP %q", i, csp)
		}
		if got.Get(echo.HeaderXFrameOptions) != "SAMEORIGIN" || got.Get(echo.HeaderXContentTypeOptions) != "nosniff" ||
			got.Get(echo.HeaderReferrerPolicy) != "no-referrer" || got.Get(echo.HeaderStrictTransportSecurity) != "max-age=60; includeSubdomains" {
			t.Fatalf("response %d: headers %v", i, got)
		}
	}
	rec := httptest.NewRecorder()
	_ = h(e.NewContext(httptest.NewRequest(http.MethodGet, "http://x.test/", nil), rec))
	if v := rec.Header().Get(echo.HeaderStrictTransportSecurity); v != "" {
		t.Fatalf("HSTS over plain HTTP: %q", v)
	}
}

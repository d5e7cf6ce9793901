package webpages

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/labstack/echo/v4"
)

func TestTileSource(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"none", "", ""},
		{"subdomains", "https://{s}.tile.example.org/{z}/{x}/{y}.png", "https://*.tile.example.org"},
		{"plain host", "https://tiles.example.com/{z}/{x}/{y}.png", "https://tiles.example.com"},
		{"with port", "http://127.0.0.1:8081/{z}/{x}/{y}.png", "http://127.0.0.1:8081"},
		{"javascript", "javascript:alert(1)", ""},
		{"injection", "https://a.example.org;script-src *", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tileSource(tc.in); got != tc.want {
				t.Fatalf("tileSource(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestWebHandler(t *testing.T) {
	built := fstest.MapFS{
		"index.html":    {Data: []byte("<!doctype html><title>rider</title>")},
		"assets/app.js": {Data: []byte("console.log(1)")},
		"config.json":   {Data: []byte(`{"tileURL":"https://{s}.tiles.example.net/{z}/{x}/{y}.png"}`)},
		".placeholder":  {Data: []byte("x")},
	}
	for _, tc := range []struct {
		name       string
		fsys       fstest.MapFS
		path       string
		status     int
		body       string
		cspContain string
	}{
		{"page", built, "/", 200, "rider", "img-src 'self' data: https://*.tiles.example.net"},
		{"asset", built, "/assets/app.js", 200, "console.log", "frame-ancestors 'none'"},
		{"missing asset", built, "/assets/nope.js", 404, "", ""},
		{"dot file hidden", built, "/.placeholder", 404, "", ""},
		{"not built", fstest.MapFS{".placeholder": {Data: []byte("x")}}, "/", 200, "make web", "script-src 'self'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(tc.fsys)
			e := echo.New()
			e.GET("/", h.Page("index.html"))
			e.GET("/assets/*", h.File)
			e.GET("/.placeholder", h.File)
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if !strings.Contains(rec.Body.String(), tc.body) {
				t.Fatalf("body %q lacks %q", rec.Body.String(), tc.body)
			}
			if tc.status == 200 {
				csp := rec.Header().Get("Content-Security-Policy")
				if !strings.Contains(csp, tc.cspContain) || strings.Contains(csp, "unsafe") {
					t.Fatalf("CSP %q lacks %q or allows unsafe sources", csp, tc.cspContain)
				}
				if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
					t.Fatalf("security headers missing: %v", rec.Header())
				}
			}
		})
	}
}

package api_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"

	"github.com/hextrack/hextrack/api/tokens"
)

// FuzzAuthorization: any Authorization header or access_token value is
// either a valid token or a 401, never a panic or another status.
func FuzzAuthorization(f *testing.F) {
	srv := api.New(api.Config{JWTSecret: []byte(secret)}, api.Deps{})
	h := srv.Handler()
	good, _ := srv.Auth().Mint(tokens.Request{Role: tokens.RoleOps, Sub: "o1", TTL: time.Hour})
	for _, s := range []string{"Bearer " + good, "Bearer", "bearer ", "Basic abc", "Bearer a.b.c", "Bearer " + good + "x",
		"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4Iiwicm9sZSI6Im9wcyJ9.", "BEARER \x00", ""} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, header, query string) {
		req := httptest.NewRequest(http.MethodGet, "/v1/trips/t1/events?access_token="+url.QueryEscape(query), nil)
		if header != "" {
			req.Header["Authorization"] = []string{header}
		}
		req.Header.Set("Accept", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		// No trip service: an accepted token reaches the handler (503);
		// everything else stops at authentication (401) or roles (403).
		switch rec.Code {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable:
		default:
			t.Fatalf("Authorization %q, access_token %q: %d %s", header, query, rec.Code, rec.Body.String())
		}
		if header == "Bearer "+good && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("a valid token was refused: %d", rec.Code)
		}
	})
}

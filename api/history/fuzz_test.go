package history_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/history"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/archive/sqlstore"
)

// FuzzListQuery: any query string of GET /v1/trips and
// /v1/drivers/{id}/shifts is answered 200, 400 or 403 with the caller's
// scope kept; never a 500 (a query the archive's validation lets through
// to SQL and the database refuses).
func FuzzListQuery(f *testing.F) {
	for _, s := range []string{"", "limit=2", "cursor=AQAAAAAAAAAAdDE", "from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z",
		"limit=100000", "status=completed&rider=r1", "rider=r2", "driver=%00", "cursor=%ff%fe", "from=1e309", "limit=-0"} {
		f.Add(s)
	}
	s, err := sqlstore.Open(context.Background(), filepath.Join(f.TempDir(), "archive.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	srv := api.New(api.Config{JWTSecret: []byte(secret)}, api.Deps{
		Routes: []api.Routes{history.New(history.Deps{Trips: s, Records: s, Drivers: s})}})
	h := srv.Handler()
	tok, err := srv.Auth().Mint(tokens.Request{Role: tokens.RoleRider, Sub: "r1", TTL: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, q string) {
		for _, path := range []string{"/v1/trips?", "/v1/drivers/d1/shifts?"} {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.URL.Path, req.URL.RawQuery = path[:len(path)-1], q
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if st := rec.Code; st != 200 && st != 400 && st != 403 {
				t.Fatalf("GET %s%s = %d %s", path, q, st, rec.Body)
			}
		}
	})
}

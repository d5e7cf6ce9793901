package webhooksql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive/sqlstore"
)

// defaultPG is the machine's PostgreSQL; HEXTRACK_TEST_DATABASE_URL
// overrides it (as in archive/sqlstore's tests).
const defaultPG = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// backends are the archives every test runs against.
var backends = []struct {
	name string
	url  func(testing.TB) string
}{
	{"sqlite", func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "archive.db") }},
	{"postgres", pgURL},
}

func forEachStore(t *testing.T, f func(t *testing.T, url string, s *sqlstore.Store)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			u := b.url(t)
			s, err := sqlstore.Open(context.Background(), u)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			f(t, u, s)
		})
	}
}

// pgURL creates a schema of the test's own in the test PostgreSQL, drops
// it at the end, and returns a URL whose search_path is that schema. It
// skips the test when PostgreSQL does not answer, and fails it under CI.
func pgURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("HEXTRACK_TEST_DATABASE_URL")
	if base == "" {
		base = defaultPG
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", base)
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		tb.Skipf("PostgreSQL unreachable: %v", err)
	}
	schema := "hx_test_" + randHex(6)
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

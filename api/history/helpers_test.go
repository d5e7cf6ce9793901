package history_test

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

// defaultPG is the machine's PostgreSQL (trust auth, database test);
// HEXTRACK_TEST_DATABASE_URL overrides it (as in archive/sqlstore).
const defaultPG = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// forEachStore runs f against a fresh, migrated archive on SQLite and on
// PostgreSQL (a schema of the test's own, dropped after).
func forEachStore(t *testing.T, f func(t *testing.T, s *sqlstore.Store)) {
	t.Helper()
	for _, b := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"sqlite", func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "archive.db") }},
		{"postgres", pgURL},
	} {
		t.Run(b.name, func(t *testing.T) {
			s, err := sqlstore.Open(context.Background(), b.url(t))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			f(t, s)
		})
	}
}

// pgURL creates a schema of its own in the test PostgreSQL, drops it when
// the test ends, and returns a URL whose search_path is that schema.
// Unreachable: skipped, or failed when CI=true.
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
			tb.Fatalf("PostgreSQL is required in CI (HEXTRACK_TEST_DATABASE_URL or %s): %v", defaultPG, err)
		}
		tb.Skipf("PostgreSQL unreachable (set HEXTRACK_TEST_DATABASE_URL): %v", err)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	schema := "hx_test_" + hex.EncodeToString(r[:])
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
		tb.Fatalf("HEXTRACK_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

package archiveredis_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// defaultPG is the machine's PostgreSQL (trust auth, database test);
// HEXTRACK_TEST_DATABASE_URL overrides it (as in archive/sqlstore).
const defaultPG = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// backends are the archives the record tests run against.
var backends = []struct {
	name string
	url  func(testing.TB) string
}{
	{"sqlite", func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "archive.db") }},
	{"postgres", pgURL},
}

// pgURL creates a schema of its own in the test PostgreSQL, drops it when
// the test ends, and returns a URL whose search_path is that schema.
// PostgreSQL unreachable skips the test, or fails it when CI=true.
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

// sqlDB opens the env's archive database directly, to count rows.
func (e *env) sqlDB() *sql.DB {
	e.t.Helper()
	driver := "sqlite3"
	if strings.HasPrefix(e.url, "postgres") {
		driver = "pgx"
	}
	db, err := sql.Open(driver, e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}

// count runs a SELECT COUNT(*) … with "?" placeholders written as $n.
func count(t *testing.T, db *sql.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

package archiveredis_test

import (
	"context"
	"database/sql"
	"github.com/hextrack/hextrack/internal/pgtest"
	"path/filepath"
	"strings"
	"testing"
)

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
	return pgtest.URL(tb)
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

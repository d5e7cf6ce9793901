package history_test

import (
	"context"
	"github.com/hextrack/hextrack/internal/pgtest"
	"path/filepath"
	"testing"

	"github.com/hextrack/hextrack/archive/sqlstore"
)

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
	return pgtest.URL(tb)
}

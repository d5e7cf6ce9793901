package sqlstore_test

import (
	"context"
	"github.com/hextrack/hextrack/internal/pgtest"
	"path/filepath"
	"testing"

	"github.com/hextrack/hextrack/archive/sqlstore"
)

// backends are the databases every store test runs against.
var backends = []struct {
	name string
	url  func(testing.TB) string
}{
	{"sqlite", sqliteURL},
	{"postgres", pgURL},
}

// forEachStore runs f against a fresh, migrated store of each backend.
func forEachStore(t *testing.T, f func(t *testing.T, s *sqlstore.Store)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, mustOpen(t, b.url(t))) })
	}
}

func mustOpen(tb testing.TB, u string) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.Open(context.Background(), u)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// sqliteURL is a new SQLite file in the test's temporary directory.
func sqliteURL(tb testing.TB) string {
	return filepath.Join(tb.TempDir(), "archive.db")
}

// pgURL creates a schema of its own (hx_test_<random>) in the test
// PostgreSQL, drops it when the test ends, and returns a URL whose
// search_path is that schema. PostgreSQL unreachable skips the test, or
// fails it when CI=true: CI must test the production database.
func pgURL(tb testing.TB) string {
	return pgtest.URL(tb)
}

package webhookriver_test

import (
	"context"
	"github.com/hextrack/hextrack/internal/pgtest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hextrack/hextrack/archive/sqlstore"
)

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
	return pgtest.URL(tb)
}

// logWriter sends log lines to the test's log.
type logWriter struct{ tb testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

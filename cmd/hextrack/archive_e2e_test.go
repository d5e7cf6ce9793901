package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/hextrack/hextrack/internal/pgtest"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
)

// runMainWith starts Main on 127.0.0.1:0 with the embedded Redis, dev mode
// and cfg's archive settings; stop closes it (once: the test's end does
// unless stop did).
func runMainWith(tb testing.TB, cfg Config) (m *Main, stop func() error) {
	tb.Helper()
	cfg.Addr, cfg.Dev, cfg.LogLevel = "127.0.0.1:0", true, "warn"
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	m = NewMain(cfg, w)
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		tb.Fatalf("main: %v", err)
	}
	stop = sync.OnceValue(m.Close)
	tb.Cleanup(func() { _ = stop() })
	return m, stop
}

// readyz is GET /readyz: its status and body.
func readyz(tb testing.TB, m *Main) (int, map[string]any) {
	tb.Helper()
	resp, err := http.Get("http://" + m.Addr() + "/readyz")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		tb.Fatalf("readyz body: %v", err)
	}
	return resp.StatusCode, body
}

// migrationVersions are the versions of archive/sqlstore's migration
// files (numbers may be skipped), oldest first.
func migrationVersions(tb testing.TB) []int64 {
	tb.Helper()
	files, err := filepath.Glob("../../archive/sqlstore/migrations/*.sql")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no migrations found: %v", err)
	}
	var vs []int64
	for _, f := range files {
		n, err := strconv.ParseInt(strings.SplitN(filepath.Base(f), "_", 2)[0], 10, 64)
		if err != nil {
			tb.Fatalf("migration %s: %v", f, err)
		}
		vs = append(vs, n)
	}
	slices.Sort(vs)
	return vs
}

// latestMigration is the version of the newest migration file of
// archive/sqlstore, so the test follows new migrations by itself.
func latestMigration(tb testing.TB) int64 {
	tb.Helper()
	files, err := filepath.Glob("../../archive/sqlstore/migrations/*.sql")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no migrations found: %v", err)
	}
	var latest int64
	for _, f := range files {
		n, err := strconv.ParseInt(strings.SplitN(filepath.Base(f), "_", 2)[0], 10, 64)
		if err != nil {
			tb.Fatalf("migration %s: %v", f, err)
		}
		latest = max(latest, n)
	}
	return latest
}

// TestRestartKeepsState is `make run` stopped and started again on one
// data directory: the archive file is there, migrated to the latest
// version, and a token issued before the restart still works after it.
func TestRestartKeepsState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created by Main
	ctx := context.Background()

	m, stop := runMainWith(t, Config{DataDir: dir})
	anon := client.New("http://"+m.Addr(), "", nil)
	tok, err := anon.DevToken(ctx, "rider", "r1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.WithToken(tok).Nearby(ctx, 41.149, -8.611, 1000, 5); err != nil {
		t.Fatalf("the token before the restart: %v", err)
	}
	st, body := readyz(t, m)
	if comps, _ := body["components"].(map[string]any); st != 200 || body["status"] != "ready" || comps["archive"] != "ok" {
		t.Fatalf("readyz with the archive open: %d %v", st, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(filepath.Join(dir, devSecretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the kept secret: %v, mode %v; want 0600", err, fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(dir, archiveFile)); err != nil {
		t.Fatalf("the archive file: %v", err)
	}

	m2, _ := runMainWith(t, Config{DataDir: dir})
	rider := client.New("http://"+m2.Addr(), tok, nil)
	if _, err := rider.Nearby(ctx, 41.149, -8.611, 1000, 5); err != nil {
		t.Fatalf("the token issued before the restart, after it: %v", err)
	}
	s := m2.Archive()
	if s == nil {
		t.Fatal("no archive after the restart")
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != latestMigration(t) {
		t.Fatalf("schema version %d, %v; want %d", v, err, latestMigration(t))
	}
	if st, body := readyz(t, m2); st != 200 || body["status"] != "ready" {
		t.Fatalf("readyz after the restart: %d %v", st, body)
	}

	// The control: a node without the data directory (a random secret)
	// refuses the same token, so the check above proves the secret kept.
	other, _ := runMainWith(t, Config{})
	var ae *client.Error
	if _, err := client.New("http://"+other.Addr(), tok, nil).Nearby(ctx, 41.149, -8.611, 1000, 5); !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("the token on a node with another secret: %v, want 401", err)
	}
	if other.Archive() != nil {
		t.Fatal("a Main without data dir or database URL opened an archive")
	}
}

// TestArchiveDownAtStart: a node whose database does not answer starts
// and serves (ingest works), /readyz is 200 and names the archive as
// degraded.
func TestArchiveDownAtStart(t *testing.T) {
	m, _ := runMainWith(t, Config{DatabaseURL: "postgres://postgres@" + closedAddr(t) + "/test?sslmode=disable&connect_timeout=1"})
	st, body := readyz(t, m)
	comps, _ := body["components"].(map[string]any)
	if st != 200 || body["status"] != "degraded" || !slices.Equal(anyStrings(body["degraded"]), []string{"archive"}) ||
		comps["archive"] != "unavailable" || comps["redis"] != "ok" {
		t.Fatalf("readyz with the archive down: %d %v; want 200 degraded [archive]", st, body)
	}
	if m.Archive() != nil {
		t.Fatal("Archive() is not nil while the database is down")
	}
	ctx := context.Background()
	anon := client.New("http://"+m.Addr(), "", nil)
	dtok, err := anon.DevToken(ctx, "driver", "d1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	res, err := anon.WithToken(dtok).SendLocations(ctx, "d1", []client.Ping{{Lat: 41.1496, Lng: -8.6109, TS: time.Now(), Seq: 1}})
	if err != nil || res.Accepted != 1 {
		t.Fatalf("ingest with the archive down: %+v %v", res, err)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// anyStrings is a JSON array of strings.
func anyStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestMigrateCommand: `hextrack migrate` applies every migration to an
// empty archive and prints them, then has nothing left to apply; on
// SQLite (in --data-dir) and on PostgreSQL (a schema of the test's own).
func TestMigrateCommand(t *testing.T) {
	t.Setenv("HEXTRACK_DATABASE_URL", "")
	t.Setenv("HEXTRACK_DATABASE_URL_FILE", "")
	latest := latestMigration(t)
	for _, tc := range []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"sqlite", func(t *testing.T) []string {
			return []string{"--data-dir", filepath.Join(t.TempDir(), "state")}
		}},
		{"postgres", func(t *testing.T) []string {
			// Trust auth ignores the password; it must not be printed.
			u := strings.Replace(testPostgres(t), "postgres://postgres@", "postgres://postgres:sekrit@", 1)
			return []string{"--database-url", u}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"migrate"}, tc.args(t)...)
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("migrate: %v\n%s", err, stderr.String())
			}
			out := stdout.String()
			for _, v := range migrationVersions(t) {
				if !strings.Contains(out, "applied migration "+strconv.FormatInt(v, 10)+"\n") {
					t.Errorf("migrate on an empty archive does not list migration %d:\n%s", v, out)
				}
			}
			if !strings.Contains(out, "schema version "+strconv.FormatInt(latest, 10)) || strings.Contains(out, "nothing to apply") {
				t.Fatalf("migrate on an empty archive:\n%s", out)
			}
			if !strings.Contains(out, "applied river (webhook jobs) migration ") {
				t.Errorf("migrate on an empty archive does not apply River's migrations:\n%s", out)
			}
			if strings.Contains(out, "sekrit") {
				t.Fatalf("the password reached the output:\n%s", out)
			}
			stdout.Reset()
			if err := run(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("migrate again: %v", err)
			}
			if out := stdout.String(); strings.Contains(out, "applied migration") || !strings.Contains(out, "nothing to apply") ||
				!strings.Contains(out, "schema version "+strconv.FormatInt(latest, 10)) {
				t.Fatalf("migrate on an up-to-date archive:\n%s", out)
			}
		})
	}
	t.Run("bad url", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"migrate", "--database-url", "mysql://x/y"}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "postgres://") {
			t.Fatalf("migrate with a mysql URL: %v", err)
		}
	})
}

// testPostgres creates a schema of the test's own in the test PostgreSQL,
// drops it when the test ends, and returns a URL whose search_path is that
// schema. Unreachable: the test is skipped, or fails when CI=true.
func testPostgres(tb testing.TB) string {
	return pgtest.URL(tb)
}

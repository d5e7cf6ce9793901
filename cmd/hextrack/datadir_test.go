package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDevSecretKept: dev mode without a secret keeps one in the data
// directory (0600, made once, the same for nodes starting together); a
// file hextrack did not write stops the start; outside dev mode, or with a
// secret given, nothing is read or written.
func TestDevSecretKept(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	good := "k9Qz7x2LmP4vW8nR1tY6uB3cE5fH0jA2"

	t.Run("made once, kept", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		var (
			wg      sync.WaitGroup
			secrets [4]string
		)
		for i := range secrets {
			wg.Go(func() {
				c := Config{Dev: true, DataDir: dir}
				if err := c.keptDevSecret(log); err != nil {
					t.Error(err)
				}
				secrets[i] = c.JWTSecret
			})
		}
		wg.Wait()
		for _, s := range secrets[1:] {
			if len(s) < 32 || s != secrets[0] {
				t.Fatalf("nodes starting together got secrets %q", secrets)
			}
		}
		fi, err := os.Stat(filepath.Join(dir, devSecretFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("jwt-secret: %v %v, want mode 0600", err, fi.Mode())
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("the data dir holds %d files, want jwt-secret alone (no temp file left)", len(ents))
		}
		c := Config{Dev: true, DataDir: dir}
		if err := c.keptDevSecret(log); err != nil || c.JWTSecret != secrets[0] {
			t.Fatalf("a restart got %q, %v; want the kept secret", c.JWTSecret, err)
		}
	})
	t.Run("not one hextrack wrote", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, devSecretFile), []byte("short\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c := Config{Dev: true, DataDir: dir}
		if err := c.keptDevSecret(log); !errors.Is(err, errCorruptSecret) || !strings.Contains(err.Error(), "remove it") {
			t.Fatalf("keptDevSecret over a short file: %v", err)
		}
	})
	t.Run("data dir not writable: random", func(t *testing.T) {
		blocker := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(blocker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c := Config{Dev: true, DataDir: filepath.Join(blocker, "dir")}
		if err := c.keptDevSecret(log); err != nil || c.JWTSecret != "" {
			t.Fatalf("keptDevSecret = %v, secret %q; want no error and checkSecret to make one", err, c.JWTSecret)
		}
		if err := c.checkSecret(); err != nil || len(c.JWTSecret) < 32 {
			t.Fatalf("checkSecret: %v, secret %q", err, c.JWTSecret)
		}
	})
	for _, tc := range []struct {
		name string
		c    Config
	}{
		{"production", Config{Dev: false, RedisURL: "redis://127.0.0.1:6379"}},
		{"production with a secret", Config{Dev: false, JWTSecret: good, RedisURL: "redis://127.0.0.1:6379"}},
		{"dev with a secret", Config{Dev: true, JWTSecret: good}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := tc.c
			c.DataDir = dir
			if err := c.keptDevSecret(log); err != nil || c.JWTSecret != tc.c.JWTSecret {
				t.Fatalf("keptDevSecret = %v, secret %q; want it untouched", err, c.JWTSecret)
			}
			if _, err := os.Stat(filepath.Join(dir, devSecretFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a secret file was written: %v", err)
			}
			if !tc.c.Dev && tc.c.JWTSecret == "" && c.checkSecret() == nil {
				t.Fatal("production without a secret started")
			}
		})
	}
}

// TestArchiveSettings: the flags' env variables, the default data dir, the
// archive's place, and a URL that is no database refused.
func TestArchiveSettings(t *testing.T) {
	t.Setenv("HEXTRACK_DATABASE_URL_FILE", "")
	t.Setenv("HEXTRACK_DATA_DIR", "")
	t.Setenv("HEXTRACK_DATABASE_URL", "")
	t.Setenv("XDG_DATA_HOME", "/xdg")
	if d := defaultDataDir(); d != filepath.Join("/xdg", "hextrack") {
		t.Fatalf("defaultDataDir with XDG_DATA_HOME = %q", d)
	}
	t.Setenv("XDG_DATA_HOME", "relative") // ignored, as the XDG spec says
	if d := defaultDataDir(); d == "" || strings.Contains(d, "relative") {
		t.Fatalf("defaultDataDir with a relative XDG_DATA_HOME = %q", d)
	}
	c, err := parseServe(nil)
	if err != nil || c.DataDir != defaultDataDir() || c.DatabaseURL != "" || c.archiveURL() != filepath.Join(defaultDataDir(), "archive.db") {
		t.Fatalf("defaults: data dir %q, url %q, archive %q, %v", c.DataDir, c.DatabaseURL, c.archiveURL(), err)
	}
	t.Setenv("HEXTRACK_DATA_DIR", "/srv/hx")
	t.Setenv("HEXTRACK_DATABASE_URL", "postgres://hx:pw@db:5432/hx")
	c, err = parseServe(nil)
	if err != nil || c.DataDir != "/srv/hx" || c.archiveURL() != "postgres://hx:pw@db:5432/hx" {
		t.Fatalf("from env: data dir %q, archive %q, %v", c.DataDir, c.archiveURL(), err)
	}
	c, err = parseServe([]string{"--data-dir", "/d", "--database-url", ""})
	if err != nil || c.archiveURL() != filepath.Join("/d", "archive.db") {
		t.Fatalf("flags over env: archive %q, %v", c.archiveURL(), err)
	}
	if n := archiveName("postgres://hx:pw@db:5432/hx"); strings.Contains(n, "pw") {
		t.Fatalf("archiveName shows the password: %s", n)
	}
	for _, u := range []string{"mysql://db/hx", "/var/lib/archive.db", "redis://x"} {
		if _, err := parseServe([]string{"--database-url", u}); err == nil {
			t.Errorf("--database-url %q was accepted", u)
		}
	}
	if _, err := parseServe([]string{"--database-url", "sqlite:/var/lib/hx.db"}); err != nil {
		t.Errorf("--database-url sqlite:PATH refused: %v", err)
	}
}

// TestArchiveOpensLater: an archive that cannot be opened at start is
// opened in the background once it can (here: its directory is blocked
// by a file, then freed); Ping follows.
func TestArchiveOpensLater(t *testing.T) {
	root := t.TempDir()
	blocker := filepath.Join(root, "state")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := openArchive(ctx, filepath.Join(blocker, archiveFile), slog.New(slog.DiscardHandler))
	defer a.Close()
	if a.Store() != nil || a.Ping(ctx) == nil {
		t.Fatal("an archive that cannot be opened answers")
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the archive was not opened once it could be: %v", a.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a.Store() == nil || a.Err() != nil {
		t.Fatalf("open archive: store %v, err %v", a.Store(), a.Err())
	}
}

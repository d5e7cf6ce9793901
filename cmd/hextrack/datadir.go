package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// The files a node keeps in its data directory (--data-dir).
const (
	archiveFile   = "archive.db" // the SQLite archive, when no DatabaseURL is given
	devSecretFile = "jwt-secret" // dev mode's JWT secret, when none is given
)

// defaultDataDir is where `make run` keeps its state between starts: the
// user's data directory ($XDG_DATA_HOME/hextrack, else
// ~/.local/share/hextrack; on macOS ~/Library/Application Support/hextrack,
// on Windows %AppData%\hextrack), or ./.hextrack without a home directory.
func defaultDataDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "hextrack")
	}
	switch runtime.GOOS {
	case "darwin", "ios", "windows", "plan9":
		if d, err := os.UserConfigDir(); err == nil {
			return filepath.Join(d, "hextrack")
		}
	default:
		if h, err := os.UserHomeDir(); err == nil && filepath.IsAbs(h) {
			return filepath.Join(h, ".local", "share", "hextrack")
		}
	}
	return ".hextrack"
}

// randomSecret is a new 256-bit secret, hex-encoded.
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// errCorruptSecret: the data directory holds a jwt-secret file hextrack
// did not write. The node refuses to start rather than replace it.
var errCorruptSecret = errors.New("not a secret hextrack wrote")

// keptDevSecret fills an empty JWT secret in dev mode from the data
// directory (creating it there at the first start), so a restart keeps the
// tokens it issued valid. Outside dev mode, with a secret given or without
// a data directory it does nothing (checkSecret then refuses or makes a
// random one). A data directory that cannot be written only costs that:
// it is logged and the secret is random.
func (c *Config) keptDevSecret(log *slog.Logger) error {
	if !c.Dev || c.JWTSecret != "" || c.DataDir == "" {
		return nil
	}
	s, err := devSecret(c.DataDir)
	switch {
	case err == nil:
		c.JWTSecret = s
	case errors.Is(err, errCorruptSecret):
		return err
	default:
		log.Warn("dev mode: cannot keep the JWT secret in the data directory; tokens will not survive a restart", "err", err)
	}
	return nil
}

// devSecret returns the secret kept in dir/jwt-secret, creating it (0600)
// when missing. Two nodes starting together on one directory agree: the
// file appears whole or not at all (written aside, then hard-linked into
// place, which fails if another got there first).
func devSecret(dir string) (string, error) {
	path := filepath.Join(dir, devSecretFile)
	if s, err := readDevSecret(path); !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, devSecretFile+".*")
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	defer os.Remove(tmp.Name())
	s := randomSecret()
	_, err = tmp.WriteString(s + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readDevSecret(path)
		}
		return "", fmt.Errorf("data dir: %w", err)
	}
	return s, nil
}

// readDevSecret reads a kept secret; one shorter than 32 characters is
// not one hextrack wrote (errCorruptSecret).
func readDevSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if len(s) < 32 {
		return "", fmt.Errorf("%s: %w (fewer than 32 characters): remove it to have a new one made", path, errCorruptSecret)
	}
	return s, nil
}

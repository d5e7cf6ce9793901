// Package shareddata locates the real data files the tests use
// (OpenStreetMap extracts, taxi trips): they are vendored in the module
// root's testdata/ folder with their licences (testdata/README.md), so a
// clone needs nothing outside itself.
package shareddata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// EnvDir names an environment variable that, when set, is the folder to
// read the data from instead of the module's testdata/.
const EnvDir = "HEXTRACK_TESTDATA"

// Dir is the folder the data files are read from.
func Dir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	_, this, _, _ := runtime.Caller(0) // <root>/internal/shareddata/shareddata.go
	return filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(this))), "testdata")
}

// Path returns the path of the data file name. A missing file fails the
// test: it is part of the repository, so its absence is a broken clone
// (or a wrong HEXTRACK_TESTDATA), never a reason to skip.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(Dir(), name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("test data missing: %v (the repository's testdata/ holds it; %s=%q)", err, EnvDir, os.Getenv(EnvDir))
	}
	return p
}

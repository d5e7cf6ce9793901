// Package shareddata locates the real data files kept beside the project in
// ../shared/data (OpenStreetMap extracts, taxi trips). They are never part of
// the repository; tests find them relative to the module root.
package shareddata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Path returns the path of ../shared/data/name seen from the module root. A
// missing file fails the test under CI=true and skips it otherwise.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	_, this, _, _ := runtime.Caller(0) // internal/shareddata/shareddata.go
	root := filepath.Dir(filepath.Dir(filepath.Dir(this)))
	p := filepath.Join(root, "..", "shared", "data", name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("test data missing (CI=true): %v", err)
		}
		tb.Skipf("test data missing: %v", err)
	}
	return p
}

// Package redistest gives tests a real Redis with a key prefix of their own.
//
// The server is HEXTRACK_TEST_REDIS_URL, or redis://127.0.0.1:6379/0. When it
// is unreachable a test fails under CI=true and is skipped otherwise. Every
// key under the prefix is deleted when the test ends.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// URL is the Redis URL tests use.
func URL() string {
	if u := os.Getenv("HEXTRACK_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// MustOpen returns a client of the test Redis and a unique key prefix
// ("t:<name>:<random>:") whose keys are removed at cleanup.
func MustOpen(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	opt, err := redis.ParseURL(URL())
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		Unavailable(tb, "redis at "+URL()+": "+err.Error())
	}
	prefix := Prefix(tb)
	tb.Cleanup(func() {
		Clean(rdb, prefix)
		_ = rdb.Close()
	})
	return rdb, prefix
}

// Prefix returns a unique key prefix for tb.
func Prefix(tb testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", "_", " ", "_", "{", "", "}", "").Replace(tb.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return "t:" + name + ":" + hex.EncodeToString(b) + ":"
}

// Clean deletes every key starting with prefix.
func Clean(rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			rdb.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		rdb.Unlink(ctx, batch...)
	}
}

// Unavailable fails the test under CI=true and skips it otherwise.
func Unavailable(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("required test dependency missing (CI=true): %s", why)
	}
	tb.Skipf("skipping: %s", why)
}

// Package geotest holds test helpers that look inside geo/georedis's Redis layout.
package geotest

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// CellsOf returns the r9 cell sets under prefix that hold member id.
func CellsOf(ctx context.Context, tb testing.TB, rdb redis.UniversalClient, prefix, id string) []string {
	tb.Helper()
	var out []string
	iter := rdb.Scan(ctx, 0, prefix+"geo:*:c:*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if _, err := rdb.ZScore(ctx, key, id).Result(); err == nil {
			out = append(out, key[strings.LastIndex(key, ":")+1:])
		}
	}
	if err := iter.Err(); err != nil {
		tb.Fatalf("scan: %v", err)
	}
	return out
}

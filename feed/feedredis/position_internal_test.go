package feedredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
)

// BenchmarkPositionCheck is one tick of the position check on a node
// watching 4,750 trips (make bench fan-out's), each with an event and a
// live subscriber, none behind: the pipelined read of every stream's last
// ID and the comparison. Real Redis on loopback (HEXTRACK_TEST_REDIS_ADDR
// or 127.0.0.1:6379; skipped when unreachable outside CI).
func BenchmarkPositionCheck(b *testing.B) {
	addr := os.Getenv("HEXTRACK_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatal(err)
		}
		b.Skip(err)
	}
	br := New(rdb, Config{PositionCheck: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer br.Close()
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	const trips = 4750
	topics := make([]string, trips)
	for i := range topics {
		topics[i] = "trip:bpc_" + hex.EncodeToString(rb[:]) + "_" + hex.EncodeToString([]byte{byte(i >> 8), byte(i)})
		if _, err := br.Publish(ctx, feed.Publication{Topic: topics[i], Type: "trip.eta", Data: []byte(`{"eta_s":312,"arrive_at":"2026-12-07T00:10:00Z","distance_m":2300,"route_version":7,"leg":"pickup"}`)}); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for _, tp := range topics {
			rdb.Del(ctx, feed.StreamKey("", tp))
		}
	}()
	for _, tp := range topics {
		s, err := br.Subscribe(ctx, tp, "")
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
	}
	seen := br.hub.checkPositions(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		seen = br.hub.checkPositions(seen)
	}
	b.StopTimer()
	if n := len(seen); n != trips {
		b.Fatalf("%d positions read, want %d", n, trips)
	}
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/internal/redistest"
)

// TestCheckLost: an entry appended just before its stream is read and
// delivered a few milliseconds after (the bench's 4 "lost" trip.eta events:
// the server still estimates held moves after the last ping) is late, not
// lost, once the check waits after the read; the former check, comparing
// right after the read (grace 0), counted it lost. An entry never
// delivered is lost either way.
func TestCheckLost(t *testing.T) {
	rdb, _ := redistest.MustOpen(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		grace         time.Duration
		deliver       bool
		lost, lateAtR int64
	}{
		{"delivered 50 ms after the read, grace 400 ms", 400 * time.Millisecond, true, 0, 1},
		{"delivered 50 ms after the read, grace 0 (the former check)", 0, true, 1, 1},
		{"never delivered", 400 * time.Millisecond, false, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, 6)
			_, _ = rand.Read(b)
			trip := &fanTrip{Trip: "t_lostcheck_" + hex.EncodeToString(b)}
			key := feed.StreamKey(prefix, "trip:"+trip.Trip)
			t.Cleanup(func() { rdb.Del(context.Background(), key) })
			add := func(typ string) string {
				id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"type", typ, "data", "{}"}}).Result()
				if err != nil {
					t.Fatal(err)
				}
				return id
			}
			v := &viewer{t: trip, start: add("trip.created")}
			v.got(add("trip.message"))
			late := add("trip.eta")
			if tc.deliver {
				go func() {
					time.Sleep(50 * time.Millisecond)
					v.got(late)
				}()
			}
			var res RidersResult
			if err := checkLost(ctx, redistest.URL(), []*fanTrip{trip}, []*viewer{v}, tc.grace, &res); err != nil {
				t.Fatal(err)
			}
			if res.Durable != 2 || res.Lost != tc.lost || res.LateAtRead != tc.lateAtR || res.Dups != 0 || res.OutOfOrder != 0 {
				t.Fatalf("durable %d lost %d late %d dups %d order %d; want 2, %d, %d, 0, 0",
					res.Durable, res.Lost, res.LateAtRead, res.Dups, res.OutOfOrder, tc.lost, tc.lateAtR)
			}
			if len(res.LateSample) != 1 || res.LateSample[0].ID != late || res.LateSample[0].Type != "trip.eta" {
				t.Fatalf("late sample %+v, want %s trip.eta", res.LateSample, late)
			}
			if arrived := res.LateSample[0].ArrivedMsLate >= 0; arrived != (tc.deliver && tc.grace > 0) {
				t.Fatalf("late sample %+v: arrived %v", res.LateSample[0], arrived)
			}
		})
	}
}

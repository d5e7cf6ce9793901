package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/internal/redistest"
)

// backends are the Redis servers the bucket must behave the same on: a
// real Redis (as deployed) and miniredis (the embedded default of make run).
func backends(t *testing.T) map[string]func(t *testing.T) (redis.UniversalClient, string) {
	return map[string]func(t *testing.T) (redis.UniversalClient, string){
		"redis": func(t *testing.T) (redis.UniversalClient, string) {
			rdb, prefix := redistest.MustOpen(t)
			return rdb, prefix
		},
		"miniredis": func(t *testing.T) (redis.UniversalClient, string) {
			mr := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			return rdb, "t:"
		},
	}
}

// clock is a settable now for the bucket.
type clock struct{ t time.Time }

func (c *clock) now() time.Time           { return c.t }
func (c *clock) add(d time.Duration)      { c.t = c.t.Add(d) }
func newClock() *clock                    { return &clock{t: time.UnixMilli(1_700_000_000_000)} }
func (c *clock) bucket(b *Bucket) *Bucket { b.now = c.now; return b }

func TestTake(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			rdb, prefix := open(t)
			take := func(t *testing.T, b *Bucket, key string, cost int) time.Duration {
				t.Helper()
				w, err := b.Take(ctx, key, 2, 3, cost)
				if err != nil {
					t.Fatal(err)
				}
				return w
			}

			t.Run("burst then refused with the wait for one token", func(t *testing.T) {
				c := newClock()
				b := c.bucket(New(rdb, prefix))
				for i := range 3 {
					if w := take(t, b, "rl:{a}", 1); w != 0 {
						t.Fatalf("take %d of the burst: wait %v", i+1, w)
					}
				}
				if w := take(t, b, "rl:{a}", 1); w != 500*time.Millisecond {
					t.Fatalf("4th take: wait %v, want 500ms (one token at 2/s)", w)
				}
				c.add(499 * time.Millisecond)
				// 1ms, rounded up (the float tokens may be a hair short).
				if w := take(t, b, "rl:{a}", 1); w < time.Millisecond || w > 2*time.Millisecond {
					t.Fatalf("after 499ms: wait %v, want 1-2ms", w)
				}
				c.add(time.Millisecond)
				if w := take(t, b, "rl:{a}", 1); w != 0 {
					t.Fatalf("after 500ms: wait %v, want a token", w)
				}
			})

			t.Run("a refusal takes nothing", func(t *testing.T) {
				c := newClock()
				b := c.bucket(New(rdb, prefix))
				if w := take(t, b, "rl:{b}", 3); w != 0 {
					t.Fatalf("whole burst: wait %v", w)
				}
				for range 5 { // refused again and again: the bucket must not go negative
					if w := take(t, b, "rl:{b}", 2); w != time.Second {
						t.Fatalf("cost 2 on an empty bucket: wait %v, want 1s", w)
					}
				}
				c.add(time.Second)
				if w := take(t, b, "rl:{b}", 2); w != 0 {
					t.Fatalf("after 1s: wait %v, want the 2 tokens refilled", w)
				}
			})

			t.Run("refill stops at burst", func(t *testing.T) {
				c := newClock()
				b := c.bucket(New(rdb, prefix))
				take(t, b, "rl:{c}", 1)
				c.add(time.Hour)
				if w := take(t, b, "rl:{c}", 3); w != 0 {
					t.Fatalf("full bucket: wait %v", w)
				}
				if w := take(t, b, "rl:{c}", 1); w == 0 {
					t.Fatal("a bucket refilled past its burst")
				}
			})

			t.Run("a cost above burst is always refused", func(t *testing.T) {
				b := newClock().bucket(New(rdb, prefix))
				if w := take(t, b, "rl:{d}", 4); w != 500*time.Millisecond {
					t.Fatalf("cost 4 on a burst of 3: wait %v, want 500ms", w)
				}
			})

			t.Run("keys are separate and expire once full again", func(t *testing.T) {
				b := newClock().bucket(New(rdb, prefix))
				take(t, b, "rl:{e1}", 3)
				if w := take(t, b, "rl:{e2}", 3); w != 0 {
					t.Fatalf("another key shares the bucket: wait %v", w)
				}
				ttl, err := rdb.PTTL(ctx, prefix+"rl:{e1}").Result()
				if err != nil {
					t.Fatal(err)
				}
				// burst/rate = 1.5s to refill, plus 1s.
				if ttl <= 2*time.Second || ttl > 2500*time.Millisecond {
					t.Fatalf("bucket TTL %v, want (2s, 2.5s]", ttl)
				}
			})

			t.Run("no rate is no limit and no Redis", func(t *testing.T) {
				b := New(nil, prefix)
				for range 10 {
					if w, err := b.Take(ctx, "rl:{f}", -1, 1, 5); w != 0 || err != nil {
						t.Fatalf("off: wait %v err %v", w, err)
					}
				}
			})
		})
	}
}

// TestTakeRedisDown: a Redis failure is an error, never a wait.
func TestTakeRedisDown(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	mr.Close()
	w, err := New(rdb, "t:").Take(context.Background(), "rl:{x}", 1, 1, 1)
	if err == nil || w != 0 {
		t.Fatalf("redis down: wait %v err %v, want an error", w, err)
	}
}

package feedredis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/feed"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// redisAddr is the real Redis the tests use; override with HEXTRACK_TEST_REDIS_ADDR.
func redisAddr() string {
	if a := os.Getenv("HEXTRACK_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// MustOpenRedis returns a client of the real test Redis. It fails the test
// when Redis is unreachable under CI=true, and skips otherwise.
func MustOpenRedis(tb testing.TB, opts ...func(*redis.Options)) *redis.Client {
	tb.Helper()
	o := &redis.Options{Addr: redisAddr()}
	for _, f := range opts {
		f(o)
	}
	rdb := redis.NewClient(o)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis at %s unreachable: %v", redisAddr(), err)
		}
		tb.Skipf("redis at %s unreachable: %v", redisAddr(), err)
	}
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// MustOpenBroker returns a broker closed at cleanup, with its own registry.
func MustOpenBroker(tb testing.TB, rdb redis.UniversalClient, cfg feedredis.Config) (*feedredis.Broker, *prometheus.Registry) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	if cfg.Registerer == nil {
		cfg.Registerer = reg
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	b := feedredis.New(rdb, cfg)
	tb.Cleanup(func() { _ = b.Close() })
	return b, reg
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newTopic returns a topic unique to this test run, whose keys are deleted
// at cleanup.
func newTopic(tb testing.TB, rdb redis.UniversalClient) string {
	tb.Helper()
	name := strings.NewReplacer("/", "_", " ", "_", "{", "_", "}", "_", ":", "_").Replace(tb.Name())
	topic := "trip:test_" + name + "_" + randHex(4)
	tb.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, feed.StreamKey("", topic)+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return topic
}

func publishN(tb testing.TB, b *feedredis.Broker, topic string, n int) []string {
	tb.Helper()
	ids := make([]string, 0, n)
	for i := range n {
		id, err := b.Publish(context.Background(), feed.Publication{Topic: topic, Type: "trip.status", Data: seqData(i)})
		if err != nil {
			tb.Fatalf("publish %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	return ids
}

func seqData(i int) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"seq":%d}`, i)) }

// recvN reads n items or fails after d.
func recvN(tb testing.TB, s *feedredis.Subscription, n int, d time.Duration) []feed.Item {
	tb.Helper()
	var items []feed.Item
	timeout := time.After(d)
	for len(items) < n {
		select {
		case it, ok := <-s.C():
			if !ok {
				tb.Fatalf("subscription closed after %d/%d items: %v", len(items), n, s.Err())
			}
			items = append(items, it)
		case <-timeout:
			tb.Fatalf("got %d/%d items within %v", len(items), n, d)
		}
	}
	return items
}

func itemIDs(items []feed.Item) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		if it.Reset {
			ids[i] = "RESET@" + it.Position
		} else {
			ids[i] = it.Event.ID
		}
	}
	return ids
}

func equalIDs(tb testing.TB, got, want []string) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d ids, want %d\n got %v\nwant %v", len(got), len(want), clipList(got), clipList(want))
	}
	for i := range got {
		if got[i] != want[i] {
			tb.Fatalf("id %d: got %s, want %s", i, got[i], want[i])
		}
	}
}

func clipList(s []string) []string {
	if len(s) > 12 {
		return append(append(s[:6:6], "…"), s[len(s)-6:]...)
	}
	return s
}

// counter returns the value of a counter or gauge from reg.
func counter(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var v float64
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				v += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				v += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return v
	}
	tb.Fatalf("metric %s not registered", name)
	return 0
}

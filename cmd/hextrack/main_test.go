package main

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/internal/redistest"
)

// MustRunMain starts Main on 127.0.0.1:0: on the embedded Redis when
// redisURL is empty, else on that Redis with a key prefix of the test's own.
func MustRunMain(tb testing.TB, redisURL string) *Main {
	tb.Helper()
	cfg := Config{Addr: "127.0.0.1:0", RedisURL: redisURL, Dev: true, LogLevel: "warn"}
	if redisURL != "" {
		cfg.Prefix = redistest.Prefix(tb)
	}
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	m := NewMain(cfg, w)
	if err := m.Run(context.Background()); err != nil {
		tb.Fatalf("main: %v", err)
	}
	tb.Cleanup(func() {
		_ = m.Close()
		if redisURL != "" {
			rdb, _ := openRedis(redisURL)
			redistest.Clean(rdb, cfg.Prefix)
			_ = rdb.Close()
		}
	})
	return m
}

// realRedis returns the test Redis URL, failing under CI or skipping when
// it is unreachable.
func realRedis(tb testing.TB) string {
	tb.Helper()
	rdb, _ := redistest.MustOpen(tb)
	_ = rdb
	return redistest.URL()
}

func TestEndToEnd(t *testing.T) {
	for _, tc := range []struct{ name, redis string }{
		{"embedded", ""},
		{"real redis", "real"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := ""
			if tc.redis == "real" {
				url = realRedis(t)
			}
			m := MustRunMain(t, url)
			ctx := context.Background()
			base := "http://" + m.Addr()
			anon := client.New(base, "", nil)
			dtok, err := anon.DevToken(ctx, "driver", "d1", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			rtok, _ := anon.DevToken(ctx, "rider", "r1", time.Hour)
			drv := anon.WithToken(dtok)
			rider := anon.WithToken(rtok)
			now := time.Now()
			res, err := drv.SendLocations(ctx, "d1", []client.Ping{
				{Lat: 41.1496, Lng: -8.6109, TS: now.Add(-2 * time.Second), Seq: 1},
				{Lat: 41.1500, Lng: -8.6109, TS: now.Add(-time.Second), Seq: 2},
				{Lat: 41.1496, Lng: -8.6109, TS: now.Add(-2 * time.Second), Seq: 1},
			})
			if err != nil || res.Accepted != 2 || res.Duplicates != 1 || res.LastSeq != 2 {
				t.Fatalf("send: %+v %v", res, err)
			}
			list, err := rider.Nearby(ctx, 41.1490, -8.6109, 1000, 5)
			if err != nil || len(list) != 1 || list[0].ID != "d1" || list[0].DistanceM < 100 || list[0].DistanceM > 125 {
				t.Fatalf("nearby: %+v %v", list, err)
			}
			st, err := drv.GetDriver(ctx, "d1")
			if err != nil || st.Status != "available" || st.LastSeq != 2 || !st.Fresh {
				t.Fatalf("get: %+v %v", st, err)
			}
			if _, err := drv.SetStatus(ctx, "d1", "offline"); err != nil {
				t.Fatal(err)
			}
			if list, _ := rider.Nearby(ctx, 41.1490, -8.6109, 1000, 5); len(list) != 0 {
				t.Fatalf("offline driver in nearby: %+v", list)
			}
			_, err = rider.SendLocation(ctx, "d1", client.Ping{Lat: 41, Lng: -8, TS: now, Seq: 9})
			var ae *client.Error
			if !errors.As(err, &ae) || ae.Status != 403 {
				t.Fatalf("rider posting a location: %v", err)
			}
		})
	}
}

func TestTakenPortFailsAtStart(t *testing.T) {
	m := MustRunMain(t, "")
	m2 := NewMain(Config{Addr: m.Addr(), LogLevel: "error"}, io.Discard)
	err := m2.Run(context.Background())
	_ = m2.Close()
	if err == nil {
		t.Fatal("a second server on a taken port started")
	}
}

func TestSecretRequiredOutsideDev(t *testing.T) {
	c := Config{RedisURL: "redis://127.0.0.1:6379", JWTSecret: "short"}
	if err := c.checkSecret(); err == nil {
		t.Fatal("a short secret was accepted outside dev mode")
	}
	c.JWTSecret = "k9Qz7x2LmP4vW8nR1tY6uB3cE5fH0jA2"
	if err := c.checkSecret(); err != nil {
		t.Fatalf("a good secret was refused: %v", err)
	}
}

// TestEmbeddedRedisExpiresKeys: leases and dedupe keys rely on TTLs, which
// miniredis only counts down when told; Main's embedded Redis must expire
// keys in real time.
func TestEmbeddedRedisExpiresKeys(t *testing.T) {
	m := MustRunMain(t, "")
	ctx := context.Background()
	if err := m.Redis().Set(ctx, "ttl-probe", "1", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := m.Redis().Exists(ctx, "ttl-probe").Result(); n == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("a key with a 300 ms TTL still exists after 3 s on the embedded Redis")
}

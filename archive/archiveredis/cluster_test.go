package archiveredis_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/archiveredis"
	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
)

// TestOnRedisCluster: marks, leases, cursors, record streams and the index work on a
// three-master Redis Cluster (every script stays in one slot; a
// CROSSSLOT error would fail the pass), two nodes draining it.
func TestOnRedisCluster(t *testing.T) {
	addrs := startCluster(t)
	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	b := feedredis.New(rdb, feedredis.Config{ArchiveMarks: true, ArchiveGrace: grace, PositionCheck: -1, Logger: quiet(t)})
	t.Cleanup(func() { _ = b.Close() })
	dir := t.TempDir()
	s, err := sqlstore.Open(ctx, filepath.Join(dir, "archive.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, node := range []string{"a", "b"} {
		p := archiveredis.New(rdb, s, archiveredis.Config{NodeID: node, Interval: 10 * time.Millisecond,
			LeaseTTL: 600 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Batch: 4, Logger: quiet(t)})
		run(t, p)
	}
	want := map[string][]string{}
	for i := range 12 {
		topic := fmt.Sprintf("trip:c_%d", i)
		for j := range 6 {
			id, err := b.Publish(ctx, feed.Publication{Topic: topic, Type: "trip.status", Data: json.RawMessage(strconv.Itoa(j))})
			if err != nil {
				t.Fatalf("publish: %v", err)
			}
			want[topic] = append(want[topic], id)
		}
	}
	// Record streams: a trip's trail, a driver's status changes.
	for i := range 12 {
		trip, drv := fmt.Sprintf("trip:c_%d", i), fmt.Sprintf("driver:cd_%d", i)
		for _, tp := range []string{trip, drv} {
			if err := b.Mark(ctx, tp); err != nil {
				t.Fatal(err)
			}
		}
		for j := 1; j <= 5; j++ {
			rdb.XAdd(ctx, &redis.XAddArgs{Stream: feedredis.RecordKey("", trip, feedredis.RecordTrail), Values: []any{"seq", j,
				"drv", "cd", "ts", time.Now().UnixMilli(), "lat", "52.5", "lng", "13.4", "acc", "", "spd", "", "hdg", ""}})
			rdb.XAdd(ctx, &redis.XAddArgs{Stream: feedredis.RecordKey("", drv, feedredis.RecordStatus), Values: []any{"status",
				[]string{"available", "offline"}[j%2], "trip", ""}})
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	db, err := sql.Open("sqlite3", filepath.Join(dir, "archive.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for count(t, db, "SELECT COUNT(*) FROM trail_points")+count(t, db, "SELECT COUNT(*) FROM driver_status") < 120 {
		if time.Now().After(deadline) {
			t.Fatalf("records: %d trail points, %d status changes archived, want 60 each",
				count(t, db, "SELECT COUNT(*) FROM trail_points"), count(t, db, "SELECT COUNT(*) FROM driver_status"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for topic, ids := range want {
		for {
			evs, err := s.Events(ctx, archive.EventQuery{Topic: topic, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			got := make([]string, len(evs))
			for i, e := range evs {
				got[i] = e.ID
			}
			if equal(got, ids) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: archived %v, want %v", topic, got, ids)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for {
		var n int64
		for sh := range feedredis.ArchiveShards {
			n += rdb.ZCard(ctx, feedredis.DirtyKey("", sh)).Val()
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dirty index still holds %d topics", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startCluster starts a three-master Redis Cluster on free ports (a copy
// of feed/feedredis's test helper); it skips without redis-server, or fails
// under CI=true.
func startCluster(tb testing.TB) []string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal("redis-server not installed")
		}
		tb.Skip("redis-server not installed")
	}
	dir := tb.TempDir()
	var addrs []string
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		nd := fmt.Sprintf("%s/n%d", dir, i)
		_ = os.MkdirAll(nd, 0o755)
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", nd+"/nodes.conf", "--dir", nd, "--save", "", "--appendonly", "no", "--protected-mode", "no")
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	ctx := context.Background()
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		for i := 0; c.Ping(ctx).Err() != nil; i++ {
			if i > 100 {
				tb.Fatalf("cluster node %s did not start", a)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = c.Close()
	}
	out, err := exec.Command("redis-cli", append([]string{"--cluster", "create"}, append(addrs, "--cluster-replicas", "0", "--cluster-yes")...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		for i := 0; ; i++ {
			info, _ := c.ClusterInfo(ctx).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if i > 200 {
				tb.Fatalf("cluster not ok on %s: %s", a, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = c.Close()
	}
	return addrs
}

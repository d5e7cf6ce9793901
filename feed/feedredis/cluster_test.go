package feedredis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/feed"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// startCluster starts a throwaway 3-master Redis Cluster (redis-server on
// free loopback ports, in a temp dir) and returns its addresses. miniredis
// has no sharded pub/sub, so this is how SSUBSCRIBE/SPUBLISH are tested.
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

func TestCluster(t *testing.T) {
	addrs := startCluster(t)
	newClient := func(name string) *redis.ClusterClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ClientName: name})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	ctx := context.Background()
	nameB := "hx-feed-cluster-b"
	rdbA, rdbB := newClient(""), newClient(nameB)
	a, _ := MustOpenBroker(t, rdbA, feedredis.Config{})
	bNode, regB := MustOpenBroker(t, rdbB, feedredis.Config{ProbeInterval: 100 * time.Millisecond})

	// Topics spread over slots (and so over the three masters).
	topics := make([]string, 6)
	subs := make([]*feedredis.Subscription, len(topics))
	for i := range topics {
		topics[i] = fmt.Sprintf("trip:c%d_%s", i, randHex(3))
		s, err := bNode.Subscribe(ctx, topics[i], "")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		subs[i] = s
	}
	ids := make([][]string, len(topics))
	for i, tp := range topics {
		ids[i] = publishN(t, a, tp, 3)
		if err := a.PublishLive(ctx, tp, "trip.location", json.RawMessage(`{"seq":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range subs {
		items := recvN(t, s, 4, 5*time.Second)
		equalIDs(t, itemIDs(items[:3]), ids[i])
		if items[3].Event.Type != "trip.location" {
			t.Fatalf("topic %d: 4th item %+v", i, items[3])
		}
	}

	t.Run("composed script", func(t *testing.T) {
		tp := topics[0]
		tag, _ := feed.HashTag(tp)
		tripKey := "trip:{" + tag + "}"
		script := feedredis.Script(`
redis.call('HINCRBY', KEYS[1], 'version', 1)
local id = hx_publish(KEYS[2], KEYS[3], ARGV, 1)
return id`)
		fk, fa, err := a.PublishParams(ctx, feed.Publication{Topic: tp, Type: "trip.status", Key: "k1"})
		if err != nil {
			t.Fatal(err)
		}
		id, err := script.Run(ctx, rdbA, append([]string{tripKey}, fk...), fa...).Text()
		if err != nil {
			t.Fatal(err)
		}
		if it := recvN(t, subs[0], 1, 5*time.Second)[0]; it.Event.ID != id {
			t.Fatalf("got %+v, want %s", it, id)
		}
		ids[0] = append(ids[0], id)
	})

	t.Run("resume and read", func(t *testing.T) {
		evs, _, err := bNode.Read(ctx, topics[1], ids[1][0], 10)
		if err != nil {
			t.Fatal(err)
		}
		equalIDs(t, eventIDs(evs), ids[1][1:])
		s, err := bNode.Subscribe(ctx, topics[2], ids[2][0])
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		equalIDs(t, itemIDs(recvN(t, s, 2, 5*time.Second)), ids[2][1:])
	})

	t.Run("pubsub killed on every master", func(t *testing.T) {
		killed := 0
		for _, addr := range addrs {
			admin := redis.NewClient(&redis.Options{Addr: addr})
			killed += killPubSub(t, admin, nameB)
			_ = admin.Close()
		}
		if killed < 2 {
			t.Fatalf("killed %d sharded pub/sub connections, want one per slot in use (>= 2)", killed)
		}
		for i, tp := range topics {
			more := publishN(t, a, tp, 5)
			equalIDs(t, itemIDs(recvN(t, subs[i], 5, 5*time.Second)), more)
		}
		if n := counter(t, regB, "hextrack_feed_resubscribes_total"); n < float64(killed) {
			t.Fatalf("resubscribes = %v, want >= %d", n, killed)
		}
	})
}

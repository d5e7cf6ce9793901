package feedredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
)

// With ArchiveMarks, Publish and PublishParams mark the topic in its shard
// of the dirty index with a deadline Redis time + ArchiveGrace, raised by a
// later mark; without it nothing is written.
func TestArchiveMarks(t *testing.T) {
	rdb := MustOpenRedis(t)
	ctx := context.Background()
	prefix := "t:marks:" + randHex(4) + ":"
	key := func(topic string) string { return feedredis.DirtyKey(prefix, feedredis.DirtyShard(topic)) }
	t.Cleanup(func() {
		for s := range feedredis.ArchiveShards {
			rdb.Del(context.Background(), feedredis.DirtyKey(prefix, s))
		}
	})

	off, _ := MustOpenBroker(t, rdb, feedredis.Config{Prefix: prefix})
	quiet := newTopic(t, rdb)
	publishN(t, off, quiet, 1)
	if err := rdb.ZScore(ctx, key(quiet), quiet).Err(); err == nil {
		t.Fatal("a broker without ArchiveMarks marked its topic")
	}

	on, _ := MustOpenBroker(t, rdb, feedredis.Config{ArchiveMarks: true, Prefix: prefix, ArchiveGrace: time.Minute})
	topic := newTopic(t, rdb)
	before := time.Now()
	publishN(t, on, topic, 1)
	s1, err := rdb.ZScore(ctx, key(topic), topic).Result()
	if err != nil {
		t.Fatalf("Publish did not mark the topic: %v", err)
	}
	if d := time.UnixMilli(int64(s1)).Sub(before); d < 50*time.Second || d > 70*time.Second {
		t.Fatalf("mark deadline %v after the publish, want about ArchiveGrace (1m)", d)
	}
	time.Sleep(3 * time.Millisecond)
	if _, _, err := on.PublishParams(feed.Publication{Topic: topic, Type: "trip.status"}); err != nil {
		t.Fatal(err)
	}
	if s2 := rdb.ZScore(ctx, key(topic), topic).Val(); s2 <= s1 {
		t.Fatalf("PublishParams did not raise the mark: %v then %v", s1, s2)
	}
	if n := feedredis.DirtyShard(topic); n < 0 || n >= feedredis.ArchiveShards {
		t.Fatalf("shard %d out of range", n)
	}
	if k := feedredis.ArchivedKey(prefix, topic); k != feed.StreamKey(prefix, topic)+":archived" {
		t.Fatalf("ArchivedKey = %q", k)
	}
}

package feedredis_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hextrack/hextrack/feed"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// Subscribers that stop reading are dropped with ErrSlowConsumer; a reading
// subscriber and the publisher are unaffected; memory stays bounded; a
// dropped subscriber resumes by ID without loss.
func TestSlowConsumerDropped(t *testing.T) {
	rdb := MustOpenRedis(t)
	const buf = 256
	b, reg := MustOpenBroker(t, rdb, feedredis.Config{BufferSize: buf, StallTimeout: 500 * time.Millisecond})
	topic := newTopic(t, rdb)
	ctx := context.Background()

	const stalled = 50
	slow := make([]*feedredis.Subscription, stalled)
	for i := range slow {
		s, err := b.Subscribe(ctx, topic, "")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		slow[i] = s
	}
	fast, err := b.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	const total = 1000
	var fastGot []string
	var wg sync.WaitGroup
	wg.Go(func() { fastGot = itemIDs(recvN(t, fast, total, 20*time.Second)) })

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	payload := `{"blob":"` + strings.Repeat("x", 4096) + `"}`
	var ids []string
	var slowest time.Duration
	for range total {
		start := time.Now()
		id, err := b.Publish(ctx, feed.Publication{Topic: topic, Type: "trip.eta", Data: []byte(payload)})
		if err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(start))
		ids = append(ids, id)
	}
	wg.Wait()
	equalIDs(t, fastGot, ids)
	if slowest > time.Second {
		t.Fatalf("a publish took %v: publishers must not wait for subscribers", slowest)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// Unbounded queues would hold 50 × 1000 × 4 KiB ≈ 200 MB; bounded ones
	// hold at most 50 × 256 items sharing the payloads (~1 MB).
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 32<<20 {
		t.Fatalf("heap grew by %d MiB", grown>>20)
	}
	for i, s := range slow {
		if n := len(s.C()); n > buf {
			t.Fatalf("slow %d buffers %d items > %d", i, n, buf)
		}
		var last string
		for it := range s.C() { // drains the buffer, then sees the close
			last = it.Event.ID
		}
		if !errors.Is(s.Err(), feed.ErrSlowConsumer) {
			t.Fatalf("slow %d: Err = %v, want ErrSlowConsumer", i, s.Err())
		}
		if i == 0 { // it resumes by ID and gets the rest, in order
			r, err := b.Subscribe(ctx, topic, last)
			if err != nil {
				t.Fatal(err)
			}
			rest := ids[buf:]
			if last != ids[buf-1] {
				t.Fatalf("dropped subscriber's last item %s, want %s", last, ids[buf-1])
			}
			equalIDs(t, itemIDs(recvN(t, r, len(rest), 10*time.Second)), rest)
			r.Close()
		}
	}
	if n := counter(t, reg, "hextrack_feed_slow_consumer_drops_total"); n != stalled {
		t.Fatalf("drops = %v, want %d", n, stalled)
	}
	if n := counter(t, reg, "hextrack_feed_subscribers"); n != 1 {
		t.Fatalf("subscribers gauge = %v, want 1 (the fast one)", n)
	}
	if n := counter(t, reg, "hextrack_feed_delivery_lag_seconds"); n < total {
		t.Fatalf("lag histogram has %v samples, want >= %d", n, total)
	}
}

// A consumer that stops reading while still catching up is dropped after
// StallTimeout instead of holding its goroutine forever.
func TestStalledDuringCatchUp(t *testing.T) {
	rdb := MustOpenRedis(t)
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{BufferSize: 4, ReadChunk: 8, StallTimeout: 100 * time.Millisecond})
	topic := newTopic(t, rdb)
	publishN(t, b, topic, 50)
	sub, err := b.Subscribe(context.Background(), topic, "0-0")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	time.Sleep(300 * time.Millisecond)
	n := 0
	for range sub.C() {
		n++
	}
	if n != 4 || !errors.Is(sub.Err(), feed.ErrSlowConsumer) {
		t.Fatalf("got %d items then %v; want 4 then ErrSlowConsumer", n, sub.Err())
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	rdb := MustOpenRedis(t)
	b := feedredis.New(rdb, feedredis.Config{})
	topic := newTopic(t, rdb)
	sub, err := b.Subscribe(context.Background(), topic, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range sub.C() {
	}
	if !errors.Is(sub.Err(), feed.ErrClosed) {
		t.Fatalf("Err = %v, want ErrClosed", sub.Err())
	}
	if _, err := b.Subscribe(context.Background(), topic, ""); !errors.Is(err, feed.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

// The embedded miniredis (no sharded pub/sub, partial XINFO) runs the same
// code path.
func TestEmbeddedMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{MaxLen: -1})
	ctx := context.Background()
	topic := "trip:embedded"

	sub, err := b.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if sub.Position() != "0-0" {
		t.Fatalf("Position = %s", sub.Position())
	}
	ids := publishN(t, b, topic, 5)
	equalIDs(t, itemIDs(recvN(t, sub, 5, 5*time.Second)), ids)
	if again, err := b.Publish(ctx, feed.Publication{Topic: topic, Type: "a", Key: "k"}); err != nil {
		t.Fatal(err)
	} else if twice, _ := b.Publish(ctx, feed.Publication{Topic: topic, Type: "a", Key: "k"}); twice != again {
		t.Fatalf("idempotent publish: %s then %s", again, twice)
	} else {
		ids = append(ids, again)
	}
	res, err := b.Subscribe(ctx, topic, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	equalIDs(t, itemIDs(recvN(t, res, 4, 5*time.Second)), ids[2:])
	// Trim by hand: resuming from a trimmed ID resets; from the boundary does not.
	if err := rdb.XTrimMaxLen(ctx, feed.StreamKey("", topic), 3).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Read(ctx, topic, ids[0], 10); !errors.Is(err, feed.ErrTrimmed) {
		t.Fatalf("Read trimmed: %v", err)
	}
	evs, _, err := b.Read(ctx, topic, ids[2], 10)
	if err != nil {
		t.Fatal(err)
	}
	equalIDs(t, eventIDs(evs), ids[3:])
	reset, err := b.Subscribe(ctx, topic, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	defer reset.Close()
	if it := recvN(t, reset, 1, 5*time.Second)[0]; !it.Reset || it.Position != ids[len(ids)-1] {
		t.Fatalf("item = %+v, want reset", it)
	}
	evs, _, err = b.Wait(ctx, topic, ids[len(ids)-1], 10, 50*time.Millisecond)
	if err != nil || len(evs) != 0 {
		t.Fatalf("Wait = %v, %v", evs, err)
	}
}

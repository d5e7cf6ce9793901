package feedredis_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hextrack/hextrack/feed"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// appendSilently appends a durable event to topic's stream exactly as
// Publish writes it (type, ts, data, prev = the previous last ID) but
// without its pub/sub notice: what a subscriber sees when the notice is
// lost.
func appendSilently(tb testing.TB, rdb redis.UniversalClient, topic, typ string, data json.RawMessage) string {
	tb.Helper()
	ctx := context.Background()
	stream := feed.StreamKey("", topic)
	prev := ""
	last, err := rdb.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		tb.Fatal(err)
	}
	if len(last) > 0 {
		prev = last[0].ID
	}
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{
		"type", typ, "ts", time.Now().UTC().Format(time.RFC3339Nano), "data", string(data), "prev", prev,
	}}).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// labeled returns the value of counter name{label=value} from reg.
func labeled(tb testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	tb.Fatalf("metric %s{%s=%q} not found", name, label, value)
	return 0
}

// noItem fails if s yields an item within d.
func noItem(tb testing.TB, s *feedredis.Subscription, d time.Duration) {
	tb.Helper()
	select {
	case it, ok := <-s.C():
		if ok {
			tb.Fatalf("unexpected item %+v", it)
		}
		tb.Fatalf("subscription closed: %v", s.Err())
	case <-time.After(d):
	}
}

const (
	checkPeriod = 200 * time.Millisecond
	// checkMargin: scheduling on a loaded 2-core machine under -race (two
	// make test runs at once), on top of the period. The bound stays
	// meaningful: without the check the event never arrives
	// (TestPositionCheckOff), and the position_check counter says which
	// path delivered it.
	checkMargin = time.Second
)

// TestPositionCheck: an event appended without its notice reaches a fresh
// subscriber, a resumed one and a long-poll waiter within the check period,
// exactly once and in order, with no later event of the topic; the next
// normal event follows.
func TestPositionCheck(t *testing.T) {
	testPositionCheck(t, MustOpenRedis(t))
}

func TestPositionCheckCluster(t *testing.T) {
	addrs := startCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = c.Close() })
	testPositionCheck(t, c)
}

func testPositionCheck(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	b, reg := MustOpenBroker(t, rdb, feedredis.Config{PositionCheck: checkPeriod})
	// Several topics, spread over slots (and masters under Cluster): the
	// check reads them all in one pipeline.
	topics := []string{newTopic(t, rdb), newTopic(t, rdb), newTopic(t, rdb)}
	for _, topic := range topics {
		first := publishN(t, b, topic, 2)
		fresh, err := b.Subscribe(ctx, topic, "")
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		resumed, err := b.Subscribe(ctx, topic, first[0])
		if err != nil {
			t.Fatal(err)
		}
		defer resumed.Close()
		equalIDs(t, itemIDs(recvN(t, resumed, 1, 5*time.Second)), first[1:])

		type waitRes struct {
			evs []feed.Event
			at  time.Time
			err error
		}
		waited := make(chan waitRes, 1)
		go func() {
			evs, _, err := b.Wait(ctx, topic, first[1], 10, 10*time.Second)
			waited <- waitRes{evs, time.Now(), err}
		}()
		// The waiter has joined the topic (fresh + resumed + waiter) and,
		// a moment later, made its first read: the lost entry must reach it
		// through the position check, not that read.
		deadline := time.Now().Add(10 * time.Second)
		for feedredis.Listeners(b, topic) < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("the long-poll waiter did not join %s within 10s", topic)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)

		at := time.Now()
		lost := appendSilently(t, rdb, topic, "trip.completed", json.RawMessage(`{"lost":true}`))
		for name, s := range map[string]*feedredis.Subscription{"fresh": fresh, "resumed": resumed} {
			equalIDs(t, itemIDs(recvN(t, s, 1, checkPeriod+checkMargin)), []string{lost})
			t.Logf("%s: %s: lost notice recovered after %v", topic, name, time.Since(at).Round(time.Millisecond))
		}
		w := <-waited
		if w.err != nil {
			t.Fatal(w.err)
		}
		equalIDs(t, eventIDs(w.evs), []string{lost})
		if d := w.at.Sub(at); d > checkPeriod+checkMargin {
			t.Fatalf("long-poll woke after %v, want <= %v", d, checkPeriod+checkMargin)
		}

		// Exactly once: nothing more (another check period passes), then
		// the next normal event, in order.
		noItem(t, fresh, checkPeriod)
		next := publishN(t, b, topic, 1)
		for _, s := range []*feedredis.Subscription{fresh, resumed} {
			equalIDs(t, itemIDs(recvN(t, s, 1, 5*time.Second)), next)
			noItem(t, s, 50*time.Millisecond)
		}
	}
	if n := labeled(t, reg, "hextrack_feed_catchups_total", "trigger", "position_check"); n < float64(3*len(topics)) {
		t.Fatalf("position-check catch-ups = %v, want >= %d (2 subscriptions + 1 waiter per topic)", n, 3*len(topics))
	}
	if n := labeled(t, reg, "hextrack_feed_catchups_total", "trigger", "broken_chain"); n != 0 {
		t.Fatalf("broken-chain catch-ups = %v, want 0", n)
	}
}

// TestPositionCheckOff: without the check, a lost notice stays undelivered
// until the topic's next event, whose broken chain recovers it (what the
// check exists for), and the catch-up is counted as broken_chain.
func TestPositionCheckOff(t *testing.T) {
	rdb := MustOpenRedis(t)
	ctx := context.Background()
	b, reg := MustOpenBroker(t, rdb, feedredis.Config{PositionCheck: -1})
	topic := newTopic(t, rdb)
	s, err := b.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Received: the subscription's first stream read is done.
	first := publishN(t, b, topic, 1)
	equalIDs(t, itemIDs(recvN(t, s, 1, 5*time.Second)), first)
	// Counted from here: how the first event arrived (the subscription's
	// first read, or its notice racing that read on a loaded machine) is
	// not what this test is about.
	before := labeled(t, reg, "hextrack_feed_catchups_total", "trigger", "broken_chain")
	lost := appendSilently(t, rdb, topic, "trip.completed", nil)
	noItem(t, s, 3*checkPeriod)
	next := publishN(t, b, topic, 1)
	equalIDs(t, itemIDs(recvN(t, s, 2, 5*time.Second)), []string{lost, next[0]})
	if n := labeled(t, reg, "hextrack_feed_catchups_total", "trigger", "broken_chain") - before; n != 1 {
		t.Fatalf("broken-chain catch-ups for the lost notice = %v, want 1", n)
	}
	if n := labeled(t, reg, "hextrack_feed_catchups_total", "trigger", "position_check"); n != 0 {
		t.Fatalf("position-check catch-ups = %v, want 0", n)
	}
}

// TestPositionCheckQuiet: normal traffic (every notice arrives) causes no
// position-check catch-up.
func TestPositionCheckQuiet(t *testing.T) {
	rdb := MustOpenRedis(t)
	ctx := context.Background()
	b, reg := MustOpenBroker(t, rdb, feedredis.Config{PositionCheck: checkPeriod})
	topic := newTopic(t, rdb)
	s, err := b.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ids []string
	for range 20 {
		ids = append(ids, publishN(t, b, topic, 1)...)
		time.Sleep(checkPeriod / 8)
	}
	equalIDs(t, itemIDs(recvN(t, s, len(ids), 5*time.Second)), ids)
	noItem(t, s, 2*checkPeriod)
	if n := labeled(t, reg, "hextrack_feed_catchups_total", "trigger", "position_check"); n != 0 {
		t.Fatalf("position-check catch-ups = %v, want 0", n)
	}
}

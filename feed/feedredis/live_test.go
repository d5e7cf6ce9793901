package feedredis_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hextrack/hextrack/feed"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// liveScript stores a counter in a key of the topic's slot and publishes
// the data live with the counter as its sequence, in one script, as
// trip.location does. KEYS: the counter (same hash tag as the stream).
// ARGV: 1 data whose "__SEQ__" becomes the counter, 2.. LiveParams.
var liveScript = feedredis.Script(`
local seq = redis.call('INCR', KEYS[1])
hx_publish_live(ARGV, 2, seq, (string.gsub(ARGV[1], '__SEQ__', tostring(seq), 1)))
return seq
`)

// TestLiveFromScript: hx_publish_live sends a live message with a typed
// sequence (Event.Seq) from inside a script; PublishSeq sends the same
// from Go; neither is stored, and the envelope is unchanged (no id, no
// seq outside the data).
func TestLiveFromScript(t *testing.T) {
	rdb := MustOpenRedis(t)
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{})
	topic := newTopic(t, rdb)
	ctx := context.Background()
	sub, err := b.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Let the subscription go live (a durable event delivered) first.
	first := publishN(t, b, topic, 1)
	equalIDs(t, itemIDs(recvN(t, sub, 1, 5*time.Second)), first)

	ts := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	args, err := b.LiveParams(topic, "trip.location", ts)
	if err != nil || len(args) != feedredis.LiveArgc {
		t.Fatalf("LiveParams: %v, %d args (want %d)", err, len(args), feedredis.LiveArgc)
	}
	// The counter shares the stream's hash tag (the topic's slot).
	counter := feed.StreamKey("", topic) + ":livecounter"
	t.Cleanup(func() { rdb.Del(context.Background(), counter) })
	for range 2 {
		if err := liveScript.Run(ctx, rdb, []string{counter}, append([]any{`{"seq":__SEQ__,"lat":1.5}`}, args...)...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.PublishSeq(ctx, topic, "trip.location", 9, json.RawMessage(`{"seq":9}`)); err != nil {
		t.Fatal(err)
	}
	items := recvN(t, sub, 3, 5*time.Second)
	for i, want := range []struct {
		seq  int64
		data string
	}{{1, `{"seq":1,"lat":1.5}`}, {2, `{"seq":2,"lat":1.5}`}, {9, `{"seq":9}`}} {
		ev := items[i].Event
		if ev.Durable() || ev.Type != "trip.location" || ev.Topic != topic || ev.Seq != want.seq || string(ev.Data) != want.data {
			t.Fatalf("item %d = %+v (data %s), want live seq %d data %s", i, ev, ev.Data, want.seq, want.data)
		}
	}
	if !items[0].Event.TS.Equal(ts) {
		t.Fatalf("ts %v, want %v", items[0].Event.TS, ts)
	}
	raw, err := items[0].JSON()
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if _, has := env["id"]; has || len(env) != 4 {
		t.Fatalf("live envelope %s: want type, topic, ts and data only", raw)
	}
	if n, err := rdb.XLen(ctx, feed.StreamKey("", topic)).Result(); err != nil || n != 1 {
		t.Fatalf("stream holds %d entries (%v): live messages were stored", n, err)
	}

	// Unsequenced live messages (PublishLive) carry Seq 0.
	if err := b.PublishLive(ctx, topic, "session.replaced", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if it := recvN(t, sub, 1, 5*time.Second)[0]; it.Event.Seq != 0 || it.Event.Type != "session.replaced" {
		t.Fatalf("PublishLive item %+v: want seq 0", it.Event)
	}

	// Bad parameters are refused before anything is sent.
	if _, err := b.LiveParams("trip:", "trip.location", ts); err == nil {
		t.Fatal("LiveParams accepted a malformed topic")
	}
	if _, err := b.LiveParams(topic, "bad type!", ts); err == nil {
		t.Fatal("LiveParams accepted a malformed type")
	}
	if err := b.PublishSeq(ctx, topic, "trip.location", 1, json.RawMessage(`{`)); err == nil {
		t.Fatal("PublishSeq accepted invalid JSON")
	}
}

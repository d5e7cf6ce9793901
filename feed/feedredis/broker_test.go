package feedredis_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hextrack/hextrack/feed"

	"github.com/hextrack/hextrack/feed/feedredis"
)

func TestPublishReadOrder(t *testing.T) {
	rdb := MustOpenRedis(t)
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{})
	topic := newTopic(t, rdb)
	ctx := context.Background()

	ids := publishN(t, b, topic, 25)
	for i := 1; i < len(ids); i++ {
		if c, _ := feed.CompareIDs(ids[i-1], ids[i]); c >= 0 {
			t.Fatalf("ids not increasing: %s then %s", ids[i-1], ids[i])
		}
	}
	// Chunked history reads return every event once, in order.
	var got []feed.Event
	cursor := ""
	for range 10 {
		evs, next, err := b.Read(ctx, topic, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, evs...)
		if len(evs) == 0 {
			break
		}
		cursor = next
	}
	if len(got) != len(ids) {
		t.Fatalf("read %d events, want %d", len(got), len(ids))
	}
	for i, ev := range got {
		if ev.ID != ids[i] || ev.Topic != topic || ev.Type != "trip.status" || string(ev.Data) != string(seqData(i)) {
			t.Fatalf("event %d = %+v", i, ev)
		}
		if time.Since(ev.TS) > time.Minute || ev.TS.IsZero() {
			t.Fatalf("event %d ts = %v", i, ev.TS)
		}
	}
	// The envelope is the documented JSON shape.
	raw, _ := json.Marshal(got[0])
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "type", "topic", "ts", "data"} {
		if _, ok := env[k]; !ok {
			t.Fatalf("envelope %s lacks %q", raw, k)
		}
	}
	if pos, err := b.Position(ctx, topic); err != nil || pos != ids[len(ids)-1] {
		t.Fatalf("Position = %q, %v; want %s", pos, err, ids[len(ids)-1])
	}
	if evs, next, err := b.Read(ctx, topic, ids[len(ids)-1], 10); err != nil || len(evs) != 0 || next != ids[len(ids)-1] {
		t.Fatalf("read at the end = %d events, next %q, %v", len(evs), next, err)
	}
	// A topic without a stream: empty, position 0-0.
	empty := newTopic(t, rdb)
	if evs, next, err := b.Read(ctx, empty, "", 10); err != nil || len(evs) != 0 || next != "0-0" {
		t.Fatalf("empty topic read = %v %q %v", evs, next, err)
	}
}

func TestPublishValidation(t *testing.T) {
	rdb := MustOpenRedis(t)
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{})
	topic := newTopic(t, rdb)
	tests := []struct {
		name string
		p    feed.Publication
		want error
	}{
		{"bad topic", feed.Publication{Topic: "trip:{x}", Type: "a"}, feed.ErrInvalidTopic},
		{"no type", feed.Publication{Topic: topic}, feed.ErrInvalidEvent},
		{"newline in type", feed.Publication{Topic: topic, Type: "a\nb"}, feed.ErrInvalidEvent},
		{"bad json", feed.Publication{Topic: topic, Type: "a", Data: json.RawMessage(`{"a":`)}, feed.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := b.Publish(context.Background(), tt.p); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPublishIdempotent(t *testing.T) {
	rdb := MustOpenRedis(t)
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{})
	topic := newTopic(t, rdb)
	ctx := context.Background()

	sub, err := b.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	p := feed.Publication{Topic: topic, Type: "trip.message", Data: json.RawMessage(`{"text":"hi"}`), Key: "client-msg-1"}
	first, err := b.Publish(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	p.Data = json.RawMessage(`{"text":"changed"}`) // the first publish wins
	for range 3 {
		again, err := b.Publish(ctx, p)
		if err != nil || again != first {
			t.Fatalf("repeat publish = %q, %v; want %q", again, err, first)
		}
	}
	other, err := b.Publish(ctx, feed.Publication{Topic: topic, Type: "trip.message", Key: "client-msg-2"})
	if err != nil || other == first {
		t.Fatalf("another key = %q, %v", other, err)
	}
	items := recvN(t, sub, 2, 5*time.Second)
	equalIDs(t, itemIDs(items), []string{first, other})
	if string(items[0].Event.Data) != `{"text":"hi"}` {
		t.Fatalf("data = %s", items[0].Event.Data)
	}
	if n := rdb.XLen(ctx, feed.StreamKey("", topic)).Val(); n != 2 {
		t.Fatalf("stream length %d, want 2", n)
	}
	if ttl := rdb.PTTL(ctx, feed.DedupeKey("", topic, "client-msg-1")).Val(); ttl <= 0 {
		t.Fatalf("dedupe key ttl %v, want > 0", ttl)
	}
	select {
	case it := <-sub.C():
		t.Fatalf("unexpected extra item %+v", it)
	case <-time.After(100 * time.Millisecond):
	}
}

// A domain package composes its own atomic script around hx_publish.
func TestScriptCompose(t *testing.T) {
	rdb := MustOpenRedis(t)
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{})
	topic := newTopic(t, rdb)
	tag, _ := feed.HashTag(topic)
	tripKey := "trip:{" + tag + "}"
	ctx := context.Background()
	t.Cleanup(func() { rdb.Del(context.Background(), tripKey) })
	rdb.HSet(ctx, tripKey, "status", "requested", "version", 1)

	// check state + bump version + append the event (data built in Lua).
	transition := feedredis.Script(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= ARGV[1] then return {'conflict', st} end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'status', ARGV[2])
local id, fresh = hx_publish(KEYS[2], KEYS[3], ARGV, 3, '{"status":"' .. ARGV[2] .. '","version":' .. v .. '}')
return {'ok', id, fresh}
`)
	run := func(from, to, key string) []any {
		t.Helper()
		fkeys, fargs, err := b.PublishParams(feed.Publication{Topic: topic, Type: "trip.status", Key: key})
		if err != nil {
			t.Fatal(err)
		}
		res, err := transition.Run(ctx, rdb, append([]string{tripKey}, fkeys...), append([]any{from, to}, fargs...)...).Slice()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	sub, err := b.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	ok := run("requested", "driver_assigned", "accept-1")
	if ok[0] != "ok" || ok[2] != int64(1) {
		t.Fatalf("transition = %v", ok)
	}
	if res := run("requested", "driver_assigned", "accept-2"); res[0] != "conflict" || res[1] != "driver_assigned" {
		t.Fatalf("forbidden transition = %v", res)
	}
	it := recvN(t, sub, 1, 5*time.Second)[0]
	if it.Event.ID != ok[1] || string(it.Event.Data) != `{"status":"driver_assigned","version":2}` {
		t.Fatalf("event = %+v data %s", it.Event, it.Event.Data)
	}
	if n := rdb.XLen(ctx, feed.StreamKey("", topic)).Val(); n != 1 {
		t.Fatalf("a conflict must not append: stream length %d", n)
	}
	if v := rdb.HGet(ctx, tripKey, "version").Val(); v != "2" {
		t.Fatalf("version = %s", v)
	}
}

func TestSubscribeFreshAndLive(t *testing.T) {
	rdb := MustOpenRedis(t)
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{})
	topic := newTopic(t, rdb)
	ctx := context.Background()

	old := publishN(t, b, topic, 3)
	sub, err := b.Subscribe(ctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if sub.Position() != old[2] {
		t.Fatalf("Position = %s, want %s", sub.Position(), old[2])
	}
	// While a subscription catches up, live-only messages queue behind the
	// stream's events (DESIGN: missed events, then location, then live), so
	// let it deliver one durable event first.
	first := publishN(t, b, topic, 1)
	equalIDs(t, itemIDs(recvN(t, sub, 1, 5*time.Second)), first)
	if err := b.PublishLive(ctx, topic, "trip.location", json.RawMessage(`{"lat":1.5,"lng":2.5,"seq":7}`)); err != nil {
		t.Fatal(err)
	}
	next := publishN(t, b, topic, 2)
	items := recvN(t, sub, 3, 5*time.Second)
	if items[0].Event.Durable() || items[0].Event.Type != "trip.location" || items[0].Event.Topic != topic {
		t.Fatalf("first item = %+v, want the live location", items[0])
	}
	equalIDs(t, itemIDs(items[1:]), next)
	raw, _ := json.Marshal(items[0].Event)
	var env map[string]any
	_ = json.Unmarshal(raw, &env)
	if _, has := env["id"]; has {
		t.Fatalf("live envelope carries an id: %s", raw)
	}

	// Resume from an old ID gets the missed events, then live ones.
	sub2, err := b.Subscribe(ctx, topic, old[0])
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	more := publishN(t, b, topic, 2)
	want := append(append(append(old[1:], first...), next...), more...)
	resumed := recvN(t, sub2, len(want), 5*time.Second)
	equalIDs(t, itemIDs(resumed), want)
	// The same event is byte-identical whether it came live, from a resume
	// read or from history.
	hist, _, err := b.Read(ctx, topic, first[0], 1)
	if err != nil || len(hist) != 1 {
		t.Fatalf("Read = %v, %v", hist, err)
	}
	liveJSON, _ := json.Marshal(items[1].Event)
	resumedJSON, _ := json.Marshal(resumed[3].Event)
	histJSON, _ := json.Marshal(hist[0])
	if string(liveJSON) != string(histJSON) || string(resumedJSON) != string(histJSON) {
		t.Fatalf("envelopes differ:\n live    %s\n resumed %s\n history %s", liveJSON, resumedJSON, histJSON)
	}

	// The subscription ends when its ctx does, with a nil error.
	cctx, cancel := context.WithCancel(ctx)
	sub3, err := b.Subscribe(cctx, topic, "")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for range sub3.C() {
	}
	if sub3.Err() != nil {
		t.Fatalf("Err after cancel = %v", sub3.Err())
	}
}

func TestWait(t *testing.T) {
	rdb := MustOpenRedis(t)
	b, _ := MustOpenBroker(t, rdb, feedredis.Config{})
	topic := newTopic(t, rdb)
	ctx := context.Background()
	ids := publishN(t, b, topic, 2)

	t.Run("immediate", func(t *testing.T) {
		evs, next, err := b.Wait(ctx, topic, ids[0], 10, time.Second)
		if err != nil || len(evs) != 1 || evs[0].ID != ids[1] || next != ids[1] {
			t.Fatalf("Wait = %v %q %v", evs, next, err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		evs, next, err := b.Wait(ctx, topic, ids[1], 10, 150*time.Millisecond)
		if err != nil || len(evs) != 0 || next != ids[1] {
			t.Fatalf("Wait = %v %q %v", evs, next, err)
		}
		if el := time.Since(start); el < 140*time.Millisecond || el > 2*time.Second {
			t.Fatalf("waited %v", el)
		}
	})
	t.Run("woken", func(t *testing.T) {
		done := make(chan []feed.Event, 1)
		go func() {
			evs, _, err := b.Wait(ctx, topic, ids[1], 10, 10*time.Second)
			if err != nil {
				t.Error(err)
			}
			done <- evs
		}()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		id := publishN(t, b, topic, 1)[0]
		select {
		case evs := <-done:
			if len(evs) != 1 || evs[0].ID != id {
				t.Fatalf("Wait returned %v", evs)
			}
			if el := time.Since(start); el > time.Second {
				t.Fatalf("woken after %v", el)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Wait not woken by a publish")
		}
	})
	t.Run("trimmed cursor", func(t *testing.T) {
		if _, _, err := b.Wait(ctx, topic, "1-0", 10, time.Second); !errors.Is(err, feed.ErrTrimmed) && !errors.Is(err, feed.ErrUnknownID) {
			t.Fatalf("err = %v", err)
		}
	})
}

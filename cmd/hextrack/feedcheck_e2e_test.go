package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/faults"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/internal/redistest"

	"github.com/hextrack/hextrack/api/tokens"
)

// Position check, end to end (issue 15): a durable event appended to a
// stream without its pub/sub notice, as when the notice is lost, with no
// later event of its topic, reaches a trip's SSE stream and long-poll and a
// driver's WebSocket and REST command long-poll within the check period
// (plus a margin), once and in order; the next normal event follows.

const (
	e2eCheck  = 200 * time.Millisecond
	e2eMargin = 600 * time.Millisecond // HTTP + scheduling on a loaded 2-core machine under -race
)

func TestLostNoticeRedis(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	testLostNotice(t, redistest.URL(), prefix, rdb)
}

func TestLostNoticeCluster(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		redistest.Unavailable(t, "redis-server not installed (a 3-master Redis Cluster is started)")
	}
	ctx := context.Background()
	c, err := faults.StartCluster(ctx, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	rdb := c.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	testLostNotice(t, c.URL(), "", rdb)
}

func testLostNotice(t *testing.T, redisURL, prefix string, rdb redis.UniversalClient) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{Addr: "127.0.0.1:0", RedisURL: redisURL, Dev: true, LogLevel: "error", Prefix: prefix,
		FeedPositionCheck: e2eCheck,
		PingRate:          -1, ActionRate: -1, IPActionRate: -1, IPStreamRate: -1, StreamRate: -1}
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	m := NewMain(cfg, w)
	if err := m.Run(ctx); err != nil {
		t.Fatalf("main: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	base := "http://" + m.Addr()
	mint := func(role, sub string) string {
		tok, err := m.API.Auth().Mint(tokens.Request{Role: role, Sub: sub, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	suffix := hex.EncodeToString(rb[:])
	riderTok, drv := mint("rider", "lost-r-"+suffix), "lost-d-"+suffix
	driverTok := mint("driver", drv)
	rc := client.New(base, riderTok, &http.Client{Timeout: 20 * time.Second})
	dc := client.New(base, driverTok, &http.Client{Timeout: 20 * time.Second})

	snap, err := rc.CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.1596, Lng: -8.6009}}, "")
	if err != nil {
		t.Fatal(err)
	}
	trip := snap.Trip.ID
	tripTopic, drvTopic := "trip:"+trip, "driver:"+drv
	t.Cleanup(func() {
		rdb.Del(context.Background(), feed.StreamKey(prefix, tripTopic), feed.StreamKey(prefix, drvTopic))
	})

	// Live subscribers: a trip SSE stream, a driver WebSocket. Each first
	// receives a normal event, so its first stream read is behind it.
	sse := openSSE(t, ctx, base+"/v1/trips/"+trip+"/events", riderTok)
	if f := sse.next(t, 5*time.Second); f.event != "snapshot" {
		t.Fatalf("first SSE frame %+v, want snapshot", f)
	}
	warm, err := rc.SendMessage(ctx, trip, "c-warm", "warm up")
	if err != nil {
		t.Fatal(err)
	}
	if f := sse.nextDurable(t, 5*time.Second); f.id != warm.EventID {
		t.Fatalf("SSE frame %+v, want the message %s", f, warm.EventID)
	}
	ws, err := client.DialDriver(ctx, client.DriverWSConfig{Bases: []string{base}, DriverID: drv, Token: driverTok})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	warmCmd, err := m.Feed.Publish(ctx, feed.Publication{Topic: drvTopic, Type: "notice", Data: json.RawMessage(`{"n":0}`)})
	if err != nil {
		t.Fatal(err)
	}
	if c := nextWSCommand(t, ws, 5*time.Second); c.ID != warmCmd {
		t.Fatalf("WS command %+v, want %s", c, warmCmd)
	}

	// Long-polls waiting on both topics.
	type page struct {
		ids []string
		at  time.Time
		err error
	}
	tripPoll, cmdPoll := make(chan page, 1), make(chan page, 1)
	go func() {
		p, err := rc.TripEvents(ctx, trip, warm.EventID, 0, 10*time.Second)
		var ids []string
		for _, e := range p.Events {
			ids = append(ids, e.ID)
		}
		tripPoll <- page{ids, time.Now(), err}
	}()
	go func() {
		p, err := dc.DriverCommands(ctx, drv, warmCmd, 0, 10*time.Second)
		var ids []string
		for _, e := range p.Commands {
			ids = append(ids, e.ID)
		}
		cmdPoll <- page{ids, time.Now(), err}
	}()
	time.Sleep(300 * time.Millisecond) // both are waiting

	at := time.Now()
	lostTrip := appendWithoutNotice(t, rdb, prefix, tripTopic, "trip.completed")
	lostCmd := appendWithoutNotice(t, rdb, prefix, drvTopic, "trip.cancelled")
	within := e2eCheck + e2eMargin
	if f := sse.nextDurable(t, within); f.id != lostTrip || f.event != "trip.completed" {
		t.Fatalf("SSE frame %+v, want trip.completed %s", f, lostTrip)
	}
	t.Logf("SSE: after %v", time.Since(at).Round(time.Millisecond))
	if c := nextWSCommand(t, ws, within); c.ID != lostCmd || c.Type != "trip.cancelled" {
		t.Fatalf("WS command %+v, want trip.cancelled %s", c, lostCmd)
	}
	t.Logf("WebSocket: after %v", time.Since(at).Round(time.Millisecond))
	for name, ch := range map[string]struct {
		c    chan page
		want string
	}{"trip long-poll": {tripPoll, lostTrip}, "command long-poll": {cmdPoll, lostCmd}} {
		p := <-ch.c
		if p.err != nil {
			t.Fatalf("%s: %v", name, p.err)
		}
		if len(p.ids) != 1 || p.ids[0] != ch.want {
			t.Fatalf("%s: %v, want [%s]", name, p.ids, ch.want)
		}
		if d := p.at.Sub(at); d > within {
			t.Fatalf("%s answered after %v, want <= %v", name, d, within)
		}
		t.Logf("%s: after %v", name, p.at.Sub(at).Round(time.Millisecond))
	}

	// Once, in order: the next normal event of each topic is what follows.
	time.Sleep(2 * e2eCheck) // more checks pass: no repeat
	next, err := rc.SendMessage(ctx, trip, "c-next", "after the lost one")
	if err != nil {
		t.Fatal(err)
	}
	if f := sse.nextDurable(t, 5*time.Second); f.id != next.EventID {
		t.Fatalf("SSE frame %+v after the lost event, want the message %s", f, next.EventID)
	}
	nextCmd, err := m.Feed.Publish(ctx, feed.Publication{Topic: drvTopic, Type: "notice", Data: json.RawMessage(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if c := nextWSCommand(t, ws, 5*time.Second); c.ID != nextCmd {
		t.Fatalf("WS command %+v after the lost one, want %s", c, nextCmd)
	}
	p, err := rc.TripEvents(ctx, trip, lostTrip, 0, 0)
	if err != nil || len(p.Events) != 1 || p.Events[0].ID != next.EventID {
		t.Fatalf("trip events after the lost one: %+v, %v; want [%s]", p.Events, err, next.EventID)
	}
}

// appendWithoutNotice appends a durable event to topic's stream with the
// fields the feed writes (type, ts, data, prev = the previous last ID) but
// publishes no pub/sub notice.
func appendWithoutNotice(t *testing.T, rdb redis.UniversalClient, prefix, topic, typ string) string {
	t.Helper()
	ctx := context.Background()
	stream := feed.StreamKey(prefix, topic)
	prev := ""
	last, err := rdb.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(last) > 0 {
		prev = last[0].ID
	}
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{
		"type", typ, "ts", time.Now().UTC().Format(time.RFC3339Nano), "data", `{"lost":true}`, "prev", prev,
	}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func nextWSCommand(t *testing.T, ws *client.DriverWS, within time.Duration) client.Command {
	t.Helper()
	select {
	case c, ok := <-ws.Commands():
		if !ok {
			t.Fatalf("WS commands closed: %v", ws.Err())
		}
		return c
	case <-time.After(within):
		t.Fatalf("no WS command within %v", within)
	}
	return client.Command{}
}

// sseFrame is one Server-Sent Event.
type sseFrame struct{ id, event, data string }

type sseStream struct{ frames chan sseFrame }

// openSSE opens an SSE request and reads its frames until ctx ends.
func openSSE(t *testing.T, ctx context.Context, url, token string) *sseStream {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		t.Fatalf("SSE %s: %d %s", url, resp.StatusCode, b)
	}
	s := &sseStream{frames: make(chan sseFrame, 64)}
	go func() {
		defer resp.Body.Close()
		defer close(s.frames)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var f sseFrame
		for sc.Scan() {
			l := sc.Text()
			switch {
			case l == "":
				if f.event != "" || f.data != "" {
					s.frames <- f
				}
				f = sseFrame{}
			case strings.HasPrefix(l, "id: "):
				f.id = l[4:]
			case strings.HasPrefix(l, "event: "):
				f.event = l[7:]
			case strings.HasPrefix(l, "data: "):
				f.data += l[6:]
			}
		}
	}()
	return s
}

func (s *sseStream) next(t *testing.T, within time.Duration) sseFrame {
	t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			t.Fatal("SSE stream ended")
		}
		return f
	case <-time.After(within):
		t.Fatalf("no SSE frame within %v", within)
	}
	return sseFrame{}
}

// nextDurable skips live-only frames (no id: trip.location, heartbeats
// have no frame).
func (s *sseStream) nextDurable(t *testing.T, within time.Duration) sseFrame {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		f := s.next(t, time.Until(deadline))
		if f.id != "" {
			return f
		}
	}
}

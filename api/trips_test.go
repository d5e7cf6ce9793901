package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"

	"github.com/hextrack/hextrack/api/tokens"
)

// tripEnv is an API server with trips and feeds over the real test Redis.
type tripEnv struct {
	srv     *api.Server
	ts      *httptest.Server
	conns   *connTracker
	trips   *tripredis.Service
	drivers *driverredis.Service
	feed    *feedredis.Broker
	rdb     *redis.Client
	prefix  string
	n       atomic.Int64
}

func newTripEnv(tb testing.TB, sc api.StreamConfig) *tripEnv {
	tb.Helper()
	rdb, prefix := redistest.MustOpen(tb)
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
	drivers := driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix})
	b := feedredis.New(rdb, feedredis.Config{MaxAge: 10 * time.Minute, Prefix: prefix})
	trips := tripredis.NewService(rdb, b, drivers, tripredis.Config{Prefix: prefix, LocationEvery: 100 * time.Millisecond})
	drivers.Listen(trips.Tracker())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = trips.Tracker().Run(ctx) }()
	srv := api.New(api.Config{JWTSecret: []byte(secret), Dev: true, Stream: sc, Limits: unlimited},
		newDeps(rdb, prefix, drivers, trips, b))
	ts := httptest.NewUnstartedServer(srv.Handler())
	conns := &connTracker{Listener: ts.Listener}
	ts.Listener = conns
	ts.Start()
	tb.Cleanup(func() {
		srv.StartDrain()
		ts.CloseClientConnections()
		_ = srv.Close() // SSE streams that took their connection over
		ts.Close()
		cancel()
		_ = b.Close()
	})
	return &tripEnv{srv: srv, ts: ts, conns: conns, trips: trips, drivers: drivers, feed: b, rdb: rdb, prefix: prefix}
}

// dropConns closes every connection the test server accepted, SSE streams
// that took their connection over from net/http included (httptest's
// CloseClientConnections no longer knows those).
func (e *tripEnv) dropConns() { e.conns.closeAll() }

// connTracker is a listener that remembers its connections.
type connTracker struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *connTracker) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *connTracker) closeAll() {
	l.mu.Lock()
	cs := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

func (e *tripEnv) tok(tb testing.TB, role, sub string) string {
	tb.Helper()
	tok, err := e.srv.Auth().Mint(tokens.Request{Role: role, Sub: sub, TTL: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func (e *tripEnv) client(tb testing.TB, role, sub string) *client.Client {
	return client.New(e.ts.URL, e.tok(tb, role, sub), nil)
}

func (e *tripEnv) uid(p string) string {
	return fmt.Sprintf("%s%d_%d", p, time.Now().UnixNano()%1e9, e.n.Add(1))
}

var rideReq = client.CreateTripRequest{Kind: "ride", Pickup: client.Place{Lat: 52.52, Lng: 13.405, Address: "Alexanderplatz"},
	Dropoff: client.Place{Lat: 52.50, Lng: 13.38}, Payment: "cash"}

// newTrip creates a trip for a new rider and returns the rider's client.
func (e *tripEnv) newTrip(tb testing.TB) (client.Snapshot, *client.Client) {
	tb.Helper()
	rc := e.client(tb, "rider", e.uid("r"))
	snap, err := rc.CreateTrip(context.Background(), rideReq, "")
	if err != nil {
		tb.Fatal(err)
	}
	return snap, rc
}

// newDriver returns an available driver's id and client.
func (e *tripEnv) newDriver(tb testing.TB) (string, *client.Client) {
	tb.Helper()
	id := e.uid("d")
	dc := e.client(tb, "driver", id)
	if _, err := dc.SetStatus(context.Background(), id, "available"); err != nil {
		tb.Fatal(err)
	}
	return id, dc
}

// sseConn reads raw SSE frames.
type sseConn struct {
	resp *http.Response
	br   *bufio.Reader
}

type frame struct {
	id, event, data string
	hasID           bool
	retry           string
	comment         string
}

func openSSE(tb testing.TB, url, tok string, hdr map[string]string) *sseConn {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { resp.Body.Close() })
	return &sseConn{resp: resp, br: bufio.NewReader(resp.Body)}
}

// next returns the next block (event, retry or comment); err at EOF.
func (c *sseConn) next() (frame, error) {
	var f frame
	got := false
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			if got {
				return f, nil
			}
			continue
		}
		got = true
		switch {
		case strings.HasPrefix(line, ":"):
			f.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			f.id, f.hasID = line[4:], true
		case strings.HasPrefix(line, "event: "):
			f.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			f.data += line[6:]
		case strings.HasPrefix(line, "retry: "):
			f.retry = line[7:]
		}
	}
}

// nextEvent skips retry lines and comments, failing after d.
func (c *sseConn) nextEvent(tb testing.TB, d time.Duration) frame {
	tb.Helper()
	type res struct {
		f   frame
		err error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			f, err := c.next()
			if err != nil || f.event != "" {
				ch <- res{f, err}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			tb.Fatalf("sse: %v", r.err)
		}
		return r.f
	case <-time.After(d):
		tb.Fatalf("sse: no event within %v", d)
	}
	return frame{}
}

func (e *tripEnv) eventsURL(id string) string { return e.ts.URL + "/v1/trips/" + id + "/events" }

// drive runs a trip through a full life with messages and an address
// change; it returns the number of durable events it appended.
func (e *tripEnv) drive(tb testing.TB, id string, rc *client.Client) int {
	tb.Helper()
	ctx := context.Background()
	did, dc := e.newDriver(tb)
	_ = did
	steps := []func() error{
		func() error { _, err := rc.SendMessage(ctx, id, "m1", "hello"); return err },
		func() error { _, err := dc.TripAction(ctx, id, "accept", ""); return err },
		func() error {
			_, err := rc.ChangeDropoff(ctx, id, client.Place{Lat: 52.49, Lng: 13.37, Address: "Tor 2"}, 0)
			return err
		},
		func() error { _, err := dc.SendMessage(ctx, id, "m1", "on my way"); return err },
		func() error { _, err := dc.TripAction(ctx, id, "arrived", ""); return err },
		func() error { _, err := dc.TripAction(ctx, id, "pickup", ""); return err },
		func() error { _, err := dc.TripAction(ctx, id, "complete", ""); return err },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			tb.Fatalf("step %d: %v", i, err)
		}
	}
	return len(steps)
}

// TestSameEventsEverywhere: SSE (fresh and resumed), long-polling in small
// chunks and history reads give the same events, IDs and order.
func TestSameEventsEverywhere(t *testing.T) {
	e := newTripEnv(t, api.StreamConfig{})
	snap, rc := e.newTrip(t)
	id := snap.Trip.ID
	sse := openSSE(t, e.eventsURL(id), rc.Token(), nil)
	first := sse.nextEvent(t, 5*time.Second)
	if first.event != "snapshot" || first.id != snap.FeedPosition {
		t.Fatalf("first frame %q id %q, want snapshot id %s", first.event, first.id, snap.FeedPosition)
	}
	n := e.drive(t, id, rc)

	history, _, err := e.feed.Read(context.Background(), trip.Topic(id), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != n+1 { // + trip.created
		t.Fatalf("history has %d events, want %d", len(history), n+1)
	}
	want := func(evs []feed.Event) []string {
		out := make([]string, len(evs))
		for i, ev := range evs {
			b, _ := json.Marshal(ev)
			out[i] = string(b)
		}
		return out
	}(history)

	var viaSSE []string
	for len(viaSSE) < n {
		f := sse.nextEvent(t, 5*time.Second)
		if !f.hasID {
			continue // live-only
		}
		if f.event == "" || !strings.Contains(f.data, `"id":"`+f.id+`"`) {
			t.Fatalf("frame id %s does not match its data %s", f.id, f.data)
		}
		viaSSE = append(viaSSE, f.data)
	}
	if strings.Join(viaSSE, "\n") != strings.Join(want[1:], "\n") {
		t.Fatalf("SSE differs from history:\n%s\nvs\n%s", strings.Join(viaSSE, "\n"), strings.Join(want[1:], "\n"))
	}

	var viaPoll []string
	after := ""
	for range 20 {
		page, err := rc.TripEvents(context.Background(), id, after, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			break
		}
		if len(page.Events) > 2 {
			t.Fatalf("limit 2 returned %d", len(page.Events))
		}
		for _, ev := range page.Events {
			b, _ := json.Marshal(feed.Event{ID: ev.ID, Type: ev.Type, Topic: ev.Topic, TS: ev.TS, Data: ev.Data})
			viaPoll = append(viaPoll, string(b))
		}
		after = page.Next
	}
	if strings.Join(viaPoll, "\n") != strings.Join(want, "\n") {
		t.Fatalf("long-poll differs from history:\n%s\nvs\n%s", strings.Join(viaPoll, "\n"), strings.Join(want, "\n"))
	}

	// A resume from the third event gets exactly the rest.
	res := openSSE(t, e.eventsURL(id), rc.Token(), map[string]string{"Last-Event-ID": history[2].ID})
	var rest []string
	for len(rest) < len(history)-3 {
		f := res.nextEvent(t, 5*time.Second)
		if f.event == "snapshot" || f.event == "reset" {
			t.Fatalf("resume got %s", f.event)
		}
		if f.hasID {
			rest = append(rest, f.data)
		}
	}
	if strings.Join(rest, "\n") != strings.Join(want[3:], "\n") {
		t.Fatalf("resume differs")
	}
	// And the Go client's stream, resuming from the same point, agrees too.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := rc.WatchTrip(ctx, id, history[2].ID)
	for i := 3; i < len(history); {
		f, ok := <-st.C
		if !ok {
			t.Fatalf("client stream ended: %v", st.Err())
		}
		if f.ID == "" {
			continue
		}
		if f.ID != history[i].ID || f.Event.Type != history[i].Type {
			t.Fatalf("client stream frame %d: %s %s, want %s %s", i, f.ID, f.Event.Type, history[i].ID, history[i].Type)
		}
		i++
	}
}

func TestSSEProtocol(t *testing.T) {
	e := newTripEnv(t, api.StreamConfig{Heartbeat: 100 * time.Millisecond})
	snap, rc := e.newTrip(t)
	id := snap.Trip.ID
	t.Run("headers retry snapshot heartbeat", func(t *testing.T) {
		c := openSSE(t, e.eventsURL(id)+"?access_token="+rc.Token(), "", nil)
		h := c.resp.Header
		if c.resp.StatusCode != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") ||
			h.Get("X-Accel-Buffering") != "no" || !strings.Contains(h.Get("Cache-Control"), "no-cache") {
			t.Fatalf("status %d headers %v", c.resp.StatusCode, h)
		}
		f, err := c.next()
		if err != nil || f.retry == "" {
			t.Fatalf("first block %+v %v, want retry", f, err)
		}
		f = c.nextEvent(t, 5*time.Second)
		var env struct {
			Type string          `json:"type"`
			Data client.Snapshot `json:"data"`
		}
		if err := json.Unmarshal([]byte(f.data), &env); err != nil || f.event != "snapshot" || env.Data.Trip.ID != id || env.Data.FeedPosition != f.id {
			t.Fatalf("snapshot frame %+v (%v)", f, err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			f, err := c.next()
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("no heartbeat comment (%v)", err)
			}
			if f.comment != "" {
				break
			}
		}
	})
	for _, bad := range []string{"abc", "1-0", "99999999999999-0", "-1", strings.Repeat("9", 60)} {
		t.Run("reset for "+bad[:min(len(bad), 12)], func(t *testing.T) {
			c := openSSE(t, e.eventsURL(id)+"?lastEventId="+bad, rc.Token(), nil)
			f := c.nextEvent(t, 5*time.Second)
			if f.event != "reset" || !strings.Contains(f.data, `"feed_position":"`+f.id+`"`) || !strings.Contains(f.data, id) {
				t.Fatalf("want reset with a snapshot, got %+v", f)
			}
		})
	}
	t.Run("drain", func(t *testing.T) {
		e2 := newTripEnv(t, api.StreamConfig{DrainRetry: 300 * time.Millisecond})
		s2, rc2 := e2.newTrip(t)
		c := openSSE(t, e2.eventsURL(s2.Trip.ID), rc2.Token(), nil)
		c.nextEvent(t, 5*time.Second)
		e2.srv.StartDrain()
		var last frame
		for {
			f, err := c.next()
			if err != nil {
				break // closed by the server
			}
			last = f
		}
		ms := 0
		if _, err := fmt.Sscan(last.retry, &ms); err != nil || ms < 250 || ms > 550 {
			t.Fatalf("last block before close %+v: want a jittered retry", last)
		}
	})
}

func TestLongPoll(t *testing.T) {
	e := newTripEnv(t, api.StreamConfig{})
	snap, rc := e.newTrip(t)
	id := snap.Trip.ID
	ctx := context.Background()
	page, err := rc.TripEvents(ctx, id, snap.FeedPosition, 10, 0)
	if err != nil || len(page.Events) != 0 || page.Next != snap.FeedPosition {
		t.Fatalf("nothing new: %+v %v", page, err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = rc.SendMessage(ctx, id, "w1", "wake up")
	}()
	start := time.Now()
	page, err = rc.TripEvents(ctx, id, snap.FeedPosition, 10, 10*time.Second)
	if err != nil || len(page.Events) != 1 || page.Events[0].Type != trip.EventMessage {
		t.Fatalf("wait: %+v %v", page, err)
	}
	if d := time.Since(start); d > 5*time.Second || d < 200*time.Millisecond {
		t.Fatalf("woke after %v", d)
	}
	start = time.Now()
	page, err = rc.TripEvents(ctx, id, page.Next, 10, 500*time.Millisecond)
	if err != nil || len(page.Events) != 0 || time.Since(start) < 400*time.Millisecond {
		t.Fatalf("timeout poll: %+v %v after %v", page, err, time.Since(start))
	}
	for _, q := range []string{"limit=0", "limit=1001", "wait=31", "wait=-1", "wait=x", "after=zz"} {
		r := call(t, "GET", e.eventsURL(id)+"?"+q, rc.Token(), "")
		if r.status != 400 {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	// A trimmed cursor: 410 with a snapshot to restart from.
	for range 3 {
		_, _ = rc.SendMessage(ctx, id, e.uid("m"), "x")
	}
	evs, _, _ := e.feed.Read(ctx, trip.Topic(id), "", 100)
	if err := e.rdb.XTrimMinID(ctx, feed.StreamKey(e.prefix, trip.Topic(id)), evs[2].ID).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = rc.TripEvents(ctx, id, evs[0].ID, 10, 0)
	gone, ok := client.GoneSnapshot(err)
	if !ok || gone.Trip.ID != id || gone.FeedPosition != evs[len(evs)-1].ID {
		t.Fatalf("trimmed cursor: %v %+v", err, gone)
	}
}

func newReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

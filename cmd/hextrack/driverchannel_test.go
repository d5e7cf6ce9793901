package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/trip"

	"github.com/hextrack/hextrack/api/tokens"
)

const nodeSecret = "k9Qz7x2LmP4vW8nR1tY6uB3cE5fH0jA2"

// runNodeWith starts one Main on the real Redis with the given key prefix
// (so several nodes can share one), test-sized dispatch timeouts and a
// short drain window; set (nil: none) changes its config.
func runNodeWith(tb testing.TB, redisURL, prefix string, set func(*Config)) *Main {
	tb.Helper()
	cfg := Config{Addr: "127.0.0.1:0", RedisURL: redisURL, Dev: true, LogLevel: "error", Prefix: prefix,
		JWTSecret: nodeSecret, OfferTimeout: 3 * time.Second, DispatchTimeout: 20 * time.Second,
		LeaseTTL: time.Second, DrainWindow: 300 * time.Millisecond,
		// Every client of these tests is one IP: rate limits off.
		PingRate: -1, ActionRate: -1, IPActionRate: -1, IPStreamRate: -1, StreamRate: -1}
	if set != nil {
		set(&cfg)
	}
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	m := NewMain(cfg, w)
	if err := m.Run(context.Background()); err != nil {
		tb.Fatalf("main: %v", err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

// cluster is one or more nodes on one Redis prefix, with cleanup of the
// prefix and of the (unprefixed) feeds of the drivers and trips used.
type cluster struct {
	nodes  []*Main
	prefix string
	feeds  []string
}

func mustCluster(tb testing.TB, n int) *cluster {
	tb.Helper()
	return mustClusterWith(tb, n, nil)
}

// mustClusterWith is mustCluster with each node's config changed by set.
func mustClusterWith(tb testing.TB, n int, set func(*Config)) *cluster {
	tb.Helper()
	rdb, prefix := redistest.MustOpen(tb)
	c := &cluster{prefix: prefix}
	tb.Cleanup(func() {
		ctx := context.Background()
		for _, f := range c.feeds {
			keys, _ := rdb.Keys(ctx, f+"*").Result()
			if len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
		}
	})
	for range n {
		c.nodes = append(c.nodes, runNodeWith(tb, redistest.URL(), prefix, set))
	}
	return c
}

func (c *cluster) base(i int) string { return "http://" + c.nodes[i].Addr() }

func (c *cluster) driverID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := "wsd-" + hex.EncodeToString(b[:])
	c.feeds = append(c.feeds, "feed:driver:{"+id+"}")
	return id
}

func (c *cluster) token(tb testing.TB, role, sub string) string {
	tb.Helper()
	tok, err := c.nodes[0].API.Auth().Mint(tokens.Request{Role: role, Sub: sub, TTL: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

var porto = struct{ lat, lng float64 }{41.1496, -8.6109}

// createTrip creates a ride from the pickup near porto on node i.
func (c *cluster) createTrip(tb testing.TB, i int, riderTok string) string {
	tb.Helper()
	var snap trip.Snapshot
	body := map[string]any{"kind": "ride", "pickup": map[string]any{"lat": porto.lat, "lng": porto.lng},
		"dropoff": map[string]any{"lat": porto.lat + 0.01, "lng": porto.lng + 0.01}}
	if _, _, err := client.New(c.base(i), riderTok, nil).Do(context.Background(), http.MethodPost, "/v1/trips", body, &snap, nil); err != nil {
		tb.Fatal(err)
	}
	c.feeds = append(c.feeds, "feed:trip:{"+snap.Trip.ID+"}")
	return snap.Trip.ID
}

func pingsAt(from time.Time, seq0 int64, n int, step time.Duration) []client.Ping {
	out := make([]client.Ping, n)
	for i := range out {
		out[i] = client.Ping{Lat: porto.lat + float64(i)*0.00005, Lng: porto.lng, TS: from.Add(time.Duration(i) * step), Seq: seq0 + int64(i)}
	}
	return out
}

func dialDriver(tb testing.TB, c *cluster, drv string, bases []string, dialer *websocket.Dialer) *client.DriverWS {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := client.DialDriver(ctx, client.DriverWSConfig{Bases: bases, DriverID: drv, Token: c.token(tb, "driver", drv),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Dialer: dialer})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	return d
}

// nextCommand waits for the next command of type typ (others are skipped).
func nextCommand(tb testing.TB, d *client.DriverWS, typ string, within time.Duration) client.Command {
	tb.Helper()
	timeout := time.After(within)
	for {
		select {
		case cmd, ok := <-d.Commands():
			if !ok {
				tb.Fatalf("commands closed waiting for %s: %v", typ, d.Err())
			}
			if cmd.Type == typ {
				return cmd
			}
		case <-timeout:
			tb.Fatalf("no %s within %v", typ, within)
		}
	}
}

func noCommand(tb testing.TB, d *client.DriverWS, within time.Duration) {
	tb.Helper()
	select {
	case cmd := <-d.Commands():
		tb.Fatalf("unexpected command %s %s", cmd.Type, cmd.ID)
	case <-time.After(within):
	}
}

func flush(tb testing.TB, d *client.DriverWS) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		tb.Fatalf("flush: %v (%d buffered)", err, d.Buffered())
	}
}

func tripAction(tb testing.TB, c *cluster, i int, tok, id, action string, body any) {
	tb.Helper()
	if _, _, err := client.New(c.base(i), tok, nil).Do(context.Background(), http.MethodPost, "/v1/trips/"+id+"/"+action, body, nil, nil); err != nil {
		tb.Fatalf("%s: %v", action, err)
	}
}

func TestDriverWebSocket(t *testing.T) {
	c := mustCluster(t, 1)
	drv := c.driverID()
	d := dialDriver(t, c, drv, []string{c.base(0)}, nil)
	d.Locations(pingsAt(time.Now().Add(-5*time.Second), 1, 5, time.Second)...)
	flush(t, d)
	if a := d.LastAck(); a.Seq != 5 || a.Accepted != 5 {
		t.Fatalf("ack %+v, want seq 5 with 5 accepted", a)
	}
	rtok := c.token(t, "rider", "r-"+drv)
	tr := c.createTrip(t, 0, rtok)
	offer := nextCommand(t, d, dispatch.CmdOffer, 5*time.Second)
	var o dispatch.Offer
	if err := json.Unmarshal(offer.Data, &o); err != nil || o.TripID != tr || offer.ID == "" {
		t.Fatalf("offer %+v: %v", offer, err)
	}
	t.Logf("offer delivered %v after it was published", time.Since(offer.TS))
	ctx := context.Background()
	snap, err := d.Act(ctx, "accept", tr, "")
	if err != nil || !strings.Contains(string(snap), `"status":"driver_assigned"`) {
		t.Fatalf("accept: %s %v", snap, err)
	}
	if err := d.Ack(ctx, offer.ID); err != nil {
		t.Fatal(err)
	}
	// A recoverable error: the trip is not in a state to complete.
	var ce *client.Error
	if _, err := d.Act(ctx, "complete", tr, ""); !errors.As(err, &ce) || ce.Code != "invalid_transition" {
		t.Fatalf("complete of an assigned trip: %v", err)
	}
	tripAction(t, c, 0, rtok, tr, "dropoff", map[string]any{"lat": porto.lat + 0.02, "lng": porto.lng, "address": "Rua Nova"})
	nextCommand(t, d, dispatch.CmdAddressChanged, 3*time.Second)
	tripAction(t, c, 0, rtok, tr, "cancel", map[string]any{})
	cancelled := nextCommand(t, d, dispatch.CmdCancelled, 3*time.Second)
	if !strings.Contains(string(cancelled.Data), tr) {
		t.Fatalf("cancel command %s", cancelled.Data)
	}
	resp, err := http.Get(c.base(0) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `hextrack_connections{transport="ws"} 1`) {
		t.Fatal("metrics lack hextrack_connections{transport=\"ws\"} 1")
	}
}

// rawWS dials the driver WebSocket with the gorilla client directly.
func rawWS(t *testing.T, c *cluster, drv, tok string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws://" + c.nodes[0].Addr() + "/v1/drivers/" + drv + "/ws"
	if tok != "" {
		u += "?access_token=" + tok
	}
	return websocket.DefaultDialer.Dial(u, hdr)
}

func readType(t *testing.T, ws *websocket.Conn, typ string) map[string]any {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("reading %s: %v", typ, err)
		}
		if m["type"] == typ {
			return m
		}
	}
}

func TestDriverWebSocketBadInput(t *testing.T) {
	c := mustCluster(t, 1)
	drv := c.driverID()
	tok := c.token(t, "driver", drv)
	// Each case its own driver: connections of one driver replace each other.
	t.Run("invalid JSON: error, connection kept", func(t *testing.T) {
		drv := c.driverID()
		ws, _, err := rawWS(t, c, drv, c.token(t, "driver", drv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		_ = ws.WriteJSON(map[string]any{"type": "hello"})
		readType(t, ws, "ready")
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"locations","pings":[{"lat":1`))
		if m := readType(t, ws, "error"); m["code"] != "invalid_json" {
			t.Fatalf("error %v", m)
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"teleport"}`))
		if m := readType(t, ws, "error"); m["code"] != "invalid_message" {
			t.Fatalf("error %v", m)
		}
		p, _ := json.Marshal(map[string]any{"type": "locations", "ref": "x", "pings": pingsAt(time.Now(), 1, 1, 0)})
		_ = ws.WriteMessage(websocket.TextMessage, p)
		if m := readType(t, ws, "ack"); m["seq"] != float64(1) || m["ref"] != "x" {
			t.Fatalf("ack %v", m)
		}
	})
	t.Run("oversized frame: close 1009", func(t *testing.T) {
		drv := c.driverID()
		ws, _, err := rawWS(t, c, drv, c.token(t, "driver", drv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello"}`))
		big := `{"type":"locations","pings":[],"pad":"` + strings.Repeat("x", 70<<10) + `"}`
		_ = ws.WriteMessage(websocket.TextMessage, []byte(big))
		_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
		for {
			_, _, err := ws.ReadMessage()
			if err == nil {
				continue
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
				t.Fatalf("want close 1009, got %v", err)
			}
			break
		}
	})
	for _, tc := range []struct {
		name   string
		path   string
		tok    string
		origin string
		status int
	}{
		{"token of another driver", "other-driver", tok, "", http.StatusForbidden},
		{"no token", drv, "", "", http.StatusUnauthorized},
		{"rider token", drv, c.token(t, "rider", drv), "", http.StatusForbidden},
		{"foreign browser origin", drv, tok, "https://evil.example", http.StatusForbidden},
		{"same-host origin", drv, tok, "http://" + c.nodes[0].Addr(), http.StatusSwitchingProtocols},
		{"native app (no origin)", drv, tok, "", http.StatusSwitchingProtocols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			ws, resp, err := rawWS(t, c, tc.path, tc.tok, hdr)
			if ws != nil {
				ws.Close()
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("status %v (%v), want %d", resp, err, tc.status)
			}
		})
	}
	t.Run("newer connection wins", func(t *testing.T) {
		drv := c.driverID()
		tok := c.token(t, "driver", drv)
		old, _, err := rawWS(t, c, drv, tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		_ = old.WriteJSON(map[string]any{"type": "hello"})
		readType(t, old, "ready")
		ws, _, err := rawWS(t, c, drv, tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		_ = old.SetReadDeadline(time.Now().Add(3 * time.Second))
		for {
			_, _, err := old.ReadMessage()
			if err == nil {
				continue
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != api.CloseReplaced {
				t.Fatalf("older connection: %v, want close %d", err, api.CloseReplaced)
			}
			break
		}
	})
}

// TestDriverOffline: a minute without network (by ping timestamps) with
// pings buffered; on reconnect the batch uploads in order, the commands
// sent meanwhile arrive once each in order, and after an ack nothing is
// replayed.
func TestDriverOffline(t *testing.T) {
	c := mustCluster(t, 1)
	drv := c.driverID()
	var offline atomic.Bool
	dialer := &websocket.Dialer{HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if offline.Load() {
				return nil, errors.New("network unreachable (test)")
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	d := dialDriver(t, c, drv, []string{c.base(0)}, dialer)
	start := time.Now().Add(-70 * time.Second)
	d.Locations(pingsAt(start, 1, 1, 0)...)
	flush(t, d)

	offline.Store(true)
	d.Drop()
	for d.Connected() {
		time.Sleep(5 * time.Millisecond)
	}
	buffered := pingsAt(start.Add(time.Second), 2, 60, time.Second) // 60 s of pings, 1/s
	d.Locations(buffered...)
	ctx := context.Background()
	var sent []string
	for i := range 3 {
		id, err := c.nodes[0].Commands.Send(ctx, drv, "test.note", map[string]int{"n": i}, "")
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, id)
	}
	if n := d.Buffered(); n != 60 {
		t.Fatalf("%d pings buffered offline, want 60", n)
	}
	offline.Store(false)
	flush(t, d)
	if a := d.LastAck(); a.Seq != 61 || a.Accepted != 60 || len(a.Rejected) != 0 || a.Duplicates != 0 {
		t.Fatalf("upload after reconnect: %+v", a)
	}
	st, err := client.New(c.base(0), c.token(t, "driver", drv), nil).GetDriver(ctx, drv)
	last := buffered[len(buffered)-1]
	if err != nil || st.LastSeq != 61 || st.Location == nil || st.Location.Lat != last.Lat || !st.Location.TS.Equal(last.TS.Truncate(time.Millisecond)) {
		t.Fatalf("driver after upload: %+v %v", st, err)
	}
	for i, id := range sent {
		cmd := nextCommand(t, d, "test.note", 3*time.Second)
		if cmd.ID != id || !strings.Contains(string(cmd.Data), fmt.Sprintf(`"n":%d`, i)) {
			t.Fatalf("command %d: %s %s, want %s", i, cmd.ID, cmd.Data, id)
		}
	}
	noCommand(t, d, 300*time.Millisecond)

	// Not acked yet: a fresh app (no memory of what it saw) gets them
	// again; it replaces the first connection.
	d2 := dialDriver(t, c, drv, []string{c.base(0)}, nil)
	for _, id := range sent {
		if cmd := nextCommand(t, d2, "test.note", 3*time.Second); cmd.ID != id {
			t.Fatalf("replay %s, want %s", cmd.ID, id)
		}
	}
	select {
	case <-d.Done():
		if !errors.Is(d.Err(), client.ErrReplaced) {
			t.Fatalf("first connection ended with %v", d.Err())
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the older connection was not replaced")
	}
	if err := d2.Ack(ctx, sent[2]); err != nil {
		t.Fatal(err)
	}
	d2.Drop()
	noCommand(t, d2, 500*time.Millisecond)
	d3 := dialDriver(t, c, drv, []string{c.base(0)}, nil)
	noCommand(t, d3, 500*time.Millisecond)
	var polled struct {
		Commands []json.RawMessage `json:"commands"`
	}
	if _, _, err := client.New(c.base(0), c.token(t, "driver", drv), nil).Do(ctx, http.MethodGet,
		"/v1/drivers/"+drv+"/commands", nil, &polled, nil); err != nil || len(polled.Commands) != 0 {
		t.Fatalf("REST poll after the ack: %d commands, %v", len(polled.Commands), err)
	}
}

// TestRESTCommands: the long-poll command channel and its ack.
func TestRESTCommands(t *testing.T) {
	c := mustCluster(t, 1)
	drv := c.driverID()
	cl := client.New(c.base(0), c.token(t, "driver", drv), nil)
	ctx := context.Background()
	type page struct {
		Commands []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"commands"`
		Next string `json:"next"`
	}
	got := make(chan page, 1)
	go func() {
		var p page
		_, _, _ = cl.Do(ctx, http.MethodGet, "/v1/drivers/"+drv+"/commands?wait=5", nil, &p, nil)
		got <- p
	}()
	time.Sleep(200 * time.Millisecond)
	id, err := c.nodes[0].Commands.Send(ctx, drv, "test.note", map[string]int{"n": 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	var p page
	select {
	case p = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll did not return")
	}
	if len(p.Commands) != 1 || p.Commands[0].ID != id || p.Next != id {
		t.Fatalf("poll %+v, want %s", p, id)
	}
	var acked map[string]string
	if _, _, err := cl.Do(ctx, http.MethodPost, "/v1/drivers/"+drv+"/commands/"+id+"/ack", nil, &acked, nil); err != nil || acked["acked"] != id {
		t.Fatalf("ack: %v %v", acked, err)
	}
	var again page
	if _, _, err := cl.Do(ctx, http.MethodGet, "/v1/drivers/"+drv+"/commands", nil, &again, nil); err != nil || len(again.Commands) != 0 {
		t.Fatalf("after ack: %+v %v", again, err)
	}
	other := client.New(c.base(0), c.token(t, "driver", "someone-else"), nil)
	var ae *client.Error
	if _, _, err := other.Do(ctx, http.MethodGet, "/v1/drivers/"+drv+"/commands", nil, nil, nil); !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("another driver polling: %v", err)
	}
	if _, _, err := cl.Do(ctx, http.MethodPost, "/v1/drivers/"+drv+"/commands/nonsense/ack", nil, nil, nil); !errors.As(err, &ae) || ae.Status != 400 {
		t.Fatalf("bad ack id: %v", err)
	}
}

// TestTwoNodes: the driver on node A, the trip created on node B → the
// offer arrives; A shuts down → the driver reconnects to B and resumes.
func TestTwoNodes(t *testing.T) {
	c := mustCluster(t, 2)
	drv := c.driverID()
	d := dialDriver(t, c, drv, []string{c.base(0), c.base(1)}, nil)
	d.Locations(pingsAt(time.Now().Add(-3*time.Second), 1, 3, time.Second)...)
	flush(t, d)
	rtok := c.token(t, "rider", "r-"+drv)
	tr := c.createTrip(t, 1, rtok)
	offer := nextCommand(t, d, dispatch.CmdOffer, 5*time.Second)
	ctx := context.Background()
	if _, err := d.Act(ctx, "accept", tr, ""); err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(ctx, offer.ID); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.nodes[0].Close() }()
	timeout := time.After(5 * time.Second)
	for code := 0; code != api.CloseReconnect; {
		select {
		case code = <-d.CloseCodes():
		case <-timeout:
			t.Fatal("no reconnect close from the draining node")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !d.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("did not reconnect to node B")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tripAction(t, c, 1, rtok, tr, "cancel", map[string]any{})
	nextCommand(t, d, dispatch.CmdCancelled, 3*time.Second)
	d.Locations(pingsAt(time.Now(), 10, 1, 0)...)
	flush(t, d)
	if a := d.LastAck(); a.Seq != 10 {
		t.Fatalf("ack after resume on B: %+v", a)
	}
}

// TestNodeWSClient: a third-party client (npm ws) connects, sends pings,
// receives an offer and acks it.
func TestNodeWSClient(t *testing.T) {
	dir, _ := filepath.Abs("../../api/testdata/ws-node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws")); err != nil {
		redistest.Unavailable(t, "npm ws not installed (cd api/testdata/ws-node && npm ci)")
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		redistest.Unavailable(t, "node not found")
	}
	c := mustCluster(t, 1)
	drv := c.driverID()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(dir, "driver.mjs"), "ws://"+c.nodes[0].Addr()+"/v1/drivers/"+drv+"/ws",
		c.token(t, "driver", drv), fmt.Sprint(porto.lat), fmt.Sprint(porto.lng))
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var events []string
	tr := ""
	for sc.Scan() {
		var ev map[string]any
		_ = json.Unmarshal(sc.Bytes(), &ev)
		events = append(events, sc.Text())
		switch ev["event"] {
		case "acked":
			if ev["seq"] != float64(3) || ev["accepted"] != float64(3) {
				t.Fatalf("node client ack: %s", sc.Text())
			}
			tr = c.createTrip(t, 0, c.token(t, "rider", "r-"+drv))
		case "offer":
			if ev["trip"] != tr {
				t.Fatalf("offer for %v, want %s", ev["trip"], tr)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node client: %v\n%s", err, strings.Join(events, "\n"))
	}
	want := []string{"acked", "offer", "command_acked", "closed"}
	if len(events) != len(want) {
		t.Fatalf("node client events:\n%s", strings.Join(events, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(events[i], `"event":"`+w+`"`) {
			t.Fatalf("event %d: %s, want %s", i, events[i], w)
		}
	}
}

// TestOfferLatency measures trip created → offer received over the
// WebSocket for 40 drivers (one trip each, dispatched to the nearest).
func TestOfferLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	c := mustCluster(t, 1)
	const n = 40
	var lat []time.Duration
	var pub []time.Duration
	for i := range n {
		drv := c.driverID()
		d := dialDriver(t, c, drv, []string{c.base(0)}, nil)
		// Each driver far from the others so that its trip is offered to it.
		d.Locations(client.Ping{Lat: porto.lat + float64(i)*0.1, Lng: porto.lng, TS: time.Now(), Seq: 1})
		flush(t, d)
		var snap trip.Snapshot
		body := map[string]any{"pickup": map[string]any{"lat": porto.lat + float64(i)*0.1, "lng": porto.lng},
			"dropoff": map[string]any{"lat": porto.lat + float64(i)*0.1 + 0.01, "lng": porto.lng}}
		start := time.Now()
		if _, _, err := client.New(c.base(0), c.token(t, "rider", "r"+drv), nil).Do(context.Background(), http.MethodPost, "/v1/trips", body, &snap, nil); err != nil {
			t.Fatal(err)
		}
		c.feeds = append(c.feeds, "feed:trip:{"+snap.Trip.ID+"}")
		offer := nextCommand(t, d, dispatch.CmdOffer, 5*time.Second)
		lat = append(lat, time.Since(start))
		pub = append(pub, time.Since(offer.TS))
		_ = d.Close()
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	sort.Slice(pub, func(a, b int) bool { return pub[a] < pub[b] })
	p := func(s []time.Duration, q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	t.Logf("offer latency, trip created → offer at the driver (n=%d): p50 %v p99 %v max %v", n, p(lat, .5), p(lat, .99), lat[n-1])
	t.Logf("offer delivery, published → at the driver: p50 %v p99 %v", p(pub, .5), p(pub, .99))
	if p(lat, .99) > 3*time.Second {
		t.Fatalf("p99 offer latency %v", p(lat, .99))
	}
}

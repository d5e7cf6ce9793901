package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/ops/opsredis"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"

	"github.com/hextrack/hextrack/api/tokens"
)

// opsNode is one API node of a cluster sharing a Redis and a key prefix.
type opsNode struct {
	srv *api.Server
	ts  *httptest.Server
}

// newOpsCluster starts n API nodes over the real test Redis, one prefix.
func newOpsCluster(tb testing.TB, n int) []opsNode {
	tb.Helper()
	rdb, prefix := redistest.MustOpen(tb)
	var nodes []opsNode
	for range n {
		idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
		drivers := driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix})
		b := feedredis.New(rdb, feedredis.Config{MaxAge: 10 * time.Minute, Prefix: prefix})
		trips := tripredis.NewService(rdb, b, drivers, tripredis.Config{Prefix: prefix})
		drivers.Listen(trips.Tracker())
		ocfg := opsredis.Config{Prefix: prefix, Stale: idx.Stale()}
		trips.Observe(opsredis.NewIndex(rdb, ocfg))
		reg := prometheus.NewRegistry()
		srv := api.New(api.Config{JWTSecret: []byte(secret), Dev: true, Limits: unlimited},
			depsWith(newDeps(rdb, prefix, drivers, trips, b), func(d *api.Deps) { d.Ops, d.Registry = opsredis.New(rdb, trips.Store(), ocfg), reg }))
		// The node's report runs until the node drains, as in cmd/hextrack.
		rctx, stopReport := context.WithCancel(context.Background())
		reported := make(chan struct{})
		go func() { defer close(reported); _ = opsredis.NewReporter(rdb, reg, prefix).Run(rctx) }()
		go func() {
			select {
			case <-srv.Draining():
			case <-reported:
			}
			stopReport()
		}()
		ts := httptest.NewServer(srv.Handler())
		tb.Cleanup(func() {
			stopReport()
			<-reported
			srv.StartDrain()
			ts.CloseClientConnections()
			ts.Close()
			_ = b.Close()
		})
		nodes = append(nodes, opsNode{srv: srv, ts: ts})
	}
	return nodes
}

func (n opsNode) tok(tb testing.TB, role, sub string) string {
	tb.Helper()
	tok, err := n.srv.Auth().Mint(tokens.Request{Role: role, Sub: sub, TTL: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

type opsSummary struct {
	Drivers struct {
		Online, Available, Offline int
		OnTrip                     int `json:"on_trip"`
	} `json:"drivers"`
	Trips             map[string]int64 `json:"trips"`
	OpenTrips         int64            `json:"open_trips"`
	Connections       map[string]int64 `json:"connections"`
	Nodes             int              `json:"nodes"`
	IngestRate        float64          `json:"ingest_rate"`
	DeliveryLatencyMS float64          `json:"delivery_latency_ms"`
	RecentTrips       []struct {
		ID, Status string
	} `json:"recent_trips"`
}

func getSummary(tb testing.TB, n opsNode, tok string) opsSummary {
	tb.Helper()
	r := call(tb.(*testing.T), "GET", n.ts.URL+"/v1/ops/summary", tok, "")
	if r.status != 200 {
		tb.Fatalf("summary: %d %s", r.status, r.body)
	}
	var s opsSummary
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		tb.Fatal(err)
	}
	return s
}

// waitFor polls cond every 100ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last: %s)", what, last)
}

var opsHome = geo.Point{Lat: 52.52, Lng: 13.405}

func placeOpsDriver(t *testing.T, n opsNode, id string, p geo.Point, seq int, status string) {
	t.Helper()
	tok := n.tok(t, "driver", id)
	if r := call(t, "POST", n.ts.URL+"/v1/drivers/"+id+"/locations", tok, pingBody(p.Lat, p.Lng, time.Now(), seq)); r.status != 200 {
		t.Fatalf("ping %s: %d %s", id, r.status, r.body)
	}
	if r := call(t, "PUT", n.ts.URL+"/v1/drivers/"+id+"/status", tok, `{"status":"`+status+`"}`); r.status != 200 {
		t.Fatalf("status %s: %d %s", id, r.status, r.body)
	}
}

func TestOpsBadInputs(t *testing.T) {
	n := newOpsCluster(t, 1)[0]
	ops := n.tok(t, "ops", "o1")
	cell := geo.CellOf(opsHome, 7).String()
	many := strings.TrimSuffix(strings.Repeat(cell+",", 501), ",")
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"supply res not a number", "/v1/ops/supply?res=x", 400},
		{"supply res too fine", "/v1/ops/supply?res=10", 400},
		{"supply bad cell", "/v1/ops/supply?cells=nope", 400},
		{"trips unknown status", "/v1/ops/trips?status=flying", 400},
		{"trips limit zero", "/v1/ops/trips?limit=0", 400},
		{"trips limit huge", "/v1/ops/trips?limit=201", 400},
		{"trips limit not a number", "/v1/ops/trips?limit=x", 400},
		{"stream without cells", "/v1/ops/drivers/stream", 400},
		{"stream with too many cells", "/v1/ops/drivers/stream?cells=" + many, 400},
		{"stream with a finer cell", "/v1/ops/drivers/stream?cells=" + geo.CellOf(opsHome, 10).String(), 400},
		{"supply fine", "/v1/ops/supply?res=5&cells=" + cell, 200},
		{"trips fine", "/v1/ops/trips?status=requested&limit=3", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, "GET", n.ts.URL+tc.path, ops, "")
			if r.status != tc.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, tc.status)
			}
			if tc.status == 400 && r.code != "invalid_argument" {
				t.Fatalf("code %q, want invalid_argument", r.code)
			}
		})
	}
}

// The summary is cluster-wide: drivers and trips made through one node,
// a stream held open on another, all counted by a third.
func TestOpsSummaryAcrossNodes(t *testing.T) {
	nodes := newOpsCluster(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ops := c.tok(t, "ops", "o1")
	placeOpsDriver(t, a, "d_sum_1", opsHome, 1, "available")
	placeOpsDriver(t, a, "d_sum_2", geo.Offset(opsHome, 90, 400), 1, "available")
	placeOpsDriver(t, a, "d_sum_3", geo.Offset(opsHome, 180, 400), 1, "offline")
	rtok := a.tok(t, "rider", "r_sum")
	for i := range 2 {
		r := call(t, "POST", a.ts.URL+"/v1/trips", rtok, `{"kind":"ride","pickup":{"lat":52.52,"lng":13.405},"dropoff":{"lat":52.5,"lng":13.38},"payment":"cash"}`)
		if r.status != 201 {
			t.Fatalf("trip %d: %d %s", i, r.status, r.body)
		}
	}
	// An ops stream held open on node b.
	cells := geo.CellOf(opsHome, 7).String()
	sse := openSSE(t, b.ts.URL+"/v1/ops/drivers/stream?cells="+cells, b.tok(t, "ops", "o2"), nil)
	sse.nextEvent(t, 3*time.Second)

	s := getSummary(t, c, ops)
	if s.Drivers.Online != 2 || s.Drivers.Available != 2 || s.Drivers.OnTrip != 0 || s.Drivers.Offline != 1 {
		t.Errorf("drivers %+v, want 2 online, 2 available, 1 offline", s.Drivers)
	}
	if s.Trips["requested"] != 2 || s.OpenTrips != 2 || len(s.Trips) != len(trip.Statuses) {
		t.Errorf("trips %v (open %d), want 2 requested of %d statuses", s.Trips, s.OpenTrips, len(trip.Statuses))
	}
	if len(s.RecentTrips) != 2 || s.RecentTrips[0].Status != "requested" {
		t.Errorf("recent trips %+v", s.RecentTrips)
	}
	// Node figures arrive with the nodes' reports (every 2 s).
	waitFor(t, 8*time.Second, "every node reporting, b's stream counted, a's pings rated", func() (bool, string) {
		s := getSummary(t, c, ops)
		return s.Nodes == 3 && s.Connections["sse"] >= 1, fmt.Sprintf("nodes %d, connections %v, ingest %.1f", s.Nodes, s.Connections, s.IngestRate)
	})
	t.Run("a drained node stops counting", func(t *testing.T) {
		b.srv.StartDrain()
		waitFor(t, 4*time.Second, "two nodes", func() (bool, string) {
			s := getSummary(t, c, ops)
			return s.Nodes == 2, fmt.Sprintf("nodes %d", s.Nodes)
		})
	})
}

type driversData struct {
	Drivers []struct {
		ID       string
		Lat, Lng float64
		Status   string
	} `json:"drivers"`
	Count     int  `json:"count"`
	Truncated bool `json:"truncated"`
	Partial   bool `json:"partial"`
}

func decodeDrivers(t *testing.T, f frame) driversData {
	t.Helper()
	if f.event != "drivers" || f.hasID {
		t.Fatalf("frame %+v: want a drivers event without id", f)
	}
	var env struct {
		Type, Topic string
		Data        driversData
	}
	if err := json.Unmarshal([]byte(f.data), &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != "drivers" || env.Topic != "ops" || env.Data.Partial {
		t.Fatalf("envelope %+v", env)
	}
	return env.Data
}

func TestOpsDriversStream(t *testing.T) {
	n := newOpsCluster(t, 1)[0]
	ops := n.tok(t, "ops", "o1")
	far := geo.Point{Lat: 48.137, Lng: 11.575}
	placeOpsDriver(t, n, "d_view_1", opsHome, 1, "available")
	placeOpsDriver(t, n, "d_far_1", far, 1, "available")
	cells := geo.CellOf(opsHome, geo.ResIndex).Parent(6).String()
	sse := openSSE(t, n.ts.URL+"/v1/ops/drivers/stream?access_token="+ops+"&cells="+cells, "", nil)
	if sse.resp.StatusCode != 200 || sse.resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("status %d, headers %v", sse.resp.StatusCode, sse.resp.Header)
	}
	first := decodeDrivers(t, sse.nextEvent(t, 3*time.Second))
	if first.Count != 1 || first.Drivers[0].ID != "d_view_1" || first.Drivers[0].Status != "available" {
		t.Fatalf("first frame %+v: want only d_view_1", first)
	}
	t.Run("nothing changed: no frame", func(t *testing.T) {
		ch := make(chan frame, 1)
		go func() {
			for {
				f, err := sse.next()
				if err != nil {
					return
				}
				if f.event != "" {
					ch <- f
					return
				}
			}
		}()
		select {
		case f := <-ch:
			t.Fatalf("unexpected frame %+v", f)
		case <-time.After(2500 * time.Millisecond):
		}
		// The reader goroutine is still waiting: a move makes the next frame.
		moved := geo.Offset(opsHome, 45, 60)
		tok := n.tok(t, "driver", "d_view_1")
		if r := call(t, "POST", n.ts.URL+"/v1/drivers/d_view_1/locations", tok, pingBody(moved.Lat, moved.Lng, time.Now(), 2)); r.status != 200 {
			t.Fatal(r.body)
		}
		select {
		case f := <-ch:
			d := decodeDrivers(t, f)
			if d.Count != 1 || geo.Distance(geo.Point{Lat: d.Drivers[0].Lat, Lng: d.Drivers[0].Lng}, moved) > 1 {
				t.Fatalf("after the move: %+v, want d_view_1 at %v", d, moved)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("no frame after a move")
		}
	})
	t.Run("drain ends the stream with a retry hint", func(t *testing.T) {
		n.srv.StartDrain()
		for {
			f, err := sse.next()
			if err != nil {
				t.Fatal("stream ended without a retry hint")
			}
			if f.retry != "" {
				return
			}
		}
	})
}

func TestOpsSummaryStream(t *testing.T) {
	n := newOpsCluster(t, 1)[0]
	ops := n.tok(t, "ops", "o1")
	placeOpsDriver(t, n, "d_ss_1", opsHome, 1, "available")
	sse := openSSE(t, n.ts.URL+"/v1/ops/summary/stream", ops, nil)
	var last time.Time
	for i := range 2 {
		f := sse.nextEvent(t, 3*time.Second)
		var env struct {
			Type string
			TS   time.Time
			Data opsSummary
		}
		if f.event != "summary" || json.Unmarshal([]byte(f.data), &env) != nil || env.Type != "summary" {
			t.Fatalf("frame %d: %+v", i, f)
		}
		if env.Data.Drivers.Available != 1 {
			t.Errorf("frame %d: drivers %+v", i, env.Data.Drivers)
		}
		if i == 1 && !env.TS.After(last) {
			t.Errorf("second frame not later: %v then %v", last, env.TS)
		}
		last = env.TS
	}
}

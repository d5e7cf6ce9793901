package api

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/rider"
)

// The ops dashboard's API (all routes: role ops):
//
//	GET /v1/ops/summary                 counters, once (JSON)
//	GET /v1/ops/summary/stream          the same, one `summary` SSE frame per second
//	GET /v1/ops/drivers/stream?cells=   drivers in the viewport, conflated `drivers` frames
//	GET /v1/ops/supply?res=7[&cells=]   available supply vs open demand per H3 cell
//	GET /v1/ops/trips?status=&limit=    most recently changed trips
//
// Cluster-wide figures (drivers by status, trips by status, supply,
// demand, the trips table) are read from Redis through rider.Ops, so any
// node answers the same. Per-node figures (open connections by transport,
// pings accepted, feed delivery lag) are read from each node's own
// Prometheus registry and shared through Redis: every node writes a report
// every opsReportEvery into one hash (field = node ID, with a timestamp;
// the key has a TTL and a node's field is removed on drain), and the
// summary adds up the reports fresher than opsNodeStale. `nodes` says how
// many nodes were counted.
const (
	opsFrameEvery  = time.Second     // conflation period of both streams
	opsReportEvery = 2 * time.Second // node reports
	opsNodeStale   = 3 * opsReportEvery
	opsMaxCells    = 500  // cells of one viewport
	opsMaxDrivers  = 2000 // drivers of one frame
	opsRecentTrips = 20   // trips carried by each summary
	opsDefaultList = 50   // GET /v1/ops/trips default limit
)

// opsView holds the ops routes' state: the cluster-wide view and this
// node's report.
type opsView struct {
	view   *rider.Ops
	prefix string
	node   string

	mu      sync.Mutex // the summary, shared by every caller for opsFrameEvery
	summary *opsSummary
	at      time.Time

	last nodeSample // the previous sample of this node's counters (reporter only)
}

// nodeReport is one node's figures over its last report period.
type nodeReport struct {
	TS          int64            `json:"ts"` // unix ms
	Connections map[string]int64 `json:"connections"`
	IngestRate  float64          `json:"ingest_rate"` // pings accepted per second
	LagSum      float64          `json:"lag_sum"`     // feed delivery lag seconds, summed over the period
	LagCount    float64          `json:"lag_count"`   // and the events it covers
}

type nodeSample struct {
	at       time.Time
	pings    float64
	lagSum   float64
	lagCount float64
}

// opsSummary is GET /v1/ops/summary. Every trip status is a key of Trips
// (terminal statuses count the last 24 h); Connections are added up over
// the Nodes that reported in the last opsNodeStale; IngestRate is pings
// accepted per second and DeliveryLatencyMS the mean feed delivery lag
// (publish → node) over the nodes' last report period (0 without events).
type opsSummary struct {
	TS                time.Time          `json:"ts"`
	Drivers           rider.DriverCounts `json:"drivers"`
	Trips             map[string]int64   `json:"trips"`
	OpenTrips         int64              `json:"open_trips"`
	Connections       map[string]int64   `json:"connections"`
	Nodes             int                `json:"nodes"`
	IngestRate        float64            `json:"ingest_rate"`
	DeliveryLatencyMS float64            `json:"delivery_latency_ms"`
	RecentTrips       []rider.Trip       `json:"recent_trips"`
}

func (s *Server) opsRoutes() {
	if s.trips != nil && s.drivers != nil && s.rdb != nil {
		prefix := s.trips.Config().Prefix
		var b [6]byte
		_, _ = crand.Read(b[:])
		s.ops = &opsView{
			view:   rider.NewOps(s.rdb, rider.OpsConfig{Prefix: prefix, Stale: s.drivers.Index().Stale()}),
			prefix: prefix, node: hex.EncodeToString(b[:]),
		}
		go s.opsReporter()
	}
	// Route-level middleware, not a Group's: a group with middleware also
	// registers catch-all 404 routes.
	for p, h := range map[string]echo.HandlerFunc{
		"/summary": s.opsSummary, "/summary/stream": s.opsSummaryStream,
		"/drivers/stream": s.opsDriversStream, "/supply": s.opsSupply, "/trips": s.opsTrips,
	} {
		s.e.GET("/v1/ops"+p, guard(s.opsAvailable(h), RoleOps))
	}
}

// opsAvailable: 503 on a node built without trips, drivers or Redis.
func (s *Server) opsAvailable(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.ops == nil {
			return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "ops views are not served by this node"}
		}
		return next(c)
	}
}

func opsNodesKey(prefix string) string { return prefix + "ops:{ops-nodes}" }

// opsReporter writes this node's report every opsReportEvery until the
// node drains; then it removes the node's field so the summary stops
// counting it at once. Redis errors skip a report (the field ages out).
func (s *Server) opsReporter() {
	t := time.NewTicker(opsReportEvery)
	defer t.Stop()
	key := opsNodesKey(s.ops.prefix)
	for {
		select {
		case <-s.draining:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s.rdb.HDel(ctx, key, s.ops.node)
			cancel()
			return
		case <-t.C:
			b, err := json.Marshal(s.sampleNode(time.Now()))
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			pipe := s.rdb.Pipeline()
			pipe.HSet(ctx, key, s.ops.node, b)
			pipe.Expire(ctx, key, 10*opsNodeStale)
			_, _ = pipe.Exec(ctx)
			cancel()
		}
	}
}

// sampleNode reads this node's counters from its registry and turns them
// into a report over the time since the previous sample.
func (s *Server) sampleNode(now time.Time) nodeReport {
	r := nodeReport{TS: now.UnixMilli(), Connections: map[string]int64{}}
	cur := nodeSample{at: now}
	mfs, _ := s.reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "hextrack_connections":
			for _, m := range mf.GetMetric() {
				t := ""
				for _, l := range m.GetLabel() {
					if l.GetName() == "transport" {
						t = l.GetValue()
					}
				}
				r.Connections[t] += int64(m.GetGauge().GetValue())
			}
		case "hextrack_sse_streams":
			for _, m := range mf.GetMetric() {
				r.Connections["sse"] += int64(m.GetGauge().GetValue())
			}
		case "hextrack_pings_accepted_total":
			for _, m := range mf.GetMetric() {
				cur.pings += m.GetCounter().GetValue()
			}
		case "hextrack_feed_delivery_lag_seconds":
			for _, m := range mf.GetMetric() {
				cur.lagSum += m.GetHistogram().GetSampleSum()
				cur.lagCount += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	prev := s.ops.last
	s.ops.last = cur
	if !prev.at.IsZero() {
		if dt := now.Sub(prev.at).Seconds(); dt > 0 {
			r.IngestRate = max(0, cur.pings-prev.pings) / dt
		}
		r.LagSum = max(0, cur.lagSum-prev.lagSum)
		r.LagCount = max(0, cur.lagCount-prev.lagCount)
	}
	return r
}

// summary returns the current summary, computed at most once per
// opsFrameEvery on this node whatever the number of dashboards.
func (s *Server) summary(ctx context.Context) (*opsSummary, error) {
	o := s.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if o.summary != nil && now.Sub(o.at) < opsFrameEvery {
		return o.summary, nil
	}
	sum := &opsSummary{TS: now.UTC(), Connections: map[string]int64{"sse": 0, "ws": 0}}
	var err error
	if sum.Drivers, err = o.view.DriverCounts(ctx); err != nil {
		return nil, err
	}
	if sum.Trips, err = o.view.TripCounts(ctx); err != nil {
		return nil, err
	}
	for st, n := range sum.Trips {
		if !rider.Terminal(st) {
			sum.OpenTrips += n
		}
	}
	if sum.RecentTrips, err = o.view.Trips(ctx, "", opsRecentTrips); err != nil {
		return nil, err
	}
	reports, err := s.rdb.HGetAll(ctx, opsNodesKey(o.prefix)).Result()
	if err != nil && err != redis.Nil {
		return nil, err
	}
	var lagSum, lagCount float64
	for node, raw := range reports {
		var r nodeReport
		if json.Unmarshal([]byte(raw), &r) != nil || now.Sub(time.UnixMilli(r.TS)) > opsNodeStale {
			if now.Sub(time.UnixMilli(r.TS)) > 10*opsNodeStale {
				s.rdb.HDel(ctx, opsNodesKey(o.prefix), node) // a node that left without draining
			}
			continue
		}
		sum.Nodes++
		for t, n := range r.Connections {
			sum.Connections[t] += n
		}
		sum.IngestRate += r.IngestRate
		lagSum += r.LagSum
		lagCount += r.LagCount
	}
	sum.IngestRate = round1(sum.IngestRate)
	if lagCount > 0 {
		sum.DeliveryLatencyMS = round1(lagSum / lagCount * 1000)
	}
	o.summary, o.at = sum, now
	return sum, nil
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

func (s *Server) opsSummary(c echo.Context) error {
	sum, err := s.summary(c.Request().Context())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, sum)
}

// opsCells reads the viewport: ?cells= (comma-separated H3 cells of any
// resolution up to r9; a driver is inside when its r9 cell descends from
// one of them). required: whether an absent cells is an error (else: all).
func opsCells(c echo.Context, required bool) (rider.CellSet, error) {
	raw := strings.TrimSpace(c.QueryParam("cells"))
	if raw == "" && !required {
		return nil, nil
	}
	var ss []string
	for _, p := range strings.Split(raw, ",") {
		if p = strings.TrimSpace(p); p != "" {
			ss = append(ss, p)
		}
	}
	return rider.ParseCells(ss, opsMaxCells)
}

// opsSupply: ?res= (0..9, default 7), optional ?cells= viewport.
func (s *Server) opsSupply(c echo.Context) error {
	res := 7
	if v := c.QueryParam("res"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "res must be an integer within [0, 9]"}
		}
		res = n
	}
	within, err := opsCells(c, false)
	if err != nil {
		return err
	}
	cells, err := s.ops.view.Supply(c.Request().Context(), res, within)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"res": res, "ts": time.Now().UTC(), "cells": cells})
}

// opsTrips: ?status= (one trip status; empty: any), ?limit= (1..200, default 50).
func (s *Server) opsTrips(c echo.Context) error {
	limit := opsDefaultList
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "limit must be an integer within [1, 200]"}
		}
		limit = n
	}
	ts, err := s.ops.view.Trips(c.Request().Context(), c.QueryParam("status"), limit)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"trips": ts})
}

// opsStream runs an ops SSE stream: frame() returns the next frame's
// event type and data, or ok false when nothing changed; it is called at
// once and then every opsFrameEvery. Heartbeats, token expiry and drain
// work as on trip streams (sse.go). A Redis error ends the stream with an
// `error` frame; the browser reconnects.
func (s *Server) opsStream(c echo.Context, frame func(ctx context.Context) (string, any, bool, error)) error {
	ctx := c.Request().Context()
	cfg := s.cfg.Stream
	gauge := s.m.connections.WithLabelValues("sse")
	gauge.Inc()
	defer gauge.Dec()
	h := c.Response().Header()
	setSSEHeaders(h)
	h.Set("Connection", "keep-alive")
	c.Response().WriteHeader(http.StatusOK)
	w := &sseWriter{w: c.Response(), rc: http.NewResponseController(c.Response()), to: cfg.WriteTimeout}
	w.retry(cfg.Retry)
	send := func() error {
		typ, data, ok, err := frame(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			s.log.Warn("ops stream: frame failed", "request_id", requestID(c), "err", err)
			b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": "unavailable", "message": "ops data is unavailable; reconnecting"}})
			w.frame("", "error", b)
			_ = w.flush()
			return err
		}
		if ok {
			b, err := json.Marshal(envelope{Type: typ, Topic: "ops", TS: time.Now().UTC(), Data: data})
			if err != nil {
				return err
			}
			w.frame("", typ, b)
		}
		return w.flush()
	}
	if err := send(); err != nil {
		return nil
	}
	tick := time.NewTicker(opsFrameEvery)
	defer tick.Stop()
	hb := time.NewTicker(cfg.Heartbeat)
	defer hb.Stop()
	var expired <-chan time.Time
	if cl := claims(c); cl != nil && cl.ExpiresAt != nil {
		t := time.NewTimer(time.Until(cl.ExpiresAt.Time))
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case <-tick.C:
			if err := send(); err != nil {
				return nil
			}
		case <-hb.C:
			w.comment("hb")
			if w.flush() != nil {
				return nil
			}
		case <-expired:
			b, _ := json.Marshal(envelope{Type: "token_expired", Topic: "ops", TS: time.Now().UTC(),
				Data: map[string]string{"code": "token_expired", "message": "the access token expired; reconnect with a fresh token"}})
			w.frame("", "token_expired", b)
			_ = w.flush()
			return nil
		case <-s.draining:
			w.retry(time.Duration(250+rand.Int64N(cfg.DrainRetry.Milliseconds()+1)) * time.Millisecond)
			_ = w.flush()
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// opsSummaryStream sends a `summary` frame every opsFrameEvery (the charts
// plot one point per frame, so it is sent even when unchanged).
func (s *Server) opsSummaryStream(c echo.Context) error {
	return s.opsStream(c, func(ctx context.Context) (string, any, bool, error) {
		sum, err := s.summary(ctx)
		return "summary", sum, err == nil, err
	})
}

// driversFrame is the data of a `drivers` frame: every driver in the
// viewport (partial false: a full replacement of the previous frame), at
// most opsMaxDrivers (truncated true when some were left out).
type driversFrame struct {
	Drivers   []rider.FleetDriver `json:"drivers"`
	Count     int                 `json:"count"`
	Truncated bool                `json:"truncated"`
	Partial   bool                `json:"partial"`
}

// opsDriversStream streams the drivers inside ?cells= as conflated
// `drivers` frames: at most one per opsFrameEvery, and only when a driver
// moved, came, went or changed status (heartbeats keep an idle stream up).
func (s *Server) opsDriversStream(c echo.Context) error {
	within, err := opsCells(c, true)
	if err != nil {
		return err
	}
	var last []byte
	return s.opsStream(c, func(ctx context.Context) (string, any, bool, error) {
		ds, trunc, err := s.ops.view.Drivers(ctx, within, opsMaxDrivers)
		if err != nil {
			return "", nil, false, err
		}
		f := driversFrame{Drivers: ds, Count: len(ds), Truncated: trunc}
		key, _ := json.Marshal(f)
		if bytes.Equal(key, last) {
			return "", nil, false, nil
		}
		last = key
		return "drivers", f, true, nil
	})
}

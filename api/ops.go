package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/api/caller"
	"github.com/hextrack/hextrack/api/sse"
	"github.com/hextrack/hextrack/ops"

	"github.com/hextrack/hextrack/api/tokens"
)

// The ops dashboard's API (all routes: role ops, or an API key with the
// ops scope):
//
//	GET /v1/ops/summary                 counters, once (JSON)
//	GET /v1/ops/summary/stream          the same, one `summary` SSE frame per second
//	GET /v1/ops/drivers/stream?cells=   drivers in the viewport, conflated `drivers` frames
//	GET /v1/ops/supply?res=7[&cells=]   available supply vs open demand per H3 cell
//	GET /v1/ops/trips?status=&limit=    most recently changed trips
//
// The figures come from opsredis.View (Deps.Ops), so any node answers the
// same; the node reports it adds up are written by opsredis.Reporter, run
// by cmd.
const (
	opsFrameEvery  = time.Second // conflation period of both streams
	opsMaxCells    = 500         // cells of one viewport
	opsMaxDrivers  = 2000        // drivers of one frame
	opsDefaultList = 50          // GET /v1/ops/trips default limit
)

func (s *Server) opsRoutes() {
	// Route-level middleware, not a Group's: a group with middleware also
	// registers catch-all 404 routes.
	o := s.ops
	for p, h := range map[string]echo.HandlerFunc{
		"/summary": o.opsSummary, "/summary/stream": o.opsSummaryStream,
		"/drivers/stream": o.opsDriversStream, "/supply": o.opsSupply, "/trips": o.opsTrips,
	} {
		s.e.GET("/v1/ops"+p, caller.GuardScope(o.opsAvailable(h), tokens.ScopeOps, tokens.RoleOps))
	}
}

// opsHandlers serve the ops dashboard's views, once or as SSE streams.
type opsHandlers struct {
	ops      Ops // nil: 503
	cfg      StreamConfig
	log      *slog.Logger
	draining <-chan struct{}
	gauge    prometheus.Gauge // open ops streams
}

// opsAvailable: 503 on a node built without the ops view.
func (s *opsHandlers) opsAvailable(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.ops == nil {
			return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "ops views are not served by this node"}
		}
		return next(c)
	}
}

func (s *opsHandlers) opsSummary(c echo.Context) error {
	sum, err := s.ops.Summary(c.Request().Context())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, sum)
}

// opsCells reads the viewport: ?cells= (comma-separated H3 cells of any
// resolution up to r9; a driver is inside when its r9 cell descends from
// one of them). required: whether an absent cells is an error (else: all).
func opsCells(c echo.Context, required bool) (ops.CellSet, error) {
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
	return ops.ParseCells(ss, opsMaxCells)
}

// opsSupply: ?res= (0..9, default 7), optional ?cells= viewport.
func (s *opsHandlers) opsSupply(c echo.Context) error {
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
	cells, err := s.ops.Supply(c.Request().Context(), res, within)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"res": res, "ts": time.Now().UTC(), "cells": cells})
}

// opsTrips: ?status= (one trip status; empty: any), ?limit= (1..200, default 50).
func (s *opsHandlers) opsTrips(c echo.Context) error {
	limit := opsDefaultList
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "limit must be an integer within [1, 200]"}
		}
		limit = n
	}
	ts, err := s.ops.Trips(c.Request().Context(), c.QueryParam("status"), limit)
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
func (s *opsHandlers) opsStream(c echo.Context, frame func(ctx context.Context) (string, any, bool, error)) error {
	ctx := c.Request().Context()
	cfg := s.cfg
	s.gauge.Inc()
	defer s.gauge.Dec()
	h := c.Response().Header()
	sse.SetHeaders(h)
	h.Set("Connection", "keep-alive")
	c.Response().WriteHeader(http.StatusOK)
	w := sse.NewWriter(c, cfg.WriteTimeout)
	w.Retry(cfg.Retry)
	send := func() error {
		typ, data, ok, err := frame(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			s.log.Warn("ops stream: frame failed", "request_id", requestID(c), "err", err)
			b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": "unavailable", "message": "ops data is unavailable; reconnecting"}})
			w.Frame("", "error", b)
			_ = w.Flush()
			return err
		}
		if ok {
			b, err := json.Marshal(sse.Envelope{Type: typ, Topic: "ops", TS: time.Now().UTC(), Data: data})
			if err != nil {
				return err
			}
			w.Frame("", typ, b)
		}
		return w.Flush()
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
			w.Comment("hb")
			if w.Flush() != nil {
				return nil
			}
		case <-expired:
			b, _ := json.Marshal(sse.Envelope{Type: "token_expired", Topic: "ops", TS: time.Now().UTC(),
				Data: map[string]string{"code": "token_expired", "message": "the access token expired; reconnect with a fresh token"}})
			w.Frame("", "token_expired", b)
			_ = w.Flush()
			return nil
		case <-s.draining:
			w.Retry(time.Duration(250+rand.Int64N(cfg.DrainRetry.Milliseconds()+1)) * time.Millisecond)
			_ = w.Flush()
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// opsSummaryStream sends a `summary` frame every opsFrameEvery (the charts
// plot one point per frame, so it is sent even when unchanged).
func (s *opsHandlers) opsSummaryStream(c echo.Context) error {
	return s.opsStream(c, func(ctx context.Context) (string, any, bool, error) {
		sum, err := s.ops.Summary(ctx)
		return "summary", sum, err == nil, err
	})
}

// driversFrame is the data of a `drivers` frame: every driver in the
// viewport (partial false: a full replacement of the previous frame), at
// most opsMaxDrivers (truncated true when some were left out).
type driversFrame struct {
	Drivers   []ops.FleetDriver `json:"drivers"`
	Count     int               `json:"count"`
	Truncated bool              `json:"truncated"`
	Partial   bool              `json:"partial"`
}

// opsDriversStream streams the drivers inside ?cells= as conflated
// `drivers` frames: at most one per opsFrameEvery, and only when a driver
// moved, came, went or changed status (heartbeats keep an idle stream up).
func (s *opsHandlers) opsDriversStream(c echo.Context) error {
	within, err := opsCells(c, true)
	if err != nil {
		return err
	}
	var last []byte
	return s.opsStream(c, func(ctx context.Context) (string, any, bool, error) {
		ds, trunc, err := s.ops.Drivers(ctx, within, opsMaxDrivers)
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

package zones_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/api/zones"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/zone"
	"github.com/hextrack/hextrack/zone/zoneredis"
)

const secret = "0123456789abcdef0123456789abcdef-test"

type env struct {
	base    string
	auth    *tokens.Auth
	tracker *zoneredis.Tracker
}

func newEnv(t *testing.T) *env {
	rdb, prefix := redistest.MustOpen(t)
	b := feedredis.New(rdb, feedredis.Config{Prefix: prefix})
	t.Cleanup(func() { _ = b.Close() })
	store := zoneredis.NewStore(rdb, zoneredis.Config{Prefix: prefix, Zone: zone.Config{MaxAreaKM2: 100, MaxVertices: 50}})
	routes := zones.New(store, b)
	srv := api.New(api.Config{JWTSecret: []byte(secret)}, api.Deps{Routes: []api.Routes{routes}})
	routes.SetDraining(srv.Draining())
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{base: ts.URL, auth: srv.Auth(), tracker: zoneredis.NewTracker(store, b.Publisher)}
}

func (e *env) token(t *testing.T, role string) string {
	tok, err := e.auth.Mint(tokens.Request{Role: role, Sub: role + "1", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type reply struct {
	status int
	code   string
	msg    string
	body   map[string]any
	raw    string
}

func (e *env) do(t *testing.T, method, path, tok, body string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, e.base+path, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	r := reply{status: resp.StatusCode, raw: buf.String()}
	_ = json.Unmarshal(buf.Bytes(), &r.body)
	if er, ok := r.body["error"].(map[string]any); ok {
		r.code, _ = er["code"].(string)
		r.msg, _ = er["message"].(string)
	}
	return r
}

func ringJSON(pts ...[2]float64) string {
	var b strings.Builder
	b.WriteString(`{"type":"Polygon","coordinates":[[`)
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "[%g,%g]", p[0], p[1])
	}
	b.WriteString("]]}")
	return b.String()
}

func zoneBody(kind, geom string) string {
	return fmt.Sprintf(`{"name":"test zone","kind":%q,"geometry":%s,"dwell_after_s":45}`, kind, geom)
}

var square = ringJSON([2]float64{13.40, 52.50}, [2]float64{13.41, 52.50}, [2]float64{13.41, 52.51}, [2]float64{13.40, 52.51}, [2]float64{13.40, 52.50})

func TestZonesCRUD(t *testing.T) {
	e := newEnv(t)
	ops := e.token(t, tokens.RoleOps)
	r := e.do(t, http.MethodPost, "/v1/zones", ops, zoneBody("airport_queue", square))
	id, _ := r.body["id"].(string)
	if r.status != http.StatusCreated || !zone.ValidID(id) || r.body["kind"] != "airport_queue" || r.body["dwell_after_s"] != 45.0 {
		t.Fatalf("create = %d %s", r.status, r.raw)
	}
	if r := e.do(t, http.MethodGet, "/v1/zones/"+id, ops, ""); r.status != http.StatusOK || r.body["id"] != id {
		t.Fatalf("get = %d %s", r.status, r.raw)
	}
	if r := e.do(t, http.MethodGet, "/v1/zones", ops, ""); r.status != http.StatusOK || !strings.Contains(r.raw, id) {
		t.Fatalf("list = %d %s", r.status, r.raw)
	}
	if r := e.do(t, http.MethodPatch, "/v1/zones/"+id, ops, `{"name":"renamed","kind":"restricted"}`); r.status != http.StatusOK || r.body["name"] != "renamed" || r.body["version"] != 2.0 {
		t.Fatalf("patch = %d %s", r.status, r.raw)
	}
	// Who is inside: a driver's step puts it there.
	fix := zone.Fix{TS: time.Now()}
	fix.Pos.Lat, fix.Pos.Lng = 52.505, 13.405
	if _, err := e.tracker.Apply(context.Background(), "d1", 0, []zone.Fix{fix}, false); err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, http.MethodGet, "/v1/zones/"+id+"/drivers", ops, ""); r.status != http.StatusOK || !strings.Contains(r.raw, `"driver_id":"d1"`) {
		t.Fatalf("drivers = %d %s", r.status, r.raw)
	}
	// Only ops.
	for _, c := range []struct {
		tok    string
		status int
	}{{e.token(t, tokens.RoleRider), http.StatusForbidden}, {e.token(t, tokens.RoleDriver), http.StatusForbidden}, {"", http.StatusUnauthorized}} {
		if r := e.do(t, http.MethodGet, "/v1/zones", c.tok, ""); r.status != c.status {
			t.Fatalf("GET with %q = %d, want %d", c.tok, r.status, c.status)
		}
	}
	if r := e.do(t, http.MethodDelete, "/v1/zones/"+id, ops, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete = %d %s", r.status, r.raw)
	}
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		if r := e.do(t, m, "/v1/zones/"+id, ops, ""); r.status != http.StatusNotFound || r.code != "not_found" {
			t.Fatalf("%s after delete = %d %s", m, r.status, r.raw)
		}
	}
	if r := e.do(t, http.MethodGet, "/v1/zones/"+id+"/drivers", ops, ""); r.status != http.StatusNotFound {
		t.Fatalf("drivers after delete = %d %s", r.status, r.raw)
	}
}

func TestZonesBadInput(t *testing.T) {
	e := newEnv(t)
	ops := e.token(t, tokens.RoleOps)
	many := make([][2]float64, 0, 61)
	for i := range 60 {
		a := float64(i) / 60 * 6.283185307179586
		many = append(many, [2]float64{13.4 + 0.01*cosT(a), 52.5 + 0.01*sinT(a)})
	}
	many = append(many, many[0])
	cases := []struct {
		name   string
		body   string
		status int
		code   string
		msg    string
	}{
		{"self-intersecting", zoneBody("queue", ringJSON([2]float64{13.40, 52.50}, [2]float64{13.41, 52.51}, [2]float64{13.41, 52.50}, [2]float64{13.40, 52.51}, [2]float64{13.40, 52.50})),
			http.StatusUnprocessableEntity, "zone_self_intersecting", "intersects itself"},
		{"unclosed", zoneBody("queue", ringJSON([2]float64{13.40, 52.50}, [2]float64{13.41, 52.50}, [2]float64{13.41, 52.51}, [2]float64{13.40, 52.51})),
			http.StatusUnprocessableEntity, "zone_ring_not_closed", "not closed"},
		{"too large", zoneBody("service_area", ringJSON([2]float64{13, 52}, [2]float64{14, 52}, [2]float64{14, 53}, [2]float64{13, 52})),
			http.StatusUnprocessableEntity, "zone_too_large", "at most 100 km²"},
		{"too many vertices", zoneBody("queue", ringJSON(many...)), http.StatusUnprocessableEntity, "zone_too_many_vertices", "more than 50"},
		{"out of range", zoneBody("queue", ringJSON([2]float64{13.40, 91}, [2]float64{13.41, 52.50}, [2]float64{13.41, 52.51}, [2]float64{13.40, 91})),
			http.StatusUnprocessableEntity, "zone_coordinates_out_of_range", "position 0"},
		{"not a polygon", zoneBody("queue", `{"type":"LineString","coordinates":[[1,2],[3,4]]}`), http.StatusBadRequest, "zone_invalid_geometry", "LineString"},
		{"bad kind", zoneBody("Queue!", square), http.StatusBadRequest, "invalid_argument", "kind"},
		{"unknown field", `{"name":"x","kind":"queue","geometry":` + square + `,"color":"red"}`, http.StatusBadRequest, "invalid_argument", "color"},
		{"missing geometry", `{"name":"x","kind":"queue"}`, http.StatusBadRequest, "invalid_argument", "required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, http.MethodPost, "/v1/zones", ops, c.body)
			if r.status != c.status || r.code != c.code || !strings.Contains(r.msg, c.msg) {
				t.Fatalf("= %d %s, want %d %s naming %q", r.status, r.raw, c.status, c.code, c.msg)
			}
		})
	}
	if r := e.do(t, http.MethodGet, "/v1/zones", ops, ""); r.status != http.StatusOK || !strings.Contains(r.raw, `"zones":[]`) {
		t.Fatalf("nothing stored: %d %s", r.status, r.raw)
	}
}

func TestZoneEventsStream(t *testing.T) {
	e := newEnv(t)
	ops := e.token(t, tokens.RoleOps)
	r := e.do(t, http.MethodPost, "/v1/zones", ops, zoneBody("queue", square))
	id, _ := r.body["id"].(string)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Minute)
	for i, lng := range []float64{13.395, 13.405, 13.415} {
		f := zone.Fix{TS: t0.Add(time.Duration(i) * 10 * time.Second)}
		f.Pos.Lat, f.Pos.Lng = 52.505, lng
		if _, err := e.tracker.Apply(ctx, "d1", 0, []zone.Fix{f}, false); err != nil {
			t.Fatal(err)
		}
	}
	read := func(lastID string) []string {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(sctx, http.MethodGet, e.base+"/v1/zones/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+ops)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var lines []string
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				if strings.HasPrefix(l, "id: ") || strings.HasPrefix(l, "event: ") {
					lines = append(lines, l)
				}
			}
			if err != nil || len(lines) >= 4 && lastID == "" || len(lines) >= 2 && lastID != "" {
				return lines
			}
		}
	}
	lines := read("")
	if len(lines) != 4 || lines[1] != "event: zone.entered" || lines[3] != "event: zone.exited" {
		t.Fatalf("stream frames %q", lines)
	}
	// Resumed after the first: only the exit.
	again := read(strings.TrimPrefix(lines[0], "id: "))
	if len(again) != 2 || again[1] != "event: zone.exited" || again[0] != lines[2] {
		t.Fatalf("resumed frames %q", again)
	}
	if r := e.do(t, http.MethodGet, "/v1/zones/"+id+"/events?after=nonsense", ops, ""); r.status != http.StatusBadRequest {
		t.Fatalf("bad cursor = %d %s", r.status, r.raw)
	}
}

package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"

	"github.com/hextrack/hextrack/api/tokens"
)

// downDrivers is the driver service of a node whose Redis is gone: every
// call fails as the Redis adapter reports it (feed.ErrUnavailable around
// the cause).
type downDrivers struct{}

var errDown = fmt.Errorf("%w: dial tcp 10.1.2.3:6379: connect: connection refused", feed.ErrUnavailable)

func (downDrivers) Ingest(context.Context, string, []driver.DecodedPing) (driver.IngestResult, error) {
	return driver.IngestResult{}, errDown
}
func (downDrivers) Limits() driver.Limits     { return driver.Limits{MaxBatch: 10} }
func (downDrivers) SetMetrics(driver.Metrics) {}
func (downDrivers) SetStatus(context.Context, string, string) (driver.State, error) {
	return driver.State{}, errDown
}
func (downDrivers) Get(context.Context, string) (driver.State, error) {
	return driver.State{}, fmt.Errorf("driver: get: %w", errDown)
}
func (downDrivers) Nearby(context.Context, driver.NearbyQuery) ([]driver.Nearby, error) {
	return nil, errDown
}
func (downDrivers) IsSuspended(context.Context, string) (bool, error) {
	return false, errDown
}

var (
	_ api.Pings   = downDrivers{}
	_ api.Drivers = downDrivers{}
)

// pingFunc is an api.Pinger.
type pingFunc func(context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

// TestStoreDown: with its data store gone a node says so clearly: a
// handler's store failure is 503 "unavailable" with Retry-After and
// without the cause's text; /readyz is 503; a stream is refused before it
// opens (a load balancer retries it elsewhere); the routes that need no
// store still answer.
func TestStoreDown(t *testing.T) {
	down := errors.New("PING: connection refused")
	srv := api.New(api.Config{JWTSecret: []byte(secret), Limits: unlimited}, api.Deps{
		Health: pingFunc(func(context.Context) error { return down }),
		Pings:  downDrivers{}, Drivers: downDrivers{},
	})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	tok, err := srv.Auth().Mint(tokens.Request{Role: tokens.RoleDriver, Sub: "d1", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	t.Run("a handler's store failure", func(t *testing.T) {
		resp, body := get(t, "/v1/drivers/d1", nil)
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != 503 || e.Error.Code != "unavailable" || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("GET driver: %d Retry-After %q %s, want 503 unavailable, Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if strings.Contains(body, "10.1.2.3") || strings.Contains(body, "refused") {
			t.Fatalf("the cause leaked to the client: %s", body)
		}
	})
	t.Run("readyz", func(t *testing.T) {
		if resp, body := get(t, "/readyz", nil); resp.StatusCode != 503 || !strings.Contains(body, "redis_unavailable") {
			t.Fatalf("readyz: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("a stream is refused before it opens", func(t *testing.T) {
		resp, body := get(t, "/v1/trips/t1/events", map[string]string{"Accept": "text/event-stream"})
		if resp.StatusCode != 503 || !strings.Contains(body, `"unavailable"`) || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("SSE: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	})
	t.Run("no store needed", func(t *testing.T) {
		if resp, body := get(t, "/healthz", nil); resp.StatusCode != 200 {
			t.Fatalf("healthz: %d %s", resp.StatusCode, body)
		}
	})
}

// TestOptionalComponentDown: an optional component (the archive) that
// does not answer makes /readyz degraded, not failed: 200, ready for
// traffic, the component named in the body; ingest does not ask it.
func TestOptionalComponentDown(t *testing.T) {
	var archiveDown atomic.Bool
	archiveDown.Store(true)
	srv := api.New(api.Config{JWTSecret: []byte(secret), Limits: unlimited}, api.Deps{
		Health: pingFunc(func(context.Context) error { return nil }),
		Optional: map[string]api.Pinger{"archive": pingFunc(func(context.Context) error {
			if archiveDown.Load() {
				return errors.New("archive: ping: dial tcp 127.0.0.1:5432: connect: connection refused")
			}
			return nil
		})},
	})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	readyz := func(t *testing.T) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(ts.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("readyz body: %v", err)
		}
		return resp.StatusCode, body
	}

	st, body := readyz(t)
	if st != 200 || body["status"] != "degraded" || fmt.Sprint(body["degraded"]) != "[archive]" {
		t.Fatalf("archive down: readyz %d %v, want 200 degraded [archive]", st, body)
	}
	comps, _ := body["components"].(map[string]any)
	if comps["archive"] != "unavailable" || comps["redis"] != "ok" {
		t.Fatalf("archive down: components %v", comps)
	}
	if b, _ := json.Marshal(body); strings.Contains(string(b), "5432") || strings.Contains(string(b), "refused") {
		t.Fatalf("the cause leaked to the client: %s", b)
	}

	archiveDown.Store(false)
	st, body = readyz(t)
	comps, _ = body["components"].(map[string]any)
	if st != 200 || body["status"] != "ready" || body["degraded"] != nil || comps["archive"] != "ok" {
		t.Fatalf("archive back: readyz %d %v, want 200 ready", st, body)
	}
}

// TestOptionalComponentSlow: a hung optional component does not hold
// /readyz past its own bound (a probe times out at 2 s).
func TestOptionalComponentSlow(t *testing.T) {
	srv := api.New(api.Config{JWTSecret: []byte(secret), Limits: unlimited}, api.Deps{
		Health: pingFunc(func(context.Context) error { return nil }),
		Optional: map[string]api.Pinger{"archive": pingFunc(func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})},
	})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	start := time.Now()
	resp, err := http.Get(ts.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if took := time.Since(start); resp.StatusCode != 200 || !strings.Contains(string(b), `"degraded":["archive"]`) || took > 1900*time.Millisecond {
		t.Fatalf("hung archive: readyz %d %s after %v, want 200 degraded within the probe's timeout", resp.StatusCode, b, took)
	}
}

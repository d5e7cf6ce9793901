package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
)

// TestDriverCommands checks the REST command channel calls against a fake
// server: the request each makes and how its answer decodes.
func TestDriverCommands(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Query().Get("after") == "1-0":
			w.WriteHeader(http.StatusGone)
			_, _ = w.Write([]byte(`{"error":{"code":"cursor_expired","message":"trimmed","details":{"position":"9-3"}}}`))
		case r.Method == http.MethodPost:
			_, _ = w.Write([]byte(`{"acked":"5-1"}`))
		default:
			_, _ = w.Write([]byte(`{"commands":[{"id":"5-1","type":"offer","topic":"driver:d 1","data":{"trip_id":"t_1"}}],"next":"5-1"}`))
		}
	}))
	defer srv.Close()
	c := client.New(srv.URL, "tok", nil)
	ctx := context.Background()

	for _, tc := range []struct {
		name, after string
		limit       int
		wait        time.Duration
		wantQuery   string
	}{
		{"server's resume point", "", 0, 0, ""},
		{"cursor, limit and wait", "4-0", 10, 1500 * time.Millisecond, "after=4-0&limit=10&wait=1.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := c.DriverCommands(ctx, "d 1", tc.after, tc.limit, tc.wait)
			if err != nil {
				t.Fatal(err)
			}
			if got.URL.EscapedPath() != "/v1/drivers/d%201/commands" || got.URL.RawQuery != tc.wantQuery {
				t.Errorf("request %s?%s", got.URL.EscapedPath(), got.URL.RawQuery)
			}
			if got.Header.Get("Authorization") != "Bearer tok" {
				t.Errorf("authorization %q", got.Header.Get("Authorization"))
			}
			if len(p.Commands) != 1 || p.Commands[0].ID != "5-1" || p.Commands[0].Type != "offer" || p.Next != "5-1" {
				t.Errorf("page %+v", p)
			}
		})
	}
	t.Run("trimmed cursor", func(t *testing.T) {
		_, err := c.DriverCommands(ctx, "d 1", "1-0", 0, 0)
		pos, ok := client.GoneCommandPosition(err)
		if !ok || pos != "9-3" {
			t.Fatalf("GoneCommandPosition(%v) = %q, %v", err, pos, ok)
		}
		if _, ok := client.GoneCommandPosition(&client.Error{Status: http.StatusNotFound}); ok {
			t.Error("a 404 is not a trimmed cursor")
		}
	})
	t.Run("ack", func(t *testing.T) {
		acked, err := c.AckCommand(ctx, "d 1", "5-1")
		if err != nil || acked != "5-1" {
			t.Fatalf("AckCommand = %q, %v", acked, err)
		}
		if got.Method != http.MethodPost || got.URL.EscapedPath() != "/v1/drivers/d%201/commands/5-1/ack" {
			t.Errorf("request %s %s", got.Method, got.URL.EscapedPath())
		}
	})
}

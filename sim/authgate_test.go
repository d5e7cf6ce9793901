package sim

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
)

// The gate closes after a 401 for the backoff, stays open on other errors,
// and a successful upload resets the doubling.
func TestAuthGate(t *testing.T) {
	var g authGate
	now := time.Now()
	if !g.open(now) {
		t.Fatal("a new gate is closed")
	}
	g.result(now, &client.Error{Status: http.StatusServiceUnavailable})
	if !g.open(now) {
		t.Fatal("closed after a 503")
	}
	g.result(now, fmt.Errorf("upload: %w", &client.Error{Status: http.StatusUnauthorized}))
	if g.open(now) || !g.open(now.Add(time.Second)) {
		t.Fatalf("after one 401: open at once or still closed after 1 s (until %v)", g.until.Sub(now))
	}
	g.result(now, &client.Error{Status: http.StatusUnauthorized})
	if g.open(now.Add(999*time.Millisecond)) || g.fails != 2 {
		t.Fatalf("after two 401s: open within 1 s (until %v)", g.until.Sub(now))
	}
	g.result(now, nil)
	if g.fails != 0 {
		t.Fatal("a success does not reset the doubling")
	}
}

package sim

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/road"
	"github.com/hextrack/hextrack/sim/metrics"
)

func TestMovedOn(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"REST 409", &client.Error{Status: http.StatusConflict, Code: "invalid_transition"}, true},
		{"REST 403", &client.Error{Status: http.StatusForbidden, Code: "forbidden"}, true},
		{"REST 412", &client.Error{Status: http.StatusPreconditionFailed, Code: "version_mismatch"}, true},
		{"WS invalid_transition", &client.Error{Code: "invalid_transition"}, true},
		{"WS not_found", &client.Error{Code: "not_found"}, true},
		{"REST 500", &client.Error{Status: http.StatusInternalServerError, Code: "internal"}, false},
		{"REST 429", &client.Error{Status: http.StatusTooManyRequests, Code: "rate_limited"}, false},
		{"WS rate_limited", &client.Error{Code: "rate_limited"}, false},
		{"network", errors.New("connection refused"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := movedOn(tc.err); got != tc.want {
				t.Fatalf("movedOn(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// recConn records what a driver uploads; Send stalls now and then, as a
// loaded server or a starved goroutine would.
type recConn struct {
	mu    sync.Mutex
	pings []client.Ping
	n     atomic.Int64
}

func (c *recConn) Send(_ context.Context, p []client.Ping) error {
	c.mu.Lock()
	c.pings = append(c.pings, p...)
	c.mu.Unlock()
	if c.n.Add(1)%3 == 0 {
		time.Sleep(120 * time.Millisecond)
	}
	return nil
}
func (c *recConn) Commands() <-chan client.Command   { return nil }
func (c *recConn) Ack(context.Context, string) error { return nil }
func (c *recConn) Drop()                             {}
func (c *recConn) Close()                            {}
func (c *recConn) Act(context.Context, string, string, string) (client.Snapshot, error) {
	return client.Snapshot{}, nil
}

// TestLateTicksKeepFixesClose: at speed-up 50, with uploads that stall,
// every fix is still one simulated second of driving from the one before
// (so the server's jump check, 50 m of slack per fix, passes), and the
// fixes' wall timestamps increase.
func TestLateTicksKeepFixesClose(t *testing.T) {
	g := road.SyntheticCity(1, geo.Point{Lat: 41.1579, Lng: -8.6291})
	e := &Engine{cfg: Config{SpeedUp: 50, Driver: DriverBehaviour{PingEvery: time.Second, BatchEvery: 5 * time.Second, Roam: true}},
		Clock: NewClock(50), Stats: metrics.NewStats(50), Graph: g}
	e.fleet.reset(1)
	rng := rand.New(rand.NewPCG(1, 2))
	conn := &recConn{}
	d := newDriver(e, 0, "d", nil, conn, rng, NewMover(g, rng, g.RandomPoint(rng)))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	d.run(ctx)

	conn.mu.Lock()
	defer conn.mu.Unlock()
	if len(conn.pings) < 40 {
		t.Fatalf("%d fixes uploaded in 1.5 s at 50x, want about 75", len(conn.pings))
	}
	worst := 0.0
	for i := 1; i < len(conn.pings); i++ {
		a, b := conn.pings[i-1], conn.pings[i]
		if b.Seq != a.Seq+1 || !b.TS.After(a.TS) {
			t.Fatalf("fix %d: seq %d after %d, ts %v after %v", i, b.Seq, a.Seq, b.TS, a.TS)
		}
		worst = max(worst, geo.Distance(geo.Point{Lat: a.Lat, Lng: a.Lng}, geo.Point{Lat: b.Lat, Lng: b.Lng}))
	}
	if worst > 40 {
		t.Errorf("consecutive fixes up to %.0f m apart, want at most one simulated second of driving", worst)
	}
	t.Logf("%d fixes, largest step %.1f m", len(conn.pings), worst)
}

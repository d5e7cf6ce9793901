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

func TestNewerID(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"5-1", "", true},
		{"5-1", "5-0", true},
		{"5-0", "5-1", false},
		{"5-1", "5-1", false},
		{"10-0", "9-99", true},
		{"junk", "", false},
	} {
		if got := newerID(tc.a, tc.b); got != tc.want {
			t.Errorf("newerID(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestAllRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int // rejected pings; -1: not an all-rejected answer
	}{
		{"every ping refused", &client.Error{Status: http.StatusBadRequest, Code: "invalid_pings",
			Details: []byte(`{"accepted":0,"duplicates":0,"rejected":[{"index":0,"reason":"implausible_jump"},{"index":1,"reason":"future_ts"}],"last_seq":7}`)}, 2},
		{"bad request without verdicts", &client.Error{Status: http.StatusBadRequest, Code: "invalid_argument"}, -1},
		{"rate limited", &client.Error{Status: http.StatusTooManyRequests, Code: "rate_limited"}, -1},
		{"no error", nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, ok := allRejected(tc.err)
			if got := map[bool]int{true: len(res.Rejected), false: -1}[ok]; got != tc.want {
				t.Fatalf("allRejected = %d rejected (ok %v), want %d", len(res.Rejected), ok, tc.want)
			}
		})
	}
}

func TestFrameItem(t *testing.T) {
	snap := &client.Snapshot{Trip: client.Trip{ID: "t_1", Status: StatusRequested}}
	for _, tc := range []struct {
		name string
		f    client.Frame
		kind ItemKind
		ok   bool
	}{
		{"snapshot", client.Frame{ID: "3-0", Type: "snapshot", Snapshot: snap}, ItemSnapshot, true},
		{"reset", client.Frame{ID: "4-0", Type: "reset", Snapshot: snap}, ItemReset, true},
		{"durable event", client.Frame{ID: "5-0", Type: "trip.status", Event: client.Event{ID: "5-0", Type: "trip.status"}}, ItemEvent, true},
		{"location", client.Frame{Type: "trip.location", Event: client.Event{Type: "trip.location", Data: []byte(`{"seq":3,"lat":1,"lng":2}`)}}, ItemLocation, true},
		{"live-only other", client.Frame{Type: "trip.typing", Event: client.Event{Type: "trip.typing"}}, 0, false},
		{"snapshot frame without a body", client.Frame{Type: "snapshot"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it, ok := frameItem(tc.f)
			if ok != tc.ok || (ok && it.Kind != tc.kind) {
				t.Fatalf("frameItem = kind %v ok %v, want kind %v ok %v", it.Kind, ok, tc.kind, tc.ok)
			}
			if it.Kind == ItemSnapshot && ok && it.Snapshot.FeedPosition != tc.f.ID {
				t.Errorf("feed position %q, want the frame's id %q", it.Snapshot.FeedPosition, tc.f.ID)
			}
			if it.Kind == ItemLocation && ok && it.Location.Seq != 3 {
				t.Errorf("location %+v", it.Location)
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
	e := &Engine{cfg: Config{SpeedUp: 50}, Clock: NewClock(50), Stats: NewStats(50), Graph: g,
		idle: make([]atomic.Bool, 1), pos: make([]atomic.Pointer[geo.Point], 1)}
	rng := rand.New(rand.NewPCG(1, 2))
	conn := &recConn{}
	d := &simDriver{id: "d", conn: conn, sim: e, rng: rng, car: NewMover(g, rng, g.RandomPoint(rng)),
		beh: DriverBehaviour{PingEvery: time.Second, BatchEvery: 5 * time.Second, Roam: true}, offers: make(chan offer)}
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

// TestWSAckRejections: a locations ack's rejections are matched to the
// pings of the batch at the head of what was queued, also when the
// batch's last ping is the one rejected (the ack's seq is then the highest
// accepted, short of the batch), and the next batch lines up after it.
func TestWSAckRejections(t *testing.T) {
	st := NewStats(1)
	w := &wsConn{id: "d1", st: st}
	for seq := int64(1); seq <= 6; seq++ {
		w.pending = append(w.pending, sentPing{seq: seq, at: time.Now()})
	}
	st.Rejects.Outlier("d1", 3)
	st.Rejects.Outlier("d1", 5)
	rej := func(i int) struct {
		Index  int    `json:"index"`
		Reason string `json:"reason"`
	} {
		return struct {
			Index  int    `json:"index"`
			Reason string `json:"reason"`
		}{i, ReasonImplausibleJump}
	}
	// Batch 1: seqs 1-3, the last (an outlier) rejected: the ack says seq 2.
	a := client.LocationAck{Seq: 2, Accepted: 2}
	a.Rejected = append(a.Rejected, rej(2))
	w.acked(a)
	// Batch 2: seqs 4-6, the middle one (an outlier) rejected.
	b := client.LocationAck{Seq: 6, Accepted: 2}
	b.Rejected = append(b.Rejected, rej(1))
	w.acked(b)
	by, outliers := st.Rejects.Summary()
	if got := by[ReasonImplausibleJump]; got.Deliberate != 2 || got.Unexpected != 0 || outliers != 2 {
		t.Fatalf("rejections %+v of %d outliers, want both outliers matched", by, outliers)
	}
	if len(w.pending) != 0 {
		t.Fatalf("pending %v after both batches were acked", w.pending)
	}
}

package stops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/sse"
	"github.com/hextrack/hextrack/api/stops"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/trip/tripredis"
)

const secret = "0123456789abcdef0123456789abcdef-stops"

// env is the api server with the stop routes over a real Redis (own
// prefix), the trip tracker and the stop watch running.
type env struct {
	base  string
	auth  *tokens.Auth
	trips *tripredis.Service
	n     atomic.Int64
}

// feedStreams is the broker as api.Feed (as cmd/hextrack adapts it).
type feedStreams struct{ *feedredis.Broker }

func (f feedStreams) Subscribe(ctx context.Context, topic, lastID string) (sse.Subscription, error) {
	s, err := f.Broker.Subscribe(ctx, topic, lastID)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func newEnv(t *testing.T, cfg tripredis.Config) *env {
	t.Helper()
	rdb, prefix := redistest.MustOpen(t)
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
	drivers := driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix})
	b := feedredis.New(rdb, feedredis.Config{MaxAge: 10 * time.Minute, Prefix: prefix})
	cfg.Prefix, cfg.LocationEvery = prefix, 50*time.Millisecond
	trips := tripredis.NewService(rdb, b, drivers, cfg)
	drivers.Listen(trips.Tracker())
	drivers.Listen(trips.StopWatch())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = trips.Tracker().Run(ctx) }()
	go func() { _ = trips.StopWatch().Run(ctx) }()
	routes := stops.New(trips.Stops())
	srv := api.New(api.Config{JWTSecret: []byte(secret), Dev: true, PollCacheTTL: time.Minute, Limits: api.LimitConfig{SubjectRate: -1, IPRate: -1, StreamIPRate: -1, StreamRate: -1}},
		api.Deps{Pings: drivers, Drivers: drivers, Trips: trips, TripViews: trips.Store(), Snapshots: trips.Store(),
			Shares: trips.Shares(), Chat: trips.Chat(), Feed: feedStreams{b}, Routes: []api.Routes{routes}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.CloseClientConnections()
		_ = srv.Close()
		ts.Close()
		cancel()
		_ = b.Close()
	})
	return &env{base: ts.URL, auth: srv.Auth(), trips: trips}
}

func (e *env) id(p string) string {
	return fmt.Sprintf("%s%d_%d", p, time.Now().UnixNano()%1e9, e.n.Add(1))
}

func (e *env) tok(t *testing.T, role, sub string) string {
	t.Helper()
	tok, err := e.auth.Mint(tokens.Request{Role: role, Sub: sub, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type reply struct {
	status int
	code   string
	msg    string
	raw    string
	snap   snapshot
}

// snapshot is the part of a trip snapshot the tests read.
type snapshot struct {
	Trip struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Dropoff struct {
			Lat float64 `json:"lat"`
		} `json:"dropoff"`
		Stops []struct {
			ID       string `json:"id"`
			Kind     string `json:"kind"`
			Status   string `json:"status"`
			PIN      string `json:"pin"`
			Override bool   `json:"override"`
		} `json:"stops"`
	} `json:"trip"`
	Version int64 `json:"version"`
}

func (s snapshot) order() []string {
	out := make([]string, len(s.Trip.Stops))
	for i, st := range s.Trip.Stops {
		out[i] = st.ID
	}
	return out
}

func (e *env) do(t *testing.T, method, path, tok, body string, hdr ...string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, e.base+path, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	r := reply{status: resp.StatusCode, raw: buf.String()}
	var eb struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(buf.Bytes(), &eb)
	r.code, r.msg = eb.Error.Code, eb.Error.Message
	_ = json.Unmarshal(buf.Bytes(), &r.snap)
	return r
}

// must fails unless r has status want.
func must(t *testing.T, r reply, want int) reply {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
	return r
}

// event is a feed event as the long-poll returns it.
type event struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// events reads the trip's durable events from the start (long-poll).
func (e *env) events(t *testing.T, id, tok string) []event {
	t.Helper()
	r := must(t, e.do(t, http.MethodGet, "/v1/trips/"+id+"/events?after=0-0&wait=0", tok, ""), 200)
	var body struct {
		Events []event `json:"events"`
	}
	if err := json.Unmarshal([]byte(r.raw), &body); err != nil {
		t.Fatal(err)
	}
	return body.Events
}

// types are the events' types, those with prefix p only.
func types(evs []event, p string) []string {
	var out []string
	for _, ev := range evs {
		if len(ev.Type) >= len(p) && ev.Type[:len(p)] == p {
			out = append(out, ev.Type)
		}
	}
	return out
}

// Coordinates of the tests: a pickup and drops in Porto.
const (
	pickLat, pickLng = 41.1496, -8.6109
	mPerDegLat       = 111_195.0
)

// north is the latitude m metres north of the pickup.
func north(m float64) float64 { return pickLat + m/mPerDegLat }

// stopJSON is a stop of a create request, m metres north of the pickup.
func stopJSON(kind string, m float64, proof string) string {
	s := fmt.Sprintf(`{"kind":%q,"location":{"lat":%v,"lng":%v}`, kind, north(m), pickLng)
	if proof != "" {
		s += `,"proof":` + proof
	}
	return s + "}"
}

// create makes a trip with the stops given (JSON objects) for rider.
func (e *env) create(t *testing.T, rider string, stops ...string) snapshot {
	t.Helper()
	body := `{"kind":"delivery","stops":[`
	for i, s := range stops {
		if i > 0 {
			body += ","
		}
		body += s
	}
	return must(t, e.do(t, http.MethodPost, "/v1/trips", e.tok(t, "rider", rider), body+`]}`), 201).snap
}

// driver makes an available driver that accepted trip id; it returns the
// driver's id and token.
func (e *env) driver(t *testing.T, id string) (string, string) {
	t.Helper()
	did := e.id("d")
	tok := e.tok(t, "driver", did)
	must(t, e.do(t, http.MethodPut, "/v1/drivers/"+did+"/status", tok, `{"status":"available"}`), 200)
	must(t, e.do(t, http.MethodPost, "/v1/trips/"+id+"/accept", tok, ""), 200)
	return did, tok
}

// ping sends one fix of driver did m metres north of the pickup at ts.
func (e *env) ping(t *testing.T, did, tok string, m float64, ts time.Time, seq int) {
	t.Helper()
	body := fmt.Sprintf(`{"lat":%v,"lng":%v,"ts":%q,"seq":%d}`, north(m), pickLng, ts.UTC().Format(time.RFC3339Nano), seq)
	must(t, e.do(t, http.MethodPost, "/v1/drivers/"+did+"/locations", tok, body), 200)
}

package history_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/history"
	"github.com/hextrack/hextrack/api/tokens"
	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/geo"
)

const secret = "history-test-secret-0123456789abcdef"

// t0 is the fixture's clock: trips are created from it on.
var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// env is an api.Server serving the history routes over a store.
type env struct {
	base  string
	auth  *tokens.Auth
	store *sqlstore.Store
}

func newEnv(t *testing.T, s *sqlstore.Store) *env {
	t.Helper()
	now := func() time.Time { return t0.Add(12 * time.Hour) }
	srv := api.New(api.Config{JWTSecret: []byte(secret)}, api.Deps{
		Routes: []api.Routes{history.New(history.Deps{Trips: s, Records: s, Drivers: s, Now: now})}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{base: ts.URL, auth: srv.Auth(), store: s}
}

// token mints a token of role for sub (a viewer's sub is its share, trip
// its trip).
func (e *env) token(t *testing.T, role, sub, tripID string) string {
	t.Helper()
	tok, err := e.auth.Mint(tokens.Request{Role: role, Sub: sub, Trip: tripID, ID: sub, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type reply struct {
	status int
	code   string
	body   []byte
	ctype  string
}

func (e *env) get(t *testing.T, path, tok string, header ...string) reply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, e.base+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &eb)
	return reply{status: resp.StatusCode, code: eb.Error.Code, body: b, ctype: resp.Header.Get("Content-Type")}
}

func snapshot(id, rider, driver, status, address string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"trip": map[string]any{"id": id, "rider_id": rider, "driver_id": driver, "status": status,
		"pickup": map[string]any{"lat": 41.1496, "lng": -8.6109, "address": address}, "dropoff": map[string]any{"lat": 41.16, "lng": -8.62},
		"payment": "online"}})
	return b
}

// fixture archives: t1 (r1, d1, completed, with events, trail, ledger),
// t2 (r2, d2, completed), t3 (r1, d1, in progress), and d1's shifts.
func fixture(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	trips := []archive.Trip{
		{ID: "t1", Kind: "delivery", RiderID: "r1", DriverID: "d1", Status: "completed", Version: 6, CreatedAt: t0,
			UpdatedAt: t0.Add(30 * time.Minute), EndedAt: t0.Add(30 * time.Minute), DistanceM: 999,
			Snapshot: snapshot("t1", "r1", "d1", "completed", `<script>alert("x")</script> Rua`)},
		{ID: "t2", Kind: "ride", RiderID: "r2", DriverID: "d2", Status: "completed", Version: 5, CreatedAt: t0.Add(time.Minute),
			UpdatedAt: t0.Add(20 * time.Minute), EndedAt: t0.Add(20 * time.Minute), Fare: 800, Currency: "EUR", DistanceM: 2500,
			Snapshot: snapshot("t2", "r2", "d2", "completed", "")},
		{ID: "t3", Kind: "ride", RiderID: "r1", DriverID: "d1", Status: "in_progress", Version: 4, CreatedAt: t0.Add(2 * time.Minute),
			UpdatedAt: t0.Add(10 * time.Minute), Snapshot: snapshot("t3", "r1", "d1", "in_progress", "")},
	}
	if _, err := s.UpsertTrips(ctx, trips); err != nil {
		t.Fatal(err)
	}
	ev := func(ms int64, status string) archive.Event {
		return archive.Event{Topic: "trip:t1", ID: fmt.Sprintf("%d-0", t0.UnixMilli()+ms), Type: "trip.status", TripID: "t1",
			TS: t0.Add(time.Duration(ms) * time.Millisecond), Data: json.RawMessage(`{"version":1,"from":"x","trip_id":"t1","status":"` + status + `"}`)}
	}
	evs := []archive.Event{
		{Topic: "trip:t1", ID: fmt.Sprintf("%d-0", t0.UnixMilli()), Type: "trip.created", TripID: "t1", TS: t0, Data: json.RawMessage(`{}`)},
		ev(5*60e3, "driver_arrived"), ev(8*60e3, "in_progress"), ev(30*60e3, "completed"),
	}
	if _, err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	pts := make([]archive.Point, 5)
	for i := range pts {
		pts[i] = archive.Point{TripID: "t1", Seq: int64(i + 1), DriverID: "d1", Lat: 41.1496 + float64(i)*0.001, Lng: -8.6109,
			TS: t0.Add(time.Duration(8*60+i*10) * time.Second)}
	}
	if _, err := s.AppendPoints(ctx, pts); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendLedger(ctx, []archive.Entry{
		{ID: "p1:v1", Kind: archive.EntryPayment, PaymentID: "p1", TripID: "t1", Amount: 1250, Currency: "EUR", Status: "pending", At: t0.Add(time.Second)},
		{ID: "e1:1", Kind: archive.EntryWebhook, PaymentID: "p1", TripID: "t1", Amount: 1250, Currency: "EUR", Status: "succeeded", Outcome: "applied", At: t0.Add(2 * time.Second)},
		{ID: "p1:v2", Kind: archive.EntryPayment, PaymentID: "p1", TripID: "t1", Amount: 1250, Currency: "EUR", Status: "succeeded", At: t0.Add(2 * time.Second)},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendStatuses(ctx, []archive.StatusChange{
		{DriverID: "d1", Status: "available", At: t0.Add(-time.Hour)},
		{DriverID: "d1", Status: "on_trip", TripID: "t1", At: t0.Add(5 * time.Minute)},
		{DriverID: "d1", Status: "offline", At: t0.Add(time.Hour)},
		{DriverID: "d1", Status: "available", At: t0.Add(2 * time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
}

// TestAuthorizationMatrix: every history route × every kind of caller,
// exact statuses.
func TestAuthorizationMatrix(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		fixture(t, s)
		e := newEnv(t, s)
		callers := map[string]string{
			"rider self":        e.token(t, tokens.RoleRider, "r1", ""),
			"rider other":       e.token(t, tokens.RoleRider, "r2", ""),
			"driver self":       e.token(t, tokens.RoleDriver, "d1", ""),
			"driver other":      e.token(t, tokens.RoleDriver, "d2", ""),
			"ops":               e.token(t, tokens.RoleOps, "o1", ""),
			"viewer of trip":    e.token(t, tokens.RoleViewer, "sh1", "t1"),
			"viewer other trip": e.token(t, tokens.RoleViewer, "sh2", "t2"),
			"no token":          "",
		}
		// "self" is r1 / d1, the rider and driver of t1.
		routes := []struct {
			path string
			want map[string]int
		}{
			{"/v1/trips", map[string]int{"rider self": 200, "rider other": 200, "driver self": 200, "driver other": 200,
				"ops": 200, "viewer of trip": 403, "viewer other trip": 403, "no token": 401}},
			{"/v1/trips?rider=r1", map[string]int{"rider self": 200, "rider other": 403, "driver self": 200, "driver other": 200,
				"ops": 200, "viewer of trip": 403, "viewer other trip": 403, "no token": 401}},
			{"/v1/trips?driver=d1", map[string]int{"rider self": 200, "rider other": 200, "driver self": 200, "driver other": 403,
				"ops": 200, "viewer of trip": 403, "viewer other trip": 403, "no token": 401}},
			{"/v1/trips/t1/receipt", map[string]int{"rider self": 200, "rider other": 403, "driver self": 200, "driver other": 403,
				"ops": 200, "viewer of trip": 403, "viewer other trip": 403, "no token": 401}},
			{"/v1/drivers/d1/trips", map[string]int{"rider self": 403, "rider other": 403, "driver self": 200, "driver other": 403,
				"ops": 200, "viewer of trip": 403, "viewer other trip": 403, "no token": 401}},
			{"/v1/drivers/d1/shifts", map[string]int{"rider self": 403, "rider other": 403, "driver self": 200, "driver other": 403,
				"ops": 200, "viewer of trip": 403, "viewer other trip": 403, "no token": 401}},
		}
		for _, r := range routes {
			for who, tok := range callers {
				want, ok := r.want[who]
				if !ok {
					t.Fatalf("%s: no expectation for %s", r.path, who)
				}
				got := e.get(t, r.path, tok)
				if got.status != want {
					t.Errorf("GET %s as %s = %d %s, want %d", r.path, who, got.status, got.body, want)
				}
				if want >= 400 && got.code == "" {
					t.Errorf("GET %s as %s: %d without an error code", r.path, who, got.status)
				}
			}
		}
		// What each sees: a rider only their own trips, whatever they ask.
		for who, want := range map[string]string{"rider self": "t3,t1", "rider other": "t2", "driver self": "t3,t1",
			"driver other": "t2", "ops": "t3,t2,t1"} {
			if got := ids(t, e.get(t, "/v1/trips", callers[who])); got != want {
				t.Errorf("GET /v1/trips as %s lists %s, want %s", who, got, want)
			}
		}
	})
}

func ids(t *testing.T, r reply) string {
	t.Helper()
	var p struct {
		Trips []struct{ ID string } `json:"trips"`
		Next  string                `json:"next"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil || r.status != 200 {
		t.Fatalf("list: %d %s %v", r.status, r.body, err)
	}
	var out []string
	for _, x := range p.Trips {
		out = append(out, x.ID)
	}
	return strings.Join(out, ",")
}

// TestBadInput: each bad request is a 4xx with its own code, and the
// archive is as it was.
func TestBadInput(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		fixture(t, s)
		e := newEnv(t, s)
		ops, r2 := e.token(t, tokens.RoleOps, "o1", ""), e.token(t, tokens.RoleRider, "r2", "")
		before := e.get(t, "/v1/trips", ops)
		for _, c := range []struct {
			name, path, tok string
			status          int
			code            string
		}{
			{"malformed cursor", "/v1/trips?cursor=not-a-cursor!", ops, 400, "invalid_cursor"},
			{"forged cursor", "/v1/trips?cursor=AQAAAAAAAAAA", ops, 400, "invalid_cursor"},
			{"inverted range", "/v1/trips?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", ops, 400, "invalid_range"},
			{"limit 100000", "/v1/trips?limit=100000", ops, 400, "invalid_limit"},
			{"limit not a number", "/v1/trips?limit=ten", ops, 400, "invalid_limit"},
			{"negative limit", "/v1/drivers/d1/trips?limit=-1", ops, 400, "invalid_limit"},
			{"malformed time", "/v1/trips?from=yesterday", ops, 400, "invalid_argument"},
			{"malformed status", "/v1/trips?status=DROP%20TABLE", ops, 400, "invalid_argument"},
			{"another rider's trips", "/v1/trips?rider=r1", r2, 403, "forbidden"},
			{"another rider's receipt", "/v1/trips/t1/receipt", r2, 403, "forbidden"},
			{"receipt of a running trip", "/v1/trips/t3/receipt", ops, 409, "trip_not_ended"},
			{"receipt of no trip", "/v1/trips/nope/receipt", ops, 404, "not_found"},
			{"receipt in a bad format", "/v1/trips/t1/receipt?format=pdf", ops, 400, "invalid_argument"},
			{"shifts inverted", "/v1/drivers/d1/shifts?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", ops, 400, "invalid_range"},
			{"shifts over 93 days", "/v1/drivers/d1/shifts?from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z", ops, 400, "invalid_range"},
			{"driver trips of another driver", "/v1/drivers/d1/trips?driver=d2", ops, 400, "invalid_argument"},
		} {
			t.Run(c.name, func(t *testing.T) {
				got := e.get(t, c.path, c.tok)
				if got.status != c.status || got.code != c.code {
					t.Fatalf("GET %s = %d %q (%s), want %d %q", c.path, got.status, got.code, got.body, c.status, c.code)
				}
			})
		}
		if after := e.get(t, "/v1/trips", ops); string(after.body) != string(before.body) {
			t.Fatalf("the archive changed:\nbefore %s\nafter  %s", before.body, after.body)
		}
	})
}

// TestReceipt: the distance along the trail, the times from the events,
// the fare and payment from the ledger; HTML escaped.
func TestReceipt(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		fixture(t, s)
		e := newEnv(t, s)
		r1 := e.token(t, tokens.RoleRider, "r1", "")
		got := e.get(t, "/v1/trips/t1/receipt", r1)
		var rc history.Receipt
		if err := json.Unmarshal(got.body, &rc); err != nil || got.status != 200 {
			t.Fatalf("receipt: %d %s %v", got.status, got.body, err)
		}
		var want float64
		for i := 1; i < 5; i++ {
			want += geo.Distance(geo.Point{Lat: 41.1496 + float64(i-1)*0.001, Lng: -8.6109}, geo.Point{Lat: 41.1496 + float64(i)*0.001, Lng: -8.6109})
		}
		if math.Abs(rc.DistanceM-want) > 0.01 || rc.DistanceM < 400 {
			t.Errorf("distance %v, want %v (the trail's, not the record's 999)", rc.DistanceM, want)
		}
		if rc.WaitingS != 180 || rc.DurationS != 22*60 || rc.StartedAt == nil || !rc.StartedAt.Equal(t0.Add(8*time.Minute)) {
			t.Errorf("waiting %v s, duration %v s, started %v; want 180, 1320, 09:08", rc.WaitingS, rc.DurationS, rc.StartedAt)
		}
		if rc.Fare.Total != 1250 || rc.Fare.Currency != "EUR" || len(rc.Fare.Lines) != 1 ||
			len(rc.Payments) != 1 || rc.Payments[0].Status != "succeeded" || rc.Payments[0].ID != "p1" {
			t.Errorf("fare %+v, payments %+v", rc.Fare, rc.Payments)
		}
		if len(rc.Stops) != 2 || rc.Stops[0].Kind != "pickup" || rc.Stops[1].At == nil || rc.PaymentMethod != "online" {
			t.Errorf("stops %+v, method %q", rc.Stops, rc.PaymentMethod)
		}

		// Without a trail: the record's distance.
		got = e.get(t, "/v1/trips/t2/receipt", e.token(t, tokens.RoleOps, "o", ""))
		if err := json.Unmarshal(got.body, &rc); err != nil || rc.DistanceM != 2500 || rc.Fare.Total != 800 || rc.DurationS != 0 {
			t.Errorf("t2's receipt: %s %v", got.body, err)
		}

		for _, h := range [][]string{{"Accept", "text/html"}, nil} {
			path := "/v1/trips/t1/receipt"
			if h == nil {
				path += "?format=html"
			}
			got = e.get(t, path, r1, h...)
			body := string(got.body)
			if got.status != 200 || !strings.HasPrefix(got.ctype, "text/html") || !strings.Contains(body, "12.50 EUR") ||
				strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;") {
				t.Errorf("HTML receipt (%v): %d %s\n%s", h, got.status, got.ctype, body)
			}
		}
	})
}

// TestShifts: d1's online spans, time online and trips per day.
func TestShifts(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		fixture(t, s)
		e := newEnv(t, s)
		got := e.get(t, "/v1/drivers/d1/shifts?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z", e.token(t, tokens.RoleDriver, "d1", ""))
		var sh history.Shifts
		if err := json.Unmarshal(got.body, &sh); err != nil || got.status != 200 {
			t.Fatalf("shifts: %d %s %v", got.status, got.body, err)
		}
		// 08:00-10:00 closed, 11:00 open until now (21:00).
		if len(sh.Shifts) != 2 || sh.Shifts[0].OnlineS != 7200 || sh.Shifts[1].End != nil || sh.Shifts[1].OnlineS != 10*3600 {
			t.Fatalf("shifts %+v", sh.Shifts)
		}
		if sh.OnlineS != 12*3600 || sh.Trips != 2 || sh.Completed != 1 || math.Abs(sh.KmDriven-0.999) > 1e-9 ||
			len(sh.Days) != 1 || sh.Days[0].Date != "2026-12-01" || sh.Days[0].OnlineS != 12*3600 {
			t.Fatalf("totals %+v", sh)
		}
		// d1's trips list: the driver's own, newest first.
		if got := ids(t, e.get(t, "/v1/drivers/d1/trips", e.token(t, tokens.RoleOps, "o", ""))); got != "t3,t1" {
			t.Fatalf("d1's trips: %s", got)
		}
	})
}

// TestPagingUnderInserts: a client pages through the trips (2 a page)
// while trips are created, newer and older than the ones it already saw:
// no trip is returned twice and every trip that existed when paging
// started is returned.
func TestPagingUnderInserts(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		var initial []archive.Trip
		for i := range 40 {
			// Pairs share a created time: the ID breaks the tie.
			initial = append(initial, archive.Trip{ID: fmt.Sprintf("a%02d", i), Kind: "ride", RiderID: "r1", Status: "completed",
				Version: 1, CreatedAt: t0.Add(time.Duration(i/2) * time.Minute), UpdatedAt: t0})
		}
		if _, err := s.UpsertTrips(ctx, initial); err != nil {
			t.Fatal(err)
		}
		ops := e.token(t, tokens.RoleOps, "o", "")
		pages := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // the writer: one new trip per page read, alternately newest and oldest
			defer wg.Done()
			i := 0
			for range pages {
				at := t0.Add(time.Hour + time.Duration(i)*time.Second)
				if i%2 == 1 {
					at = t0.Add(-time.Hour - time.Duration(i)*time.Second)
				}
				tr := archive.Trip{ID: fmt.Sprintf("n%02d", i), Kind: "ride", RiderID: "r1", Status: "requested", Version: 1, CreatedAt: at, UpdatedAt: at}
				if _, err := s.UpsertTrips(ctx, []archive.Trip{tr}); err != nil {
					t.Error(err)
				}
				// and an update of a trip already seen: its position must not move
				up := initial[39-i%40]
				up.Version, up.Status, up.UpdatedAt = int64(2+i), "cancelled", t0.Add(time.Duration(i)*time.Second)
				if _, err := s.UpsertTrips(ctx, []archive.Trip{up}); err != nil {
					t.Error(err)
				}
				i++
			}
		}()
		seen := map[string]int{}
		cursor := ""
		for n := 0; ; n++ {
			if n > 100 {
				t.Fatal("paging does not end")
			}
			got := e.get(t, "/v1/trips?limit=2&cursor="+cursor, ops)
			var p struct {
				Trips []struct{ ID string } `json:"trips"`
				Next  string                `json:"next"`
			}
			if err := json.Unmarshal(got.body, &p); err != nil || got.status != 200 {
				t.Fatalf("page %d: %d %s", n, got.status, got.body)
			}
			for _, x := range p.Trips {
				seen[x.ID]++
			}
			if p.Next == "" {
				break
			}
			cursor = p.Next
			pages <- struct{}{}
		}
		close(pages)
		wg.Wait()
		for id, k := range seen {
			if k > 1 {
				t.Errorf("trip %s returned %d times", id, k)
			}
		}
		for _, tr := range initial {
			if seen[tr.ID] != 1 {
				t.Errorf("trip %s, present when paging started, was skipped", tr.ID)
			}
		}
	})
}

// TestReceiptDistanceIgnoresJitter: a driver waiting at the pickup and at
// the dropoff, its fixes wobbling a few metres, drove 300 m: the receipt
// says about 300, not 300 plus the wobble.
func TestReceiptDistanceIgnoresJitter(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		fixture(t, s)
		a := geo.Point{Lat: 41.15, Lng: -8.61}
		var pts []archive.Point
		add := func(p geo.Point) {
			pts = append(pts, archive.Point{TripID: "t2", Seq: int64(len(pts) + 1), DriverID: "d2", Lat: p.Lat, Lng: p.Lng,
				TS: t0.Add(time.Duration(len(pts)) * time.Second)})
		}
		wobble := func(c geo.Point) {
			for i := range 20 {
				add(geo.Offset(c, float64(i*77%360), 2+float64(i%4))) // 2–5 m around c
			}
		}
		wobble(a)
		for i := 1; i <= 3; i++ {
			add(geo.Offset(a, 0, float64(i)*100))
		}
		wobble(geo.Offset(a, 0, 300))
		var raw float64
		for i := 1; i < len(pts); i++ {
			raw += geo.Distance(geo.Point{Lat: pts[i-1].Lat, Lng: pts[i-1].Lng}, geo.Point{Lat: pts[i].Lat, Lng: pts[i].Lng})
		}
		if _, err := s.AppendPoints(context.Background(), pts); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, s)
		got := e.get(t, "/v1/trips/t2/receipt", e.token(t, tokens.RoleRider, "r2", ""))
		var rc history.Receipt
		if err := json.Unmarshal(got.body, &rc); err != nil || got.status != 200 {
			t.Fatalf("receipt: %d %s %v", got.status, got.body, err)
		}
		if math.Abs(rc.DistanceM-300) > 10 {
			t.Fatalf("distance %.1f m, want about 300 (the raw steps add up to %.1f m)", rc.DistanceM, raw)
		}
		if raw < 400 {
			t.Fatalf("test setup: the wobble adds only %.1f m", raw-300)
		}
	})
}

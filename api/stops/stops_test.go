package stops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/trip/tripredis"
)

// TestRideThroughOldAPI: a ride created with pickup and dropoff is the
// two-stop case, and the old actions move it as before: one event per
// transition, the stops following (s1 completed at pickup, s2 at complete).
func TestRideThroughOldAPI(t *testing.T) {
	e := newEnv(t, tripredis.Config{})
	rider := e.id("r")
	rt := e.tok(t, "rider", rider)
	body := fmt.Sprintf(`{"pickup":{"lat":%v,"lng":%v,"address":"A"},"dropoff":{"lat":%v,"lng":%v}}`, pickLat, pickLng, north(2000), pickLng)
	snap := must(t, e.do(t, http.MethodPost, "/v1/trips", rt, body), 201).snap
	id := snap.Trip.ID
	if got := snap.order(); !slices.Equal(got, []string{"s1", "s2"}) || snap.Trip.Stops[0].Kind != "pickup" || snap.Trip.Stops[1].Kind != "drop" {
		t.Fatalf("stops %+v, want s1 pickup, s2 drop", snap.Trip.Stops)
	}
	_, dt := e.driver(t, id)
	must(t, e.do(t, http.MethodPost, "/v1/trips/"+id+"/arrived", dt, ""), 200)
	r := must(t, e.do(t, http.MethodPost, "/v1/trips/"+id+"/pickup", dt, ""), 200)
	if r.snap.Trip.Status != "in_progress" || r.snap.Trip.Stops[0].Status != "completed" || r.snap.Trip.Stops[1].Status != "pending" {
		t.Fatalf("after pickup: %s", r.raw)
	}
	r = must(t, e.do(t, http.MethodPost, "/v1/trips/"+id+"/complete", dt, ""), 200)
	if r.snap.Trip.Status != "completed" || r.snap.Trip.Stops[1].Status != "completed" {
		t.Fatalf("after complete: %s", r.raw)
	}
	evs := e.events(t, id, rt)
	want := []string{"trip.created", "trip.assigned", "trip.status", "trip.status", "trip.status"}
	if got := types(evs, ""); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	var last struct {
		Status string `json:"status"`
		Stop   struct {
			StopID string `json:"stop_id"`
			To     string `json:"to"`
		} `json:"stop"`
	}
	_ = json.Unmarshal(evs[4].Data, &last)
	if last.Status != "completed" || last.Stop.StopID != "s2" || last.Stop.To != "completed" {
		t.Fatalf("last trip.status %s, want completed carrying stop s2 completed", evs[4].Data)
	}
	// The dropoff changed through the old API moves the last drop stop.
	snap = must(t, e.do(t, http.MethodPost, "/v1/trips", rt, body), 201).snap
	must(t, e.do(t, http.MethodPost, "/v1/trips/"+snap.Trip.ID+"/dropoff", rt, fmt.Sprintf(`{"lat":%v,"lng":%v}`, north(3000), pickLng)), 200)
	r = must(t, e.do(t, http.MethodGet, "/v1/trips/"+snap.Trip.ID, rt, ""), 200)
	var full struct {
		Trip struct {
			Stops []struct {
				Location struct{ Lat float64 } `json:"location"`
			} `json:"stops"`
		} `json:"trip"`
	}
	_ = json.Unmarshal([]byte(r.raw), &full)
	if got := full.Trip.Stops[1].Location.Lat; got != north(3000) || r.snap.Trip.Dropoff.Lat != north(3000) {
		t.Fatalf("drop stop at %v, dropoff %v; want both %v", got, r.snap.Trip.Dropoff.Lat, north(3000))
	}
}

// TestReorderConcurrentIfMatch: two reorders with the same If-Match at
// once: exactly one wins (200), the other is 412 with the new version.
func TestReorderConcurrentIfMatch(t *testing.T) {
	e := newEnv(t, tripredis.Config{})
	rider := e.id("r")
	rt := e.tok(t, "rider", rider)
	for round := range 5 {
		snap := e.create(t, rider, stopJSON("pickup", 0, ""), stopJSON("drop", 500, ""), stopJSON("drop", 1000, ""), stopJSON("drop", 1500, ""))
		id, v := snap.Trip.ID, strconv.FormatInt(snap.Version, 10)
		orders := []string{`{"order":["s1","s3","s2","s4"]}`, `{"order":["s1","s4","s3","s2"]}`}
		res := make([]reply, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range orders {
			wg.Go(func() {
				<-start
				res[i] = e.do(t, http.MethodPut, "/v1/trips/"+id+"/stops/order", rt, orders[i], "If-Match", v)
			})
		}
		close(start)
		wg.Wait()
		ok, stale := 0, 0
		for _, r := range res {
			switch {
			case r.status == 200:
				ok++
			case r.status == 412 && r.code == "version_mismatch":
				stale++
			default:
				t.Fatalf("round %d: %d %s", round, r.status, r.raw)
			}
		}
		if ok != 1 || stale != 1 {
			t.Fatalf("round %d: %d ok and %d 412, want one each", round, ok, stale)
		}
		if n := len(types(e.events(t, id, rt), "stop.reordered")); n != 1 {
			t.Fatalf("round %d: %d stop.reordered events, want 1", round, n)
		}
	}
}

// TestEditsInOrderOnTheFeed: add, remove and reorder are durable events in
// the order made, and bad edits are refused, changing nothing.
func TestEditsInOrderOnTheFeed(t *testing.T) {
	e := newEnv(t, tripredis.Config{})
	rider := e.id("r")
	rt := e.tok(t, "rider", rider)
	snap := e.create(t, rider, stopJSON("pickup", 0, ""), stopJSON("drop", 500, ""), stopJSON("drop", 1000, ""))
	id := snap.Trip.ID
	base := "/v1/trips/" + id + "/stops"
	// A poller's tag is cached by the node (a minute here): a stop change
	// through it must still show at once.
	etag := strconv.Quote(strconv.FormatInt(snap.Version, 10) + ".0")
	must(t, e.do(t, http.MethodGet, "/v1/trips/"+id, rt, "", "If-None-Match", etag), 304)
	r := must(t, e.do(t, http.MethodPost, base, rt, `{"kind":"drop","location":{"lat":41.16,"lng":-8.61},"position":1}`), 201)
	must(t, e.do(t, http.MethodGet, "/v1/trips/"+id, rt, "", "If-None-Match", etag), 200)
	if got := r.snap.order(); !slices.Equal(got, []string{"s1", "s4", "s2", "s3"}) {
		t.Fatalf("after add: %v", got)
	}
	must(t, e.do(t, http.MethodDelete, base+"/s2", rt, ""), 200)
	r = must(t, e.do(t, http.MethodPut, base+"/order", rt, `{"order":["s1","s3","s4"]}`, "If-Match", strconv.FormatInt(r.snap.Version+1, 10)), 200)
	if got := r.snap.order(); !slices.Equal(got, []string{"s1", "s3", "s4"}) {
		t.Fatalf("after reorder: %v", got)
	}
	ver := r.snap.Version

	dt := e.tok(t, "driver", "d-x")
	other := e.tok(t, "rider", e.id("r"))
	bad := []struct {
		name, method, path, tok, body string
		hdr                           []string
		status                        int
		code                          string
	}{
		{"stale If-Match", http.MethodPut, base + "/order", rt, `{"order":["s1","s4","s3"]}`, []string{"If-Match", "1"}, 412, "version_mismatch"},
		{"order missing a stop", http.MethodPut, base + "/order", rt, `{"order":["s1","s4"]}`, nil, 400, "invalid_argument"},
		{"order naming a stop twice", http.MethodPut, base + "/order", rt, `{"order":["s1","s4","s4"]}`, nil, 400, "invalid_argument"},
		{"order moving the pickup", http.MethodPut, base + "/order", rt, `{"order":["s3","s1","s4"]}`, nil, 400, "invalid_argument"},
		{"unknown stop", http.MethodDelete, base + "/s9", rt, "", nil, 404, "not_found"},
		{"removing the pickup", http.MethodDelete, base + "/s1", rt, "", nil, 400, "invalid_argument"},
		{"drop at position 0", http.MethodPost, base, rt, `{"kind":"drop","location":{"lat":41.16,"lng":-8.61},"position":0}`, nil, 400, "invalid_argument"},
		{"position past the end", http.MethodPost, base, rt, `{"kind":"drop","location":{"lat":41.16,"lng":-8.61},"position":9}`, nil, 400, "invalid_argument"},
		{"proof on a pickup", http.MethodPost, base, rt, `{"kind":"pickup","location":{"lat":41.16,"lng":-8.61},"proof":{"pin":true}}`, nil, 400, "invalid_argument"},
		{"bad kind", http.MethodPost, base, rt, `{"kind":"via","location":{"lat":41.16,"lng":-8.61}}`, nil, 400, "invalid_argument"},
		{"unknown field", http.MethodPost, base, rt, `{"kind":"drop","location":{"lat":41.16,"lng":-8.61},"x":1}`, nil, 400, "invalid_argument"},
		{"driver edits", http.MethodDelete, base + "/s3", dt, "", nil, 403, "forbidden"},
		{"another rider edits", http.MethodDelete, base + "/s3", other, "", nil, 403, "forbidden"},
		{"rider completes", http.MethodPost, base + "/s3/complete", rt, "", nil, 403, "forbidden"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, tc.tok, tc.body, tc.hdr...)
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("%d %s, want %d %s: %s", r.status, r.code, tc.status, tc.code, r.raw)
			}
		})
	}
	r = must(t, e.do(t, http.MethodGet, "/v1/trips/"+id, rt, ""), 200)
	if r.snap.Version != ver || !slices.Equal(r.snap.order(), []string{"s1", "s3", "s4"}) {
		t.Fatalf("bad edits changed the trip: version %d (want %d), stops %v", r.snap.Version, ver, r.snap.order())
	}
	evs := e.events(t, id, rt)
	if got, want := types(evs, "stop."), []string{"stop.added", "stop.removed", "stop.reordered"}; !slices.Equal(got, want) {
		t.Fatalf("stop events %v, want %v", got, want)
	}
	var added struct {
		Version  int64               `json:"version"`
		Position int                 `json:"position"`
		Stop     struct{ ID string } `json:"stop"`
	}
	_ = json.Unmarshal(evs[1].Data, &added)
	if added.Stop.ID != "s4" || added.Position != 1 || added.Version != 2 {
		t.Fatalf("stop.added %s", evs[1].Data)
	}
}

// TestPINBruteForce: the PIN is shown to the rider and the share link,
// never to the driver; five wrong PINs are 422 each, then even the right
// one is 429 for the driver; ops complete with override, recorded.
func TestPINBruteForce(t *testing.T) {
	e := newEnv(t, tripredis.Config{})
	rider := e.id("r")
	rt := e.tok(t, "rider", rider)
	snap := e.create(t, rider, stopJSON("pickup", 0, ""), stopJSON("drop", 800, `{"pin":true}`))
	id, pin := snap.Trip.ID, snap.Trip.Stops[1].PIN
	if len(pin) != 6 {
		t.Fatalf("creator's snapshot pin %q, want 6 digits", pin)
	}
	if got := must(t, e.do(t, http.MethodGet, "/v1/trips/"+id, rt, ""), 200).snap.Trip.Stops[1].PIN; got != pin {
		t.Fatalf("rider reads pin %q, want %q", got, pin)
	}
	var share struct{ Token string }
	_ = json.Unmarshal([]byte(must(t, e.do(t, http.MethodPost, "/v1/trips/"+id+"/share", rt, ""), 201).raw), &share)
	// A share link's viewer token: minted by the api (the share route).
	if got := must(t, e.do(t, http.MethodGet, "/v1/trips/"+id, share.Token, ""), 200).snap.Trip.Stops[1].PIN; got != pin {
		t.Fatalf("share link reads pin %q, want %q", got, pin)
	}
	_, dt := e.driver(t, id)
	if r := must(t, e.do(t, http.MethodGet, "/v1/trips/"+id, dt, ""), 200); r.snap.Trip.Stops[1].PIN != "" {
		t.Fatalf("driver reads the pin: %s", r.raw)
	}
	at := func(m float64) string { return fmt.Sprintf(`"lat":%v,"lng":%v`, north(m), pickLng) }
	must(t, e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/s1/complete", dt, "{"+at(0)+"}"), 200)
	wrong := fmt.Sprintf("%06d", (mustAtoi(t, pin)+1)%1_000_000)
	for i := range 5 {
		r := e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/s2/complete", dt, fmt.Sprintf(`{%s,"pin":%q}`, at(800), wrong))
		if r.status != 422 || r.code != "invalid_pin" {
			t.Fatalf("wrong pin %d: %d %s", i+1, r.status, r.raw)
		}
	}
	r := e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/s2/complete", dt, fmt.Sprintf(`{%s,"pin":%q}`, at(800), pin))
	if r.status != 429 || r.code != "pin_attempts_exhausted" {
		t.Fatalf("right pin after 5 wrong: %d %s, want 429 pin_attempts_exhausted", r.status, r.raw)
	}
	if r := e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/s2/complete", dt, `{"override":true}`); r.status != 403 {
		t.Fatalf("driver override: %d %s, want 403", r.status, r.raw)
	}
	ops := e.tok(t, "ops", "ops1")
	r = must(t, e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/s2/complete", ops, `{"override":true}`), 200)
	if st := r.snap.Trip.Stops[1]; st.Status != "completed" || !st.Override || r.snap.Trip.Status != "completed" {
		t.Fatalf("ops override: %s", r.raw)
	}
	evs := e.events(t, id, rt)
	var ev struct {
		StopID   string `json:"stop_id"`
		Override bool   `json:"override"`
	}
	for _, x := range evs {
		if x.Type == "stop.status" {
			_ = json.Unmarshal(x.Data, &ev)
		}
	}
	if ev.StopID != "s2" || !ev.Override {
		t.Fatalf("last stop.status %+v, want s2 with override", ev)
	}
	if got := types(evs, "trip.status"); len(got) != 2 { // in_progress (s1), completed (s2)
		t.Fatalf("trip.status events %v, want 2", got)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGeotag: completing 200 m from the stop is refused, 100 m accepted;
// without lat/lng the driver's last stored fix decides.
func TestGeotag(t *testing.T) {
	e := newEnv(t, tripredis.Config{})
	rider := e.id("r")
	snap := e.create(t, rider, stopJSON("pickup", 0, ""), stopJSON("drop", 3000, ""), stopJSON("drop", 6000, ""))
	id := snap.Trip.ID
	did, dt := e.driver(t, id)
	complete := func(stop, body string) reply {
		return e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/"+stop+"/complete", dt, body)
	}
	// No position known yet.
	if r := complete("s1", ""); r.status != 422 || r.code != "too_far_from_stop" {
		t.Fatalf("no position: %d %s", r.status, r.raw)
	}
	r := complete("s1", fmt.Sprintf(`{"lat":%v,"lng":%v}`, north(200), pickLng))
	if r.status != 422 || r.code != "too_far_from_stop" {
		t.Fatalf("200 m: %d %s, want 422 too_far_from_stop", r.status, r.raw)
	}
	r = must(t, complete("s1", fmt.Sprintf(`{"lat":%v,"lng":%v}`, north(100), pickLng)), 200)
	if r.snap.Trip.Stops[0].Status != "completed" || r.snap.Trip.Status != "in_progress" {
		t.Fatalf("100 m: %s", r.raw)
	}
	// The stored fix: 200 m short of s2, then 100 m short.
	now := time.Now()
	e.ping(t, did, dt, 2800, now.Add(-10*time.Second), 1)
	waitFor(t, func() bool {
		r := complete("s2", "")
		return r.code == "too_far_from_stop" && strings.Contains(r.msg, "from stop s2")
	})
	e.ping(t, did, dt, 2900, now, 2)
	waitFor(t, func() bool { return complete("s2", "").status == 200 })
	// The last stop completes the trip.
	r = must(t, complete("s3", fmt.Sprintf(`{"lat":%v,"lng":%v}`, north(6000), pickLng)), 200)
	if r.snap.Trip.Status != "completed" {
		t.Fatalf("last stop: %s", r.raw)
	}
	if r := complete("s3", ""); r.status != 409 || r.code != "stop_status" {
		t.Fatalf("completed twice: %d %s", r.status, r.raw)
	}
}

// TestProofRequired: a drop whose policy asks for a photo is refused until
// the proof store has one.
func TestProofRequired(t *testing.T) {
	e := newEnv(t, tripredis.Config{})
	snap := e.create(t, e.id("r"), stopJSON("pickup", 0, ""), stopJSON("drop", 500, `{"photo":true}`))
	id := snap.Trip.ID
	_, dt := e.driver(t, id)
	here := func(m float64) string { return fmt.Sprintf(`{"lat":%v,"lng":%v}`, north(m), pickLng) }
	must(t, e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/s1/complete", dt, here(0)), 200)
	r := e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/s2/complete", dt, here(500))
	if r.status != 422 || r.code != "proof_required" {
		t.Fatalf("no proof store: %d %s", r.status, r.raw)
	}
	files := &proofFiles{}
	e.trips.SetProofFiles(files)
	if r := e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/s2/complete", dt, here(500)); r.code != "proof_required" {
		t.Fatalf("no photo: %d %s", r.status, r.raw)
	}
	files.set(id + "/s2/photo")
	must(t, e.do(t, http.MethodPost, "/v1/trips/"+id+"/stops/s2/complete", dt, here(500)), 200)
}

// proofFiles is a trip.ProofFiles holding the keys set.
type proofFiles struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (p *proofFiles) set(k string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys == nil {
		p.keys = map[string]bool{}
	}
	p.keys[k] = true
}

func (p *proofFiles) Has(_ context.Context, tripID, stopID, kind string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[tripID+"/"+stopID+"/"+kind], nil
}

// TestArrivalThresholds: as the driver nears the next stop,
// stop.approaching fires once when the ETA falls under the threshold and
// stop.arrived once after the dwell within the radius; more fixes fire
// nothing more.
func TestArrivalThresholds(t *testing.T) {
	e := newEnv(t, tripredis.Config{StopApproachingETA: 60 * time.Second, StopArrivedRadius: 50, StopArrivedDwell: 20 * time.Second, CitySpeed: 10})
	rider := e.id("r")
	rt := e.tok(t, "rider", rider)
	snap := e.create(t, rider, stopJSON("pickup", 0, ""), stopJSON("drop", 5000, ""))
	id := snap.Trip.ID
	did, dt := e.driver(t, id)
	t0 := time.Now().Add(-3 * time.Minute)
	step := func(m float64, at time.Duration, seq int) {
		e.ping(t, did, dt, m, t0.Add(at), seq)
		time.Sleep(150 * time.Millisecond) // moves of a trip are conflated: let each be seen
	}
	status := func() string {
		return must(t, e.do(t, http.MethodGet, "/v1/trips/"+id, rt, ""), 200).snap.Trip.Stops[0].Status
	}
	step(-1500, 0, 1) // 150 s away at 10 m/s
	if st := status(); st != "pending" {
		t.Fatalf("far away: stop %s", st)
	}
	step(-500, 60*time.Second, 2) // 50 s away
	waitFor(t, func() bool { return status() == "arriving" })
	step(-300, 80*time.Second, 3)
	step(-40, 100*time.Second, 4) // within 50 m: the dwell starts
	step(-20, 110*time.Second, 5)
	if st := status(); st != "arriving" {
		t.Fatalf("10 s within: stop %s, want arriving", st)
	}
	step(-10, 121*time.Second, 6) // 21 s within
	waitFor(t, func() bool { return status() == "arrived" })
	step(-5, 130*time.Second, 7)
	step(-2, 140*time.Second, 8)
	time.Sleep(300 * time.Millisecond)
	evs := e.events(t, id, rt)
	got := types(evs, "stop.")
	want := []string{"stop.approaching", "stop.status", "stop.arrived", "stop.status"}
	if !slices.Equal(got, want) {
		t.Fatalf("stop events %v, want %v", got, want)
	}
	var arr struct {
		StopID    string  `json:"stop_id"`
		DistanceM float64 `json:"distance_m"`
	}
	for _, ev := range evs {
		if ev.Type == "stop.arrived" {
			_ = json.Unmarshal(ev.Data, &arr)
		}
	}
	if arr.StopID != "s1" || arr.DistanceM > 50 {
		t.Fatalf("stop.arrived %+v", arr)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for range 100 {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met within 5s")
}

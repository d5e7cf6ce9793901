package tripredis_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

func TestCreateIdempotency(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	ctx := context.Background()
	a := trip.Actor{Role: trip.RoleRider, ID: e.ID("r")}
	first, created, err := e.Trips.Create(ctx, a, "key-1", triptest.Ride)
	if err != nil || !created {
		t.Fatalf("first: %v %v", err, created)
	}
	other := triptest.Ride
	other.Dropoff.Address = "somewhere else"
	tests := []struct {
		name    string
		actor   trip.Actor
		key     string
		req     trip.CreateRequest
		same    bool
		wantErr error
	}{
		{"same key same body", a, "key-1", triptest.Ride, true, nil},
		{"same key other body", a, "key-1", other, false, trip.ErrIdempotencyMismatch},
		{"other key same body", a, "key-2", triptest.Ride, false, nil},
		{"same key other rider", trip.Actor{Role: trip.RoleRider, ID: e.ID("r")}, "key-1", triptest.Ride, false, nil},
		{"no key", a, "", triptest.Ride, false, nil},
		{"key too long", a, strings.Repeat("k", 256), triptest.Ride, false, trip.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap, created, err := e.Trips.Create(ctx, tc.actor, tc.key, tc.req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("want %v, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.same != (snap.Trip.ID == first.Trip.ID) || created == tc.same {
				t.Fatalf("id %s (first %s), created %v", snap.Trip.ID, first.Trip.ID, created)
			}
		})
	}
	if n := e.StreamLen(t, first.Trip.ID); n != 1 {
		t.Fatalf("replays appended events: stream has %d", n)
	}
	// Concurrent retries with one key: one trip, one trip.created.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			s, _, err := e.Trips.Create(ctx, a, "key-race", triptest.Ride)
			if err != nil {
				t.Error(err)
			}
			ids[i] = s.Trip.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent creates gave %v", ids)
		}
	}
	if n := e.StreamLen(t, ids[0]); n != 1 {
		t.Fatalf("concurrent creates appended %d events", n)
	}
}

func TestCreateValidation(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	a := trip.Actor{Role: trip.RoleRider, ID: "r1"}
	bad := []struct {
		name string
		mod  func(r *trip.CreateRequest)
	}{
		{"kind", func(r *trip.CreateRequest) { r.Kind = "boat" }},
		{"payment", func(r *trip.CreateRequest) { r.Payment = "iou" }},
		{"lat", func(r *trip.CreateRequest) { r.Pickup.Lat = 91 }},
		{"null island", func(r *trip.CreateRequest) { r.Dropoff = trip.Place{} }},
		{"address", func(r *trip.CreateRequest) { r.Pickup.Address = strings.Repeat("x", 301) }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := triptest.Ride
			tc.mod(&r)
			if _, _, err := e.Trips.Create(context.Background(), a, "", r); !errors.Is(err, trip.ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
		})
	}
	if _, _, err := e.Trips.Create(context.Background(), trip.Actor{Role: trip.RoleDriver, ID: "d"}, "", triptest.Ride); !errors.Is(err, trip.ErrForbidden) {
		t.Fatalf("driver create: %v", err)
	}
	snap, _, err := e.Trips.Create(context.Background(), a, "", trip.CreateRequest{Kind: trip.KindDelivery, Payment: trip.PaymentOnline, Pickup: triptest.Ride.Pickup, Dropoff: triptest.Ride.Dropoff})
	if err != nil || snap.Trip.Status != trip.StatusAwaitingPayment {
		t.Fatalf("online delivery: %v %s", err, snap.Trip.Status)
	}
}

func TestChangeDropoffIfMatch(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	ctx := context.Background()
	snap, a := e.Create(t, triptest.Ride)
	id := snap.Trip.ID
	p := trip.Place{Lat: 52.4, Lng: 13.3, Address: "New"}
	s2, err := e.Trips.ChangeDropoff(ctx, id, a, p, snap.Version)
	if err != nil || s2.Version != snap.Version+1 || s2.Trip.Dropoff != p {
		t.Fatalf("matching If-Match: %v v%d %+v", err, s2.Version, s2.Trip.Dropoff)
	}
	// The old version again: 412 with the current version; nothing changes.
	_, err = e.Trips.ChangeDropoff(ctx, id, a, trip.Place{Lat: 1, Lng: 1}, snap.Version)
	var ve *trip.VersionError
	if !errors.As(err, &ve) || !errors.Is(err, trip.ErrVersionMismatch) || ve.Current != s2.Version {
		t.Fatalf("stale If-Match: %v", err)
	}
	if got, _ := e.Trips.Get(ctx, id); got.Dropoff != p || got.Version != s2.Version {
		t.Fatalf("stale change applied: %+v", got)
	}
	if n := e.StreamLen(t, id); n != 2 {
		t.Fatalf("stream has %d events, want 2", n)
	}
	// Without If-Match it applies; another rider may not.
	if _, err := e.Trips.ChangeDropoff(ctx, id, a, p, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Trips.ChangeDropoff(ctx, id, trip.Actor{Role: trip.RoleRider, ID: "other"}, p, 0); !errors.Is(err, trip.ErrForbidden) {
		t.Fatalf("other rider: %v", err)
	}
	for in, want := range map[string]int64{`3`: 3, `"3"`: 3, `W/"3"`: 3, `"3.17"`: 3} {
		if v, _, err := trip.ParseVersion(in); err != nil || v != want {
			t.Errorf("ParseVersion(%s) = %d, %v", in, v, err)
		}
	}
	for _, in := range []string{"", "x", "-1", "0", `"`, "1e3"} {
		if _, _, err := trip.ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q) accepted", in)
		}
	}
}

func TestAssignNeverTwoTrips(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	ctx := context.Background()
	d := e.Driver(t)
	t1, _ := e.Create(t, triptest.Ride)
	t2, _ := e.Create(t, triptest.Ride)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []string{t1.Trip.ID, t2.Trip.ID} {
		wg.Go(func() { errs[i] = e.Trips.Assign(ctx, id, d) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("one assign must win: %v", errs)
	}
	if !errors.Is(errors.Join(errs...), driver.ErrConflict) {
		t.Fatalf("loser: %v", errs)
	}
	// Many drivers race for one trip: one wins, the others are released.
	t3, _ := e.Create(t, triptest.Ride)
	ds := make([]string, 6)
	wins := make([]bool, len(ds))
	for i := range ds {
		ds[i] = e.Driver(t)
	}
	for i := range ds {
		wg.Go(func() { wins[i] = e.Trips.Assign(ctx, t3.Trip.ID, ds[i]) == nil })
	}
	wg.Wait()
	won := 0
	for i, w := range wins {
		st, _ := e.Drivers.Get(ctx, ds[i])
		if w {
			won++
			if st.Status != driver.StatusOnTrip || st.TripID != t3.Trip.ID {
				t.Fatalf("winner state %+v", st)
			}
		} else if st.Status != driver.StatusAvailable || st.TripID != "" {
			t.Fatalf("loser %s not released: %+v", ds[i], st)
		}
	}
	if won != 1 {
		t.Fatalf("%d drivers won one trip", won)
	}
	// Complete releases the driver; a driver's cancel returns the trip.
	got, _ := e.Trips.Get(ctx, t3.Trip.ID)
	da := trip.Actor{Role: trip.RoleDriver, ID: got.DriverID}
	snap, err := e.Trips.Cancel(ctx, t3.Trip.ID, da, "flat tyre")
	if err != nil || snap.Trip.Status != trip.StatusRequested || snap.Trip.DriverID != "" {
		t.Fatalf("driver cancel: %v %+v", err, snap.Trip)
	}
	if st, _ := e.Drivers.Get(ctx, da.ID); st.Status != driver.StatusAvailable {
		t.Fatalf("driver not released: %+v", st)
	}
	if ex, _ := e.Trips.Excluded(ctx, t3.Trip.ID); len(ex) != 1 || ex[0] != da.ID {
		t.Fatalf("excluded %v", ex)
	}
}

func TestMessages(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{MaxMessageLen: 20})
	ctx := context.Background()
	tr, ra, drv := e.TripIn(t, trip.StatusAssigned)
	da := trip.Actor{Role: trip.RoleDriver, ID: drv}
	p1, err := e.Trips.Chat().PostMessage(ctx, tr.ID, ra, trip.MessageRequest{ClientID: "m1", Text: " hi there "})
	if err != nil || p1.Duplicate {
		t.Fatal(err, p1)
	}
	p2, err := e.Trips.Chat().PostMessage(ctx, tr.ID, ra, trip.MessageRequest{ClientID: "m1", Text: "retry"})
	if err != nil || !p2.Duplicate || p2.EventID != p1.EventID {
		t.Fatalf("retry: %v %+v", err, p2)
	}
	p3, err := e.Trips.Chat().PostMessage(ctx, tr.ID, da, trip.MessageRequest{ClientID: "m1", Text: "on my way"})
	if err != nil || p3.Duplicate {
		t.Fatalf("same client id from another sender must be new: %v %+v", err, p3)
	}
	ev := e.LastEvent(t, tr.ID)
	if ev.Type != trip.EventMessage || !strings.Contains(string(ev.Data), `"text":"on my way"`) {
		t.Fatalf("event %s %s", ev.Type, ev.Data)
	}
	bad := []trip.MessageRequest{
		{ClientID: "", Text: "x"}, {ClientID: "a b", Text: "x"}, {ClientID: "m", Text: "   "},
		{ClientID: "m", Text: strings.Repeat("é", 21)}, {ClientID: "m", Text: "bell\x07"}, {ClientID: "m", Text: "\xff"},
	}
	for _, m := range bad {
		if _, err := e.Trips.Chat().PostMessage(ctx, tr.ID, ra, m); !errors.Is(err, trip.ErrInvalid) {
			t.Errorf("%q accepted: %v", m.Text, err)
		}
	}
	if _, err := e.Trips.Chat().PostMessage(ctx, tr.ID, trip.Actor{Role: trip.RoleRider, ID: "x"}, trip.MessageRequest{ClientID: "z", Text: "x"}); !errors.Is(err, trip.ErrForbidden) {
		t.Fatalf("stranger: %v", err)
	}
	if _, err := e.Trips.Cancel(ctx, tr.ID, ra, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Trips.Chat().PostMessage(ctx, tr.ID, ra, trip.MessageRequest{ClientID: "m9", Text: "late"}); !errors.Is(err, trip.ErrInvalidTransition) {
		t.Fatalf("message on a cancelled trip: %v", err)
	}
	if p, err := e.Trips.Chat().PostMessage(ctx, tr.ID, ra, trip.MessageRequest{ClientID: "m1", Text: "retry"}); err != nil || p.EventID != p1.EventID {
		t.Fatalf("retry after the trip ended must still answer: %v %+v", err, p)
	}
}

func TestShareLinks(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := triptest.MustEnv(t, tripredis.Config{Now: clock})
	ctx := context.Background()
	tr, ra, _ := e.TripIn(t, trip.StatusRequested)
	sh, err := e.Trips.Shares().Share(ctx, tr.ID, ra, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v := trip.Actor{Role: trip.RoleViewer, ID: sh.ID, Trip: tr.ID, Share: sh.ID}
	if _, err := e.Trips.Store().Snapshot(ctx, tr.ID, v); err != nil {
		t.Fatalf("viewer: %v", err)
	}
	other, _, _ := e.TripIn(t, trip.StatusRequested)
	if _, err := e.Trips.Store().Snapshot(ctx, other.ID, v); !errors.Is(err, trip.ErrForbidden) {
		t.Fatalf("viewer on another trip: %v", err)
	}
	if _, err := e.Trips.Shares().Share(ctx, tr.ID, trip.Actor{Role: trip.RoleRider, ID: "x"}, 0); !errors.Is(err, trip.ErrForbidden) {
		t.Fatalf("stranger shares: %v", err)
	}
	forged := v
	forged.Share = "s_forged"
	if _, err := e.Trips.Store().Snapshot(ctx, tr.ID, forged); !errors.Is(err, trip.ErrShareRevoked) {
		t.Fatalf("unknown share: %v", err)
	}
	if err := e.Trips.Shares().Revoke(ctx, tr.ID, ra, sh.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Trips.Store().Snapshot(ctx, tr.ID, v); !errors.Is(err, trip.ErrShareRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	ttl, _ := e.RDB.PTTL(ctx, revokedKeyFor(e, tr.ID, sh.ID)).Result()
	if ttl <= 0 || ttl > time.Hour+2*time.Minute {
		t.Fatalf("revocation TTL %v", ttl)
	}
	sh2, _ := e.Trips.Shares().Share(ctx, tr.ID, ra, time.Minute)
	v2 := trip.Actor{Role: trip.RoleViewer, ID: sh2.ID, Trip: tr.ID, Share: sh2.ID}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if err := e.Trips.Shares().CheckShare(ctx, tr.ID, v2.Share); !errors.Is(err, trip.ErrShareRevoked) {
		t.Fatalf("expired share: %v", err)
	}
}

// revokedKeyFor finds the revocation key by pattern (its layout is internal).
func revokedKeyFor(e *triptest.Env, tr, share string) string {
	keys, _ := e.RDB.Keys(context.Background(), "*trip:{"+tr+"}:revoked:"+share).Result()
	if len(keys) == 1 {
		return keys[0]
	}
	return "missing"
}

// TestLocationConflation drives a trip's driver and checks the stored
// location, the conflation of trip.location to one per period (latest
// wins, increasing seq) and the breadcrumbs.
//
// The per-trip gate runs on the service clock: here a fake one that only
// the test moves, so "one event per period" is checked exactly, whatever
// the scheduling delays of a loaded machine; the trailing publish still
// runs on real timers.
func TestLocationConflation(t *testing.T) {
	const every = 300 * time.Millisecond
	var clock atomic.Int64
	base := time.Now()
	now := func() time.Time { return base.Add(time.Duration(clock.Load())) }
	e := triptest.MustEnv(t, tripredis.Config{Now: now, LocationEvery: every, CrumbEvery: time.Hour, CrumbMeters: 50, MaxCrumbs: 5})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.Trips.Tracker().Run(ctx) }()
	e.Drivers.Listen(e.Trips.Tracker())
	tr, ra, drv := e.TripIn(t, trip.StatusAssigned)
	sub, err := e.Feed.Subscribe(ctx, trip.Topic(tr.ID), "")
	if err != nil {
		t.Fatal(err)
	}
	// next returns the next trip.location within d (ok false if none came),
	// checking its encoding.
	next := func(d time.Duration) (l trip.Location, ok bool) {
		t.Helper()
		timeout := time.After(d)
		for {
			select {
			case it := <-sub.C():
				if it.Event.Type != trip.EventLocation {
					continue
				}
				if err := jsonUnmarshal(it.Event.Data, &l); err != nil {
					t.Fatal(err)
				}
				// Published by the location script or by Go: the same bytes.
				want, _ := json.Marshal(struct {
					TripID string `json:"trip_id"`
					*trip.Location
				}{tr.ID, &l})
				if string(it.Event.Data) != string(want) {
					t.Fatalf("location data %s, want %s", it.Event.Data, want)
				}
				enc, err := it.JSON()
				if want, _ := json.Marshal(it.Event); err != nil || string(enc) != string(want) {
					t.Fatalf("item JSON %s (%v), want %s", enc, err, want)
				}
				return l, true
			case <-timeout:
				return l, false
			}
		}
	}
	const patience = 20 * time.Second
	start := time.Now().Add(-time.Minute)
	const n = 40
	lat := func(i int) float64 { return 52.5 + float64(i)*0.00018 }
	for i := range n {
		// 20 m steps, 1 s apart in ping time, all within one period of the
		// gate's clock. Each is stored before the next is sent, so every
		// fix counts for the breadcrumbs.
		ts := start.Add(time.Duration(i) * time.Second)
		p := driver.DecodedPing{Ping: driver.Ping{Seq: int64(i + 1), TS: ts,
			Pos: geo.Point{Lat: lat(i), Lng: 13.4}, Accuracy: nan, Speed: nan, Heading: nan}}
		if _, err := e.Drivers.Ingest(ctx, drv, []driver.DecodedPing{p}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(patience)
		for {
			l, err := e.Trips.Store().LocationOf(ctx, tr.ID)
			if err != nil {
				t.Fatal(err)
			}
			if l != nil && l.TS.UnixMilli() == ts.UnixMilli() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("fix %d never stored (stored %+v)", i+1, l)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	// The first fix opened the gate: published at once; the other 39 came
	// within the period and are held.
	first, ok := next(patience)
	if !ok {
		t.Fatal("the first fix was never published")
	}
	if first.Seq != 1 || math.Abs(first.Lat-lat(0)) > 1e-6 {
		t.Fatalf("first location event %+v, want seq 1 at %v", first, lat(0))
	}
	if l, ok := next(2 * every); ok {
		t.Fatalf("location event %+v within the period of the first: not conflated", l)
	}
	// The period is over: the trailing publish sends the newest fix, once.
	clock.Add(int64(every))
	last, ok := next(patience)
	if !ok {
		t.Fatal("the newest fix was never published once the period was over")
	}
	if last.Seq != n || math.Abs(last.Lat-lat(n-1)) > 1e-6 {
		t.Fatalf("trailing location event %+v, want the newest fix (seq %d at %v)", last, n, lat(n-1))
	}
	clock.Add(int64(every))
	if l, ok := next(2 * every); ok {
		t.Fatalf("location event %+v after the newest fix was published", l)
	}
	snap, err := e.Trips.Store().Snapshot(ctx, tr.ID, ra)
	if err != nil || snap.Location == nil || snap.Location.Seq != last.Seq || snap.Location.DriverID != drv {
		t.Fatalf("snapshot location %+v (%v)", snap.Location, err)
	}
	path, err := e.Trips.Store().Path(ctx, tr.ID, ra, 0)
	if err != nil || len(path) != 5 {
		t.Fatalf("path: %d points (%v), want the cap 5", len(path), err)
	}
	if path[4].Lat < path[0].Lat {
		t.Fatalf("path not oldest first: %+v", path)
	}
	// A driver not on the trip moves: nothing is stored.
	other := e.Driver(t)
	e.Trips.Tracker().DriverMoved(ctx, driver.Move{DriverID: other, TripID: tr.ID, Pos: geo.Point{Lat: 1, Lng: 1}, TS: time.Now()})
	time.Sleep(100 * time.Millisecond)
	if l, _ := e.Trips.Store().LocationOf(ctx, tr.ID); l.DriverID != drv {
		t.Fatalf("a stranger's fix was stored: %+v", l)
	}
}

var nan = math.NaN()

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

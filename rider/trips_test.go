package rider_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/rider"
)

func TestCreateIdempotency(t *testing.T) {
	e := mustEnv(t, rider.Config{})
	ctx := context.Background()
	a := rider.Actor{Role: rider.RoleRider, ID: e.id("r")}
	first, created, err := e.trips.Create(ctx, a, "key-1", ride)
	if err != nil || !created {
		t.Fatalf("first: %v %v", err, created)
	}
	other := ride
	other.Dropoff.Address = "somewhere else"
	tests := []struct {
		name    string
		actor   rider.Actor
		key     string
		req     rider.CreateRequest
		same    bool
		wantErr error
	}{
		{"same key same body", a, "key-1", ride, true, nil},
		{"same key other body", a, "key-1", other, false, rider.ErrIdempotencyMismatch},
		{"other key same body", a, "key-2", ride, false, nil},
		{"same key other rider", rider.Actor{Role: rider.RoleRider, ID: e.id("r")}, "key-1", ride, false, nil},
		{"no key", a, "", ride, false, nil},
		{"key too long", a, strings.Repeat("k", 256), ride, false, rider.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap, created, err := e.trips.Create(ctx, tc.actor, tc.key, tc.req)
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
	if n := e.streamLen(t, first.Trip.ID); n != 1 {
		t.Fatalf("replays appended events: stream has %d", n)
	}
	// Concurrent retries with one key: one trip, one trip.created.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			s, _, err := e.trips.Create(ctx, a, "key-race", ride)
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
	if n := e.streamLen(t, ids[0]); n != 1 {
		t.Fatalf("concurrent creates appended %d events", n)
	}
}

func TestCreateValidation(t *testing.T) {
	e := mustEnv(t, rider.Config{})
	a := rider.Actor{Role: rider.RoleRider, ID: "r1"}
	bad := []struct {
		name string
		mod  func(r *rider.CreateRequest)
	}{
		{"kind", func(r *rider.CreateRequest) { r.Kind = "boat" }},
		{"payment", func(r *rider.CreateRequest) { r.Payment = "iou" }},
		{"lat", func(r *rider.CreateRequest) { r.Pickup.Lat = 91 }},
		{"null island", func(r *rider.CreateRequest) { r.Dropoff = rider.Place{} }},
		{"address", func(r *rider.CreateRequest) { r.Pickup.Address = strings.Repeat("x", 301) }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := ride
			tc.mod(&r)
			if _, _, err := e.trips.Create(context.Background(), a, "", r); !errors.Is(err, rider.ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
		})
	}
	if _, _, err := e.trips.Create(context.Background(), rider.Actor{Role: rider.RoleDriver, ID: "d"}, "", ride); !errors.Is(err, rider.ErrForbidden) {
		t.Fatalf("driver create: %v", err)
	}
	snap, _, err := e.trips.Create(context.Background(), a, "", rider.CreateRequest{Kind: rider.KindDelivery, Payment: rider.PaymentOnline, Pickup: ride.Pickup, Dropoff: ride.Dropoff})
	if err != nil || snap.Trip.Status != rider.StatusAwaitingPayment {
		t.Fatalf("online delivery: %v %s", err, snap.Trip.Status)
	}
}

func TestChangeDropoffIfMatch(t *testing.T) {
	e := mustEnv(t, rider.Config{})
	ctx := context.Background()
	snap, a := e.create(t, ride)
	id := snap.Trip.ID
	p := rider.Place{Lat: 52.4, Lng: 13.3, Address: "New"}
	s2, err := e.trips.ChangeDropoff(ctx, id, a, p, snap.Version)
	if err != nil || s2.Version != snap.Version+1 || s2.Trip.Dropoff != p {
		t.Fatalf("matching If-Match: %v v%d %+v", err, s2.Version, s2.Trip.Dropoff)
	}
	// The old version again: 412 with the current version; nothing changes.
	_, err = e.trips.ChangeDropoff(ctx, id, a, rider.Place{Lat: 1, Lng: 1}, snap.Version)
	var ve *rider.VersionError
	if !errors.As(err, &ve) || !errors.Is(err, rider.ErrVersionMismatch) || ve.Current != s2.Version {
		t.Fatalf("stale If-Match: %v", err)
	}
	if got, _ := e.trips.Get(ctx, id); got.Dropoff != p || got.Version != s2.Version {
		t.Fatalf("stale change applied: %+v", got)
	}
	if n := e.streamLen(t, id); n != 2 {
		t.Fatalf("stream has %d events, want 2", n)
	}
	// Without If-Match it applies; another rider may not.
	if _, err := e.trips.ChangeDropoff(ctx, id, a, p, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.trips.ChangeDropoff(ctx, id, rider.Actor{Role: rider.RoleRider, ID: "other"}, p, 0); !errors.Is(err, rider.ErrForbidden) {
		t.Fatalf("other rider: %v", err)
	}
	for in, want := range map[string]int64{`3`: 3, `"3"`: 3, `W/"3"`: 3, `"3.17"`: 3} {
		if v, _, err := rider.ParseVersion(in); err != nil || v != want {
			t.Errorf("ParseVersion(%s) = %d, %v", in, v, err)
		}
	}
	for _, in := range []string{"", "x", "-1", "0", `"`, "1e3"} {
		if _, _, err := rider.ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q) accepted", in)
		}
	}
}

func TestAssignNeverTwoTrips(t *testing.T) {
	e := mustEnv(t, rider.Config{})
	ctx := context.Background()
	d := e.driver(t)
	t1, _ := e.create(t, ride)
	t2, _ := e.create(t, ride)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []string{t1.Trip.ID, t2.Trip.ID} {
		wg.Go(func() { errs[i] = e.trips.Assign(ctx, id, d) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("one assign must win: %v", errs)
	}
	if !errors.Is(errors.Join(errs...), driver.ErrConflict) {
		t.Fatalf("loser: %v", errs)
	}
	// Many drivers race for one trip: one wins, the others are released.
	t3, _ := e.create(t, ride)
	ds := make([]string, 6)
	wins := make([]bool, len(ds))
	for i := range ds {
		ds[i] = e.driver(t)
	}
	for i := range ds {
		wg.Go(func() { wins[i] = e.trips.Assign(ctx, t3.Trip.ID, ds[i]) == nil })
	}
	wg.Wait()
	won := 0
	for i, w := range wins {
		st, _ := e.drivers.Get(ctx, ds[i])
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
	got, _ := e.trips.Get(ctx, t3.Trip.ID)
	da := rider.Actor{Role: rider.RoleDriver, ID: got.DriverID}
	snap, err := e.trips.Cancel(ctx, t3.Trip.ID, da, "flat tyre")
	if err != nil || snap.Trip.Status != rider.StatusRequested || snap.Trip.DriverID != "" {
		t.Fatalf("driver cancel: %v %+v", err, snap.Trip)
	}
	if st, _ := e.drivers.Get(ctx, da.ID); st.Status != driver.StatusAvailable {
		t.Fatalf("driver not released: %+v", st)
	}
	if ex, _ := e.trips.Excluded(ctx, t3.Trip.ID); len(ex) != 1 || ex[0] != da.ID {
		t.Fatalf("excluded %v", ex)
	}
}

func TestMessages(t *testing.T) {
	e := mustEnv(t, rider.Config{MaxMessageLen: 20})
	ctx := context.Background()
	trip, ra, drv := e.tripIn(t, rider.StatusAssigned)
	da := rider.Actor{Role: rider.RoleDriver, ID: drv}
	p1, err := e.trips.PostMessage(ctx, trip.ID, ra, rider.MessageRequest{ClientID: "m1", Text: " hi there "})
	if err != nil || p1.Duplicate {
		t.Fatal(err, p1)
	}
	p2, err := e.trips.PostMessage(ctx, trip.ID, ra, rider.MessageRequest{ClientID: "m1", Text: "retry"})
	if err != nil || !p2.Duplicate || p2.EventID != p1.EventID {
		t.Fatalf("retry: %v %+v", err, p2)
	}
	p3, err := e.trips.PostMessage(ctx, trip.ID, da, rider.MessageRequest{ClientID: "m1", Text: "on my way"})
	if err != nil || p3.Duplicate {
		t.Fatalf("same client id from another sender must be new: %v %+v", err, p3)
	}
	ev := e.lastEvent(t, trip.ID)
	if ev.Type != rider.EventMessage || !strings.Contains(string(ev.Data), `"text":"on my way"`) {
		t.Fatalf("event %s %s", ev.Type, ev.Data)
	}
	bad := []rider.MessageRequest{
		{ClientID: "", Text: "x"}, {ClientID: "a b", Text: "x"}, {ClientID: "m", Text: "   "},
		{ClientID: "m", Text: strings.Repeat("é", 21)}, {ClientID: "m", Text: "bell\x07"}, {ClientID: "m", Text: "\xff"},
	}
	for _, m := range bad {
		if _, err := e.trips.PostMessage(ctx, trip.ID, ra, m); !errors.Is(err, rider.ErrInvalid) {
			t.Errorf("%q accepted: %v", m.Text, err)
		}
	}
	if _, err := e.trips.PostMessage(ctx, trip.ID, rider.Actor{Role: rider.RoleRider, ID: "x"}, rider.MessageRequest{ClientID: "z", Text: "x"}); !errors.Is(err, rider.ErrForbidden) {
		t.Fatalf("stranger: %v", err)
	}
	if _, err := e.trips.Cancel(ctx, trip.ID, ra, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.trips.PostMessage(ctx, trip.ID, ra, rider.MessageRequest{ClientID: "m9", Text: "late"}); !errors.Is(err, rider.ErrInvalidTransition) {
		t.Fatalf("message on a cancelled trip: %v", err)
	}
	if p, err := e.trips.PostMessage(ctx, trip.ID, ra, rider.MessageRequest{ClientID: "m1", Text: "retry"}); err != nil || p.EventID != p1.EventID {
		t.Fatalf("retry after the trip ended must still answer: %v %+v", err, p)
	}
}

func TestShareLinks(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := mustEnv(t, rider.Config{Now: clock})
	ctx := context.Background()
	trip, ra, _ := e.tripIn(t, rider.StatusRequested)
	sh, err := e.trips.Share(ctx, trip.ID, ra, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v := rider.Actor{Role: rider.RoleViewer, ID: sh.ID, Trip: trip.ID, Share: sh.ID}
	if _, err := e.trips.Snapshot(ctx, trip.ID, v); err != nil {
		t.Fatalf("viewer: %v", err)
	}
	other, _, _ := e.tripIn(t, rider.StatusRequested)
	if _, err := e.trips.Snapshot(ctx, other.ID, v); !errors.Is(err, rider.ErrForbidden) {
		t.Fatalf("viewer on another trip: %v", err)
	}
	if _, err := e.trips.Share(ctx, trip.ID, rider.Actor{Role: rider.RoleRider, ID: "x"}, 0); !errors.Is(err, rider.ErrForbidden) {
		t.Fatalf("stranger shares: %v", err)
	}
	forged := v
	forged.Share = "s_forged"
	if _, err := e.trips.Snapshot(ctx, trip.ID, forged); !errors.Is(err, rider.ErrShareRevoked) {
		t.Fatalf("unknown share: %v", err)
	}
	if err := e.trips.Revoke(ctx, trip.ID, ra, sh.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.trips.Snapshot(ctx, trip.ID, v); !errors.Is(err, rider.ErrShareRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	ttl, _ := e.rdb.PTTL(ctx, revokedKeyFor(e, trip.ID, sh.ID)).Result()
	if ttl <= 0 || ttl > time.Hour+2*time.Minute {
		t.Fatalf("revocation TTL %v", ttl)
	}
	sh2, _ := e.trips.Share(ctx, trip.ID, ra, time.Minute)
	v2 := rider.Actor{Role: rider.RoleViewer, ID: sh2.ID, Trip: trip.ID, Share: sh2.ID}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if err := e.trips.CheckShare(ctx, trip.ID, v2.Share); !errors.Is(err, rider.ErrShareRevoked) {
		t.Fatalf("expired share: %v", err)
	}
}

// revokedKeyFor finds the revocation key by pattern (its layout is internal).
func revokedKeyFor(e *env, trip, share string) string {
	keys, _ := e.rdb.Keys(context.Background(), "*trip:{"+trip+"}:revoked:"+share).Result()
	if len(keys) == 1 {
		return keys[0]
	}
	return "missing"
}

// TestLocationConflation drives a trip's driver and checks the stored
// location, the conflation of trip.location to one per period (latest
// wins, increasing seq) and the breadcrumbs.
func TestLocationConflation(t *testing.T) {
	e := mustEnv(t, rider.Config{LocationEvery: 300 * time.Millisecond, CrumbEvery: time.Hour, CrumbMeters: 50, MaxCrumbs: 5})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.trips.Run(ctx) }()
	e.drivers.Listen(e.trips)
	trip, ra, drv := e.tripIn(t, rider.StatusAssigned)
	sub, err := e.feed.Subscribe(ctx, rider.Topic(trip.ID), "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute)
	const n = 40
	for i := range n {
		// 20 m steps, 1 s apart in ping time, sent as fast as possible.
		p := driver.DecodedPing{Ping: driver.Ping{Seq: int64(i + 1), TS: start.Add(time.Duration(i) * time.Second),
			Pos: geo.Point{Lat: 52.5 + float64(i)*0.00018, Lng: 13.4}, Accuracy: nan, Speed: nan, Heading: nan}}
		if _, err := e.drivers.Ingest(ctx, drv, []driver.DecodedPing{p}); err != nil {
			t.Fatal(err)
		}
	}
	sent := time.Now()
	var seqs []int64
	var got []time.Time
	deadline := time.After(3 * time.Second)
loop:
	for {
		select {
		case it := <-sub.C():
			if it.Event.Type != rider.EventLocation {
				continue
			}
			var l rider.Location
			if err := jsonUnmarshal(it.Event.Data, &l); err != nil {
				t.Fatal(err)
			}
			// Published by the location script or by Go: the same bytes.
			want, _ := json.Marshal(struct {
				TripID string `json:"trip_id"`
				*rider.Location
			}{trip.ID, &l})
			if string(it.Event.Data) != string(want) {
				t.Fatalf("location data %s, want %s", it.Event.Data, want)
			}
			enc, err := it.JSON()
			if want, _ := json.Marshal(it.Event); err != nil || string(enc) != string(want) {
				t.Fatalf("item JSON %s (%v), want %s", enc, err, want)
			}
			seqs = append(seqs, l.Seq)
			got = append(got, time.Now())
			if l.Lat > 52.5+float64(n-1)*0.00018-1e-6 {
				break loop // the newest fix arrived
			}
		case <-deadline:
			t.Fatalf("newest fix never published; got seqs %v", seqs)
		}
	}
	if len(seqs) > 1+int(time.Since(sent)/(300*time.Millisecond))+1 {
		t.Fatalf("%d location events in %v: not conflated", len(seqs), time.Since(sent))
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("seqs not increasing: %v", seqs)
		}
		if gap := got[i].Sub(got[i-1]); gap < 250*time.Millisecond {
			t.Fatalf("two location events %v apart", gap)
		}
	}
	snap, err := e.trips.Snapshot(ctx, trip.ID, ra)
	if err != nil || snap.Location == nil || snap.Location.Seq != seqs[len(seqs)-1] || snap.Location.DriverID != drv {
		t.Fatalf("snapshot location %+v (%v)", snap.Location, err)
	}
	path, err := e.trips.Path(ctx, trip.ID, ra, 0)
	if err != nil || len(path) != 5 {
		t.Fatalf("path: %d points (%v), want the cap 5", len(path), err)
	}
	if path[4].Lat < path[0].Lat {
		t.Fatalf("path not oldest first: %+v", path)
	}
	// A driver not on the trip moves: nothing is stored.
	other := e.driver(t)
	e.trips.DriverMoved(ctx, driver.Move{DriverID: other, TripID: trip.ID, Pos: geo.Point{Lat: 1, Lng: 1}, TS: time.Now()})
	time.Sleep(100 * time.Millisecond)
	if l, _ := e.trips.LocationOf(ctx, trip.ID); l.DriverID != drv {
		t.Fatalf("a stranger's fix was stored: %+v", l)
	}
}

var nan = math.NaN()

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

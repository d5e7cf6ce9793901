package zoneredis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/zone"
	"github.com/hextrack/hextrack/zone/zoneredis"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func rectGeoJSON(w, s, e, n float64) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`,
		w, s, e, s, e, n, w, n, w, s))
}

type env struct {
	store   *zoneredis.Store
	tracker *zoneredis.Tracker
	feed    *feedredis.Broker
	now     *time.Time
	mu      *sync.Mutex
}

func open(t *testing.T) env {
	t.Helper()
	rdb, prefix := redistest.MustOpen(t)
	b := feedredis.New(rdb, feedredis.Config{Prefix: prefix})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = b.Run(ctx) }()
	t.Cleanup(func() { cancel(); _ = b.Close() })
	now, mu := t0, &sync.Mutex{}
	cfg := zoneredis.Config{Prefix: prefix, Stale: 30 * time.Second, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	s := zoneredis.NewStore(rdb, cfg)
	return env{store: s, tracker: zoneredis.NewTracker(s, b.Publisher), feed: b, now: &now, mu: mu}
}

func (e env) create(t *testing.T, name, kind string, g json.RawMessage) zone.Zone {
	t.Helper()
	d := 60.0
	z, err := e.store.Create(context.Background(), zone.Input{Name: &name, Kind: &kind, Geometry: g, DwellAfterS: &d})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func (e env) events(t *testing.T, topic string) []feed.Event {
	t.Helper()
	evs, _, err := e.feed.Read(context.Background(), topic, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func types(evs []feed.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		var d zone.Event
		_ = json.Unmarshal(e.Data, &d)
		out[i] = e.Type + " " + d.Zone
	}
	return out
}

func fix(lat, lng float64, s int) []zone.Fix {
	return []zone.Fix{{Pos: geo.Point{Lat: lat, Lng: lng}, TS: t0.Add(time.Duration(s) * time.Second)}}
}

func TestCRUD(t *testing.T) {
	e := open(t)
	ctx := context.Background()
	z := e.create(t, "airport queue", zone.KindQueue, rectGeoJSON(13.40, 52.50, 13.41, 52.51))
	got, err := e.store.Get(ctx, z.ID)
	if err != nil || got.Name != "airport queue" || got.Version != 1 {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if e.store.Index().Len() != 1 {
		t.Fatalf("index holds %d zones", e.store.Index().Len())
	}
	name := "queue B"
	up, err := e.store.Update(ctx, z.ID, zone.Input{Name: &name, Geometry: rectGeoJSON(13.50, 52.50, 13.51, 52.51)})
	if err != nil || up.Version != 2 || up.Name != name || up.Kind != zone.KindQueue {
		t.Fatalf("update: %+v, %v", up, err)
	}
	if ids := e.store.Index().At(geo.Point{Lat: 52.505, Lng: 13.505}); len(ids) != 1 {
		t.Fatalf("index not rebuilt after the update: %v", ids)
	}
	bad := rectGeoJSON(13, 52, 14, 53)
	if _, err := e.store.Update(ctx, z.ID, zone.Input{Geometry: bad}); !errors.Is(err, zone.ErrTooLarge) {
		t.Fatalf("update too large: %v", err)
	}
	// Another node sees the change on its next reload.
	other := zoneredis.NewStore(e.storeRDB(t), e.store.Config())
	if err := other.Reload(ctx); err != nil || other.Index().Len() != 1 {
		t.Fatalf("other node: %d zones, %v", other.Index().Len(), err)
	}
	if err := e.store.Delete(ctx, z.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Get(ctx, z.ID); !errors.Is(err, zone.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := e.store.Delete(ctx, z.ID); !errors.Is(err, zone.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if err := other.Reload(ctx); err != nil || other.Index().Len() != 0 {
		t.Fatalf("other node after delete: %d zones, %v", other.Index().Len(), err)
	}
}

func TestTransitionsAcrossNodes(t *testing.T) {
	e := open(t)
	ctx := context.Background()
	a := e.create(t, "A", zone.KindQueue, rectGeoJSON(13.40, 52.50, 13.41, 52.51))
	b := e.create(t, "B", zone.KindQueue, rectGeoJSON(13.41, 52.50, 13.42, 52.51))
	thin := e.create(t, "thin", zone.KindRestricted, rectGeoJSON(13.4300, 52.50, 13.4003+0.03, 52.51))
	// A second node: its own store and tracker over the same Redis.
	e2 := e.tracker2(t)
	steps := []struct {
		tr  *zoneredis.Tracker
		fix []zone.Fix
	}{
		{e.tracker, fix(52.505, 13.405, 0)},  // in A
		{e2, fix(52.505, 13.415, 20)},        // A → B, on the other node
		{e.tracker, fix(52.505, 13.425, 40)}, // B → outside
		{e2, fix(52.505, 13.44, 50)},         // jumps across the thin zone
	}
	for _, s := range steps {
		if _, err := s.tr.Apply(ctx, "d1", 0, s.fix, false); err != nil {
			t.Fatal(err)
		}
	}
	got := types(e.events(t, zoneredis.DriverTopic("d1")))
	want := []string{"zone.entered " + a.ID, "zone.exited " + a.ID, "zone.entered " + b.ID, "zone.exited " + b.ID,
		"zone.entered " + thin.ID, "zone.exited " + thin.ID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("driver topic:\n got %v\nwant %v", got, want)
	}
	if got := types(e.events(t, zone.Topic(b.ID))); fmt.Sprint(got) != fmt.Sprint(want[2:4]) {
		t.Fatalf("zone B topic: %v", got)
	}
	// Who is inside, then stale.
	if _, err := e.tracker.Apply(ctx, "d2", 0, fix(52.505, 13.405, 60), false); err != nil {
		t.Fatal(err)
	}
	in, err := e.store.Drivers(ctx, a.ID)
	if err != nil || len(in) != 1 || in[0].DriverID != "d2" {
		t.Fatalf("inside A: %+v, %v", in, err)
	}
	e.mu.Lock()
	*e.now = t0.Add(60*time.Second + 31*time.Second)
	e.mu.Unlock()
	n, err := e.tracker.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	evs := e.events(t, zoneredis.DriverTopic("d2"))
	var last zone.Event
	_ = json.Unmarshal(evs[len(evs)-1].Data, &last)
	if last.Type != zone.EventExited || last.Reason != zone.ReasonStale || last.Zone != a.ID {
		t.Fatalf("after sweep: %+v", last)
	}
	if in, err := e.store.Drivers(ctx, a.ID); err != nil || len(in) != 0 {
		t.Fatalf("inside A after sweep: %+v, %v", in, err)
	}
	// Offline inside: exited at once.
	if _, err := e.tracker.Apply(ctx, "d3", 0, fix(52.505, 13.405, 100), false); err != nil {
		t.Fatal(err)
	}
	evsOff, err := e.tracker.Apply(ctx, "d3", 0, fix(52.505, 13.405, 101), true)
	if err != nil || len(evsOff) != 1 || evsOff[0].Reason != zone.ReasonOffline {
		t.Fatalf("offline: %+v, %v", evsOff, err)
	}
}

func TestConcurrentNodesOneDriver(t *testing.T) {
	e := open(t)
	ctx := context.Background()
	a := e.create(t, "A", zone.KindQueue, rectGeoJSON(13.40, 52.50, 13.41, 52.51))
	e2 := e.tracker2(t)
	// Two nodes take the next fix of one driver from a shared counter and
	// apply it at once (inside at even seconds, outside at odd): the
	// compared write keeps the events alternating whatever the
	// interleaving, and an older fix than the stored one changes nothing.
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, tr := range []*zoneredis.Tracker{e.tracker, e2} {
		wg.Go(func() {
			for {
				s := int(next.Add(1) - 1)
				if s >= 40 {
					return
				}
				lng := 13.405
				if s%2 == 1 {
					lng = 13.395
				}
				if _, err := tr.Apply(ctx, "d1", 0, fix(52.505, lng, s), false); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	evs := e.events(t, zoneredis.DriverTopic("d1"))
	for i, ev := range evs {
		want := zone.EventEntered
		if i%2 == 1 {
			want = zone.EventExited
		}
		if ev.Type != want {
			t.Fatalf("event %d is %s, want %s: %v", i, ev.Type, want, types(evs))
		}
	}
	// The last fix (39 s, outside) is the newest: it is always applied.
	if len(evs)%2 != 0 {
		t.Fatalf("driver left inside: %v", types(evs))
	}
	if in, err := e.store.Drivers(ctx, a.ID); err != nil || len(in) != 0 {
		t.Fatalf("inside after the last fix: %v, %v", in, err)
	}
	t.Logf("%d events", len(evs))
	_ = a
}

func TestListenerSkipsFarMoves(t *testing.T) {
	e := open(t)
	e.create(t, "A", zone.KindQueue, rectGeoJSON(13.40, 52.50, 13.41, 52.51))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.tracker.Run(ctx) }()
	defer func() { cancel(); <-done }()
	far := geo.Point{Lat: 48.85, Lng: 2.35}
	e.tracker.DriverMoved(ctx, driver.Move{DriverID: "far", Status: driver.StatusAvailable, From: geo.CellOf(far, geo.ResIndex), Pos: far, TS: t0})
	in := geo.Point{Lat: 52.505, Lng: 13.405}
	e.tracker.DriverMoved(ctx, driver.Move{DriverID: "near", Status: driver.StatusAvailable, Pos: in, TS: t0})
	deadline := time.Now().Add(5 * time.Second)
	for len(e.events(t, zoneredis.DriverTopic("near"))) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no zone.entered for the driver inside")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if evs := e.events(t, zoneredis.DriverTopic("far")); len(evs) != 0 {
		t.Fatalf("far driver got %v", types(evs))
	}
}

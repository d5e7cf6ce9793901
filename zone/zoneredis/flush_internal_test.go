package zoneredis

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/zone"
)

// TestQuietStepsWrittenLater: steps of a driver inside a zone that change
// nothing but its last fix are not written to Redis until flushEvery has
// passed since the last write; a step with an event is written at once,
// from the newest fix this node holds.
func TestQuietStepsWrittenLater(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	b := feedredis.New(rdb, feedredis.Config{Prefix: prefix})
	t.Cleanup(func() { _ = b.Close() })
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	cfg := Config{Prefix: prefix, Stale: 30 * time.Second, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	s := NewStore(rdb, cfg)
	ctx := context.Background()
	name, kind := "A", zone.KindQueue
	if _, err := s.Create(ctx, zone.Input{Name: &name, Kind: &kind,
		Geometry: json.RawMessage(`{"type":"Polygon","coordinates":[[[13.40,52.50],[13.41,52.50],[13.41,52.51],[13.40,52.51],[13.40,52.50]]]}`)}); err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(s, b.Publisher)
	at := func(lng float64, sec int) []zone.Fix {
		return []zone.Fix{{Pos: geo.Point{Lat: 52.505, Lng: lng}, TS: t0.Add(time.Duration(sec) * time.Second)}}
	}
	stored := func() time.Time {
		st, _, err := s.loadState(ctx, "d1")
		if err != nil || st.Last == nil {
			t.Fatalf("state: %+v, %v", st, err)
		}
		return st.Last.TS
	}
	step := func(lng float64, sec int, wantEvents int) {
		t.Helper()
		mu.Lock()
		now = t0.Add(time.Duration(sec) * time.Second)
		mu.Unlock()
		evs, err := tr.Apply(ctx, "d1", 0, at(lng, sec), false)
		if err != nil || len(evs) != wantEvents {
			t.Fatalf("step at %ds: %+v, %v; want %d events", sec, evs, err, wantEvents)
		}
	}
	step(13.405, 0, 1) // entered: written
	if got := stored(); !got.Equal(t0) {
		t.Fatalf("stored last fix %v, want %v", got, t0)
	}
	step(13.406, 3, 0)
	step(13.407, 6, 0)
	if got := stored(); !got.Equal(t0) {
		t.Fatalf("quiet steps were written: last fix %v", got)
	}
	step(13.408, 11, 0) // flushEvery (10 s) since the write
	if got := stored(); !got.Equal(t0.Add(11 * time.Second)) {
		t.Fatalf("stored last fix %v, want the 11 s one", got)
	}
	step(13.409, 13, 0)
	step(13.415, 14, 1) // exited, segment from this node's newest fix
	st, _, err := s.loadState(ctx, "d1")
	if err != nil || len(st.Inside) != 0 || !st.Last.TS.Equal(t0.Add(14*time.Second)) {
		t.Fatalf("after the exit: %+v, %v", st, err)
	}
	evs, _, err := b.Read(ctx, DriverTopic("d1"), "", 10)
	if err != nil || len(evs) != 2 {
		t.Fatalf("driver topic: %d events, %v", len(evs), err)
	}
	var ex zone.Event
	_ = json.Unmarshal(evs[1].Data, &ex)
	if ex.Type != zone.EventExited || ex.TS.Before(t0.Add(13*time.Second)) {
		t.Fatalf("exit %+v: want it between the 13 s and 14 s fixes", ex)
	}
}

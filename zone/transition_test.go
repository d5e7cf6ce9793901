package zone_test

import (
	"testing"
	"time"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/zone"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func fix(lat, lng float64, s int) zone.Fix {
	return zone.Fix{Pos: geo.Point{Lat: lat, Lng: lng}, TS: t0.Add(time.Duration(s) * time.Second)}
}

type evKey struct{ typ, zone, reason string }

func keys(evs []zone.Event) []evKey {
	out := make([]evKey, len(evs))
	for i, e := range evs {
		out[i] = evKey{e.Type, e.Zone, e.Reason}
	}
	return out
}

func wantEvents(t *testing.T, got []zone.Event, want ...evKey) {
	t.Helper()
	g := keys(got)
	if len(g) != len(want) {
		t.Fatalf("events %v, want %v", g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("events %v, want %v", g, want)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].TS.Before(got[i-1].TS) {
			t.Fatalf("event %d at %v before event %d at %v", i, got[i].TS, i-1, got[i-1].TS)
		}
	}
}

func TestStepCrossing(t *testing.T) {
	// A zone 20 m wide (north–south strip), far thinner than an r9 cell.
	thin := mustZone(t, "z_thin", zone.KindRestricted, rect(13.4000, 52.50, 13.4003, 52.51), 60)
	x := mustIndex(t, thin)
	s, evs := zone.Step(x, zone.State{}, "d1", fix(52.505, 13.39, 0))
	wantEvents(t, evs)
	s, evs = zone.Step(x, s, "d1", fix(52.505, 13.41, 60))
	wantEvents(t, evs, evKey{zone.EventEntered, "z_thin", zone.ReasonCrossed}, evKey{zone.EventExited, "z_thin", zone.ReasonCrossed})
	if len(s.Inside) != 0 {
		t.Fatalf("inside %v after crossing", s.Inside)
	}
	// Interpolated: the strip is at about the middle of the segment.
	if got := evs[0].TS.Sub(t0); got < 29*time.Second || got > 31*time.Second {
		t.Fatalf("entered at +%v, want about +30s", got)
	}
}

func TestStepAdjacentExitBeforeEnter(t *testing.T) {
	a := mustZone(t, "z_b_first_by_id_is_a", zone.KindQueue, rect(13.40, 52.50, 13.41, 52.51), 60)
	b := mustZone(t, "z_a_second", zone.KindQueue, rect(13.41, 52.50, 13.42, 52.51), 60) // shares a's east edge
	x := mustIndex(t, a, b)
	s, evs := zone.Step(x, zone.State{}, "d1", fix(52.505, 13.405, 0))
	wantEvents(t, evs, evKey{zone.EventEntered, a.ID, zone.ReasonFix})
	s, evs = zone.Step(x, s, "d1", fix(52.505, 13.415, 20))
	// b's id sorts first: the order comes from the phases, not the ids.
	wantEvents(t, evs, evKey{zone.EventExited, a.ID, zone.ReasonFix}, evKey{zone.EventEntered, b.ID, zone.ReasonFix})
	if !evs[0].TS.Equal(evs[1].TS) {
		t.Fatalf("shared edge crossed at %v and %v", evs[0].TS, evs[1].TS)
	}
	if len(s.Inside) != 1 || s.Inside[0].Zone != b.ID {
		t.Fatalf("inside %v", s.Inside)
	}
	// And back, with b's exit first.
	_, evs = zone.Step(x, s, "d1", fix(52.505, 13.405, 40))
	wantEvents(t, evs, evKey{zone.EventExited, b.ID, zone.ReasonFix}, evKey{zone.EventEntered, a.ID, zone.ReasonFix})
}

func TestStepDwellAndLeave(t *testing.T) {
	q := mustZone(t, "z_queue", zone.KindQueue, rect(13.40, 52.50, 13.41, 52.51), 60)
	x := mustIndex(t, q)
	s, evs := zone.Step(x, zone.State{}, "d1", fix(52.505, 13.395, 0))
	wantEvents(t, evs)
	s, evs = zone.Step(x, s, "d1", fix(52.505, 13.405, 10))
	wantEvents(t, evs, evKey{zone.EventEntered, q.ID, zone.ReasonFix})
	entered := evs[0].TS
	s, evs = zone.Step(x, s, "d1", fix(52.5051, 13.405, 40))
	wantEvents(t, evs)
	s, evs = zone.Step(x, s, "d1", fix(52.5052, 13.405, 100))
	wantEvents(t, evs, evKey{zone.EventDwell, q.ID, zone.ReasonDwell})
	if got := evs[0].TS.Sub(entered); got != time.Minute {
		t.Fatalf("dwell %v after entering, want 1m", got)
	}
	s, evs = zone.Step(x, s, "d1", fix(52.5053, 13.405, 200))
	wantEvents(t, evs) // once per stay
	// An older fix changes nothing.
	if s2, evs := zone.Step(x, s, "d1", fix(52.505, 13.395, 150)); len(evs) != 0 || !s2.Last.TS.Equal(s.Last.TS) {
		t.Fatalf("older fix: %v, %v", evs, s2.Last)
	}
	now := t0.Add(300 * time.Second)
	s, evs = zone.Leave(s, "d1", now, zone.ReasonStale)
	wantEvents(t, evs, evKey{zone.EventExited, q.ID, zone.ReasonStale})
	if evs[0].InsideS <= 0 || len(s.Inside) != 0 || s.Last != nil {
		t.Fatalf("after leave: %+v, state %+v", evs[0], s)
	}
	// Back with a fix inside: entered again, not a crossing from the
	// last position.
	_, evs = zone.Step(x, s, "d1", fix(52.506, 13.406, 400))
	wantEvents(t, evs, evKey{zone.EventEntered, q.ID, zone.ReasonFix})
}

func TestStepDwellBeforeExitOnSparseFixes(t *testing.T) {
	q := mustZone(t, "z_queue", zone.KindQueue, rect(13.40, 52.50, 13.41, 52.51), 30)
	x := mustIndex(t, q)
	s, _ := zone.Step(x, zone.State{}, "d1", fix(52.505, 13.405, 0))
	_, evs := zone.Step(x, s, "d1", fix(52.505, 13.415, 600)) // left 5 minutes later
	wantEvents(t, evs, evKey{zone.EventDwell, q.ID, zone.ReasonDwell}, evKey{zone.EventExited, q.ID, zone.ReasonFix})
}

func TestStepDeletedZone(t *testing.T) {
	q := mustZone(t, "z_queue", zone.KindQueue, rect(13.40, 52.50, 13.41, 52.51), 30)
	s, _ := zone.Step(mustIndex(t, q), zone.State{}, "d1", fix(52.505, 13.405, 0))
	s, evs := zone.Step(mustIndex(t), s, "d1", fix(52.505, 13.405, 5))
	wantEvents(t, evs, evKey{zone.EventExited, q.ID, zone.ReasonDeleted})
	if len(s.Inside) != 0 {
		t.Fatalf("inside %v", s.Inside)
	}
}

func TestServes(t *testing.T) {
	q := mustZone(t, "z_queue", zone.KindQueue, rect(13.40, 52.50, 13.41, 52.51), 30)
	in := geo.Point{Lat: 52.505, Lng: 13.405}
	out := geo.Point{Lat: 52.6, Lng: 13.6}
	if x := mustIndex(t, q); !x.Serves(out) {
		t.Fatal("no service area: every point is served")
	}
	sa := mustZone(t, "z_city", zone.KindServiceArea, rect(13.40, 52.50, 13.41, 52.51), 30)
	x := mustIndex(t, q, sa)
	if !x.Serves(in) || x.Serves(out) {
		t.Fatalf("Serves(in)=%v Serves(out)=%v", x.Serves(in), x.Serves(out))
	}
}

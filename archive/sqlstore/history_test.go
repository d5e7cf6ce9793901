package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
)

func points(trip string, first, n int) []archive.Point {
	pts := make([]archive.Point, n)
	for i := range pts {
		k := first + i
		pts[i] = archive.Point{TripID: trip, Seq: int64(k + 1), DriverID: "d1", Lat: 52.52 + float64(k)*1e-4,
			Lng: 13.405 - float64(k)*1e-4, TS: t0.Add(time.Duration(k) * time.Second)}
		if k%2 == 0 {
			acc, speed, heading := 4.5, 8.25, float64(k%360)
			pts[i].Accuracy, pts[i].Speed, pts[i].Heading = &acc, &speed, &heading
		}
	}
	return pts
}

func TestTrail(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		want := points("t1", 0, 40)
		if n, err := s.AppendPoints(ctx, want[:30]); err != nil || n != 30 {
			t.Fatalf("AppendPoints = %d, %v", n, err)
		}
		if n, err := s.AppendPoints(ctx, want[10:]); err != nil || n != 10 {
			t.Fatalf("AppendPoints(redelivery + 10 new) = %d, %v; want 10", n, err)
		}
		if _, err := s.AppendPoints(ctx, points("t2", 0, 5)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Trail(ctx, archive.TrailQuery{TripID: "t1"})
		if err != nil || len(got) != 40 {
			t.Fatalf("Trail = %d points, %v; want 40", len(got), err)
		}
		for i, p := range got {
			w := want[i]
			if p.Seq != w.Seq || p.Lat != w.Lat || p.Lng != w.Lng || !p.TS.Equal(w.TS) || p.DriverID != "d1" ||
				fmt.Sprint(deref(p.Accuracy), deref(p.Speed), deref(p.Heading)) != fmt.Sprint(deref(w.Accuracy), deref(w.Speed), deref(w.Heading)) {
				t.Fatalf("point %d = %+v, want %+v", i, p, w)
			}
		}
		got, err = s.Trail(ctx, archive.TrailQuery{TripID: "t1", After: 35, Limit: 3})
		if err != nil || len(got) != 3 || got[0].Seq != 36 || got[2].Seq != 38 {
			t.Fatalf("Trail(after 35, limit 3) = %+v, %v", got, err)
		}
		if _, err := s.Trail(ctx, archive.TrailQuery{TripID: "t1", Limit: archive.MaxTrailLimit + 1}); !errors.Is(err, archive.ErrInvalidLimit) {
			t.Fatalf("Trail(limit too big) = %v, want ErrInvalidLimit", err)
		}
		bad := points("t1", 50, 1)
		bad[0].Lat = 91
		if _, err := s.AppendPoints(ctx, bad); !errors.Is(err, archive.ErrInvalid) {
			t.Fatalf("AppendPoints(lat 91) = %v, want ErrInvalid", err)
		}
	})
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

func TestLedgerAppendOnly(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		body := json.RawMessage(`{"id":"evt_1", "type":"payment.succeeded","data":{"amount":1250}}`)
		entries := []archive.Entry{
			{ID: "pay_1:v1", Kind: archive.EntryPayment, PaymentID: "pay_1", TripID: "t1", Amount: 1250, Currency: "EUR",
				Status: "pending", At: t0, Body: json.RawMessage(`{"status":"pending"}`)},
			{ID: "evt_1:1", Kind: archive.EntryWebhook, PaymentID: "pay_1", TripID: "t1", Amount: 1250, Currency: "EUR",
				Status: "succeeded", Outcome: "applied", At: t0.Add(time.Minute), Body: body},
			// The gateway retried the same event: a second receipt, its own entry.
			{ID: "evt_1:2", Kind: archive.EntryWebhook, PaymentID: "pay_1", TripID: "t1", Amount: 1250, Currency: "EUR",
				Status: "succeeded", Outcome: "duplicate", At: t0.Add(2 * time.Minute), Body: body},
		}
		if n, err := s.AppendLedger(ctx, entries); err != nil || n != 3 {
			t.Fatalf("AppendLedger = %d, %v", n, err)
		}
		// A redelivered entry, even altered, never rewrites the ledger.
		changed := entries[1]
		changed.Outcome, changed.Amount = "conflict", 1
		if n, err := s.AppendLedger(ctx, []archive.Entry{changed, entries[0]}); err != nil || n != 0 {
			t.Fatalf("AppendLedger(redelivery) = %d, %v; want 0", n, err)
		}
		got, err := s.Ledger(ctx, "t1")
		if err != nil || len(got) != 3 {
			t.Fatalf("Ledger = %+v, %v", got, err)
		}
		for i, e := range got {
			w := entries[i]
			if e.ID != w.ID || e.Kind != w.Kind || e.Amount != w.Amount || e.Outcome != w.Outcome || e.Status != w.Status ||
				!e.At.Equal(w.At) || string(e.Body) != string(w.Body) || e.PaymentID != "pay_1" || e.Currency != "EUR" {
				t.Fatalf("entry %d = %+v, want %+v", i, e, w)
			}
		}
		if got, err := s.Ledger(ctx, "t2"); err != nil || len(got) != 0 {
			t.Fatalf("Ledger(other trip) = %+v, %v", got, err)
		}
		if _, err := s.AppendLedger(ctx, []archive.Entry{{ID: "x", Kind: "refund", PaymentID: "p", At: t0}}); !errors.Is(err, archive.ErrInvalid) {
			t.Fatalf("AppendLedger(unknown kind) = %v, want ErrInvalid", err)
		}
	})
}

func TestShifts(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		at := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }
		changes := []archive.StatusChange{
			{DriverID: "d1", Status: "available", At: at(1)},
			{DriverID: "d1", Status: "on_trip", TripID: "t1", At: at(2)},
			{DriverID: "d1", Status: "available", At: at(3)},
			{DriverID: "d1", Status: "offline", At: at(4)},
			{DriverID: "d1", Status: "offline", At: at(5)}, // offline twice: still one gap
			{DriverID: "d1", Status: "available", At: at(6)},
			{DriverID: "d2", Status: "available", At: at(1.5)},
		}
		if n, err := s.AppendStatuses(ctx, changes); err != nil || n != 7 {
			t.Fatalf("AppendStatuses = %d, %v", n, err)
		}
		if n, err := s.AppendStatuses(ctx, changes[:3]); err != nil || n != 0 {
			t.Fatalf("AppendStatuses(redelivery) = %d, %v; want 0", n, err)
		}
		for _, tc := range []struct {
			name     string
			from, to time.Time
			want     string
		}{
			{"whole day", at(0), at(24), "[1h-4h 6h-open]"},
			{"starts mid-shift", at(2.5), at(24), "[2.5h-4h 6h-open]"},
			{"ends mid-shift", at(0), at(3.5), "[1h-open]"},
			{"while offline", at(4.5), at(5.5), "[]"},
			{"before any status", at(-5), at(0), "[]"},
		} {
			got, err := s.Shifts(ctx, archive.DriverQuery{DriverID: "d1", From: tc.from, To: tc.to})
			if err != nil {
				t.Fatalf("%s: Shifts: %v", tc.name, err)
			}
			var spans []string
			for _, sh := range got {
				end := "open"
				if !sh.End.IsZero() {
					end = fmt.Sprint(sh.End.Sub(t0).Hours()) + "h"
				}
				spans = append(spans, fmt.Sprint(sh.Start.Sub(t0).Hours())+"h-"+end)
			}
			if fmt.Sprint(spans) != tc.want && !(tc.want == "[]" && len(spans) == 0) {
				t.Errorf("%s: shifts %v, want %s", tc.name, spans, tc.want)
			}
		}
		// A suspension ends a shift; the reinstatement (offline) does not start one.
		susp := []archive.StatusChange{
			{DriverID: "d3", Status: "available", At: at(1)},
			{DriverID: "d3", Status: "suspended", At: at(2)},
			{DriverID: "d3", Status: "offline", At: at(3)},
			{DriverID: "d3", Status: "available", At: at(4)},
		}
		if _, err := s.AppendStatuses(ctx, susp); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			from time.Time
			want int
		}{{at(0), 2}, {at(2.5), 1}} {
			got, err := s.Shifts(ctx, archive.DriverQuery{DriverID: "d3", From: tc.from, To: at(24)})
			if err != nil || len(got) != tc.want || !got[len(got)-1].Start.Equal(at(4)) ||
				(tc.want == 2 && !got[0].End.Equal(at(2))) {
				t.Errorf("shifts of a suspended driver from %v: %+v %v", tc.from.Sub(t0), got, err)
			}
		}
		for _, q := range []archive.DriverQuery{
			{DriverID: "d1", From: at(5), To: at(1)},
			{DriverID: "d1", To: at(1)},
			{DriverID: "d1", From: at(0), To: at(0).Add(archive.MaxWindow + time.Hour)},
		} {
			if _, err := s.Shifts(ctx, q); !errors.Is(err, archive.ErrInvalidRange) {
				t.Errorf("Shifts(%v..%v) = %v, want ErrInvalidRange", q.From, q.To, err)
			}
		}
	})
}

func TestDriverDays(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		trips := []archive.Trip{
			trip("a", "r1", "d1", "completed", day.Add(9*time.Hour), 5),
			trip("b", "r1", "d1", "completed", day.Add(23*time.Hour), 5),
			trip("c", "r2", "d1", "cancelled", day.Add(12*time.Hour), 3),
			trip("d", "r2", "d1", "completed", day.Add(25*time.Hour), 5),
			trip("e", "r2", "d2", "completed", day.Add(10*time.Hour), 5),
		}
		trips[0].DistanceM, trips[1].DistanceM, trips[3].DistanceM = 1000, 2500, 700
		if _, err := s.UpsertTrips(ctx, trips); err != nil {
			t.Fatal(err)
		}
		got, err := s.DriverDays(ctx, archive.DriverQuery{DriverID: "d1", From: day, To: day.Add(72 * time.Hour)})
		if err != nil {
			t.Fatalf("DriverDays: %v", err)
		}
		want := []archive.Day{
			{Date: day.Add(24 * time.Hour), Trips: 1, Completed: 1, DistanceM: 700},
			{Date: day, Trips: 3, Completed: 2, DistanceM: 3500},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("DriverDays = %v\nwant %v", got, want)
		}
	})
}

func TestPrune(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		// 6,000 old events: more than one DELETE batch.
		old := events("old", 0, 6000)
		recent := events("new", 0, 10)
		for i := range recent {
			recent[i].TS = t0.Add(48 * time.Hour)
		}
		if _, err := s.AppendEvents(ctx, append(old, recent...)); err != nil {
			t.Fatal(err)
		}
		pts := points("t1", 0, 20)
		for i := 10; i < 20; i++ {
			pts[i].TS = t0.Add(48 * time.Hour)
		}
		if _, err := s.AppendPoints(ctx, pts); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendStatuses(ctx, []archive.StatusChange{
			{DriverID: "d1", Status: "available", At: t0},
			{DriverID: "d1", Status: "offline", At: t0.Add(48 * time.Hour)},
		}); err != nil {
			t.Fatal(err)
		}
		tr := trip("t1", "r1", "d1", "completed", t0, 5)
		if _, err := s.UpsertTrips(ctx, []archive.Trip{tr}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendLedger(ctx, []archive.Entry{{ID: "e1", Kind: archive.EntryPayment, PaymentID: "p1",
			TripID: "t1", Amount: 1, Currency: "EUR", At: t0}}); err != nil {
			t.Fatal(err)
		}

		res, err := s.Prune(ctx, t0.Add(24*time.Hour))
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		if want := (archive.PruneResult{Events: 6000, Points: 10, StatusChanges: 1}); res != want {
			t.Fatalf("Prune = %+v, want %+v", res, want)
		}
		if n := len(allEvents(t, s, "trip:old")); n != 0 {
			t.Fatalf("%d old events left", n)
		}
		if n := len(allEvents(t, s, "trip:new")); n != 10 {
			t.Fatalf("%d recent events left, want 10", n)
		}
		if got, _ := s.Trail(ctx, archive.TrailQuery{TripID: "t1"}); len(got) != 10 || got[0].Seq != 11 {
			t.Fatalf("trail after prune = %d points", len(got))
		}
		if _, err := s.Trip(ctx, "t1"); err != nil {
			t.Fatalf("the trip record was pruned: %v", err)
		}
		if es, _ := s.Ledger(ctx, "t1"); len(es) != 1 {
			t.Fatalf("the ledger was pruned: %d entries", len(es))
		}
		if res, err := s.Prune(ctx, t0.Add(24*time.Hour)); err != nil || res != (archive.PruneResult{}) {
			t.Fatalf("Prune again = %+v, %v; want nothing", res, err)
		}
	})
}

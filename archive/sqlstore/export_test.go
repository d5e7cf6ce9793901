package sqlstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
)

func eventKeys(evs []archive.Event) []string {
	keys := make([]string, len(evs))
	for i, e := range evs {
		keys[i] = e.Topic + "/" + e.ID
	}
	return keys
}

// TestPendingExport: archived events are pending in ID order until marked;
// a redelivery of an exported event does not make it pending again.
func TestPendingExport(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a, b := events("a", 0, 30), events("b", 5, 30) // interleaved IDs
		for _, evs := range [][]archive.Event{a, b} {
			if _, err := s.AppendEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
		}
		all := slices.Concat(a, b)
		slices.SortFunc(all, func(x, y archive.Event) int {
			ix, _ := archive.ParseEventID(x.ID)
			iy, _ := archive.ParseEventID(y.ID)
			if c := ix.Ms - iy.Ms; c != 0 {
				return int(c)
			}
			if c := ix.Seq - iy.Seq; c != 0 {
				return int(c)
			}
			if x.Topic < y.Topic {
				return -1
			}
			return 1
		})
		got, err := s.PendingExport(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(eventKeys(got), eventKeys(all)) {
			t.Fatalf("pending = %v\nwant %v", eventKeys(got), eventKeys(all))
		}
		if string(got[0].Data) != string(all[0].Data) || !got[0].TS.Equal(all[0].TS) || got[0].TripID != all[0].TripID {
			t.Fatalf("pending[0] = %+v, want %+v", got[0], all[0])
		}

		first, err := s.PendingExport(ctx, 25)
		if err != nil || len(first) != 25 {
			t.Fatalf("PendingExport(25) = %d events, %v", len(first), err)
		}
		if err := s.MarkExported(ctx, first); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEvents(ctx, a); err != nil { // a redelivery
			t.Fatal(err)
		}
		rest, err := s.PendingExport(ctx, 1000)
		if err != nil || !slices.Equal(eventKeys(rest), eventKeys(all[25:])) {
			t.Fatalf("pending after marking 25 = %v, %v\nwant %v", eventKeys(rest), err, eventKeys(all[25:]))
		}
		if err := s.MarkExported(ctx, all); err != nil { // twice for some: harmless
			t.Fatal(err)
		}
		if rest, err := s.PendingExport(ctx, 10); err != nil || len(rest) != 0 {
			t.Fatalf("pending after marking all = %v, %v", eventKeys(rest), err)
		}
		if _, err := s.PendingExport(ctx, 0); err == nil {
			t.Fatal("PendingExport(0): no error")
		}
	})
}

// TestExportLease: one holder at a time; an expired or released lease is
// taken by another.
func TestExportLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		take := func(holder string, ttl time.Duration, want bool) {
			t.Helper()
			got, err := s.LeaseExport(ctx, "nats", holder, ttl)
			if err != nil || got != want {
				t.Fatalf("LeaseExport(%s) = %v, %v; want %v", holder, got, err, want)
			}
		}
		take("n1", time.Minute, true)
		take("n1", time.Minute, true) // renewal
		take("n2", time.Minute, false)
		take("n2", time.Minute, false)
		if err := s.ReleaseExport(ctx, "nats", "n2"); err != nil { // not n2's: no effect
			t.Fatal(err)
		}
		take("n2", time.Minute, false)
		if err := s.ReleaseExport(ctx, "nats", "n1"); err != nil {
			t.Fatal(err)
		}
		take("n2", -time.Second, true) // taken, and expired at once
		take("n1", time.Minute, true)
		take("n2", time.Minute, false)
		if got, err := s.LeaseExport(ctx, "other", "n3", time.Minute); err != nil || !got {
			t.Fatalf("LeaseExport(other, n3) = %v, %v; want true: a lease of another name is its own", got, err)
		}
	})
}

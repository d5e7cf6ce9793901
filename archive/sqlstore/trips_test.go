package sqlstore_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
)

func trip(id, rider, driver, status string, created time.Time, version int64) archive.Trip {
	return archive.Trip{ID: id, Kind: "ride", RiderID: rider, DriverID: driver, Status: status, Version: version,
		CreatedAt: created, UpdatedAt: created.Add(time.Duration(version) * time.Second),
		Snapshot: json.RawMessage(fmt.Sprintf(`{"trip": {"id":%q, "status":%q}, "version": %d}`, id, status, version))}
}

func TestUpsertTrips(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		v1 := trip("t1", "r1", "", "requested", t0, 1)
		if n, err := s.UpsertTrips(ctx, []archive.Trip{v1}); err != nil || n != 1 {
			t.Fatalf("UpsertTrips(v1) = %d, %v", n, err)
		}
		v3 := trip("t1", "r1", "d1", "completed", t0.Add(time.Hour), 3) // a later copy can't move CreatedAt
		v3.EndedAt, v3.Fare, v3.Currency, v3.DistanceM = t0.Add(20*time.Minute), 1250, "EUR", 5321.5
		v2 := trip("t1", "r1", "d1", "driver_assigned", t0, 2)
		// In one batch the highest version wins; a late v2 is ignored.
		if _, err := s.UpsertTrips(ctx, []archive.Trip{v3, v2}); err != nil {
			t.Fatalf("UpsertTrips(v3, v2): %v", err)
		}
		if n, err := s.UpsertTrips(ctx, []archive.Trip{v2}); err != nil || n != 0 {
			t.Fatalf("UpsertTrips(late v2) = %d, %v; want 0 (ignored)", n, err)
		}
		got, err := s.Trip(ctx, "t1")
		if err != nil {
			t.Fatalf("Trip: %v", err)
		}
		want := v3
		want.CreatedAt = t0
		if got.Status != want.Status || got.Version != 3 || got.DriverID != "d1" || !got.CreatedAt.Equal(want.CreatedAt) ||
			!got.UpdatedAt.Equal(want.UpdatedAt) || !got.EndedAt.Equal(want.EndedAt) || got.Fare != 1250 ||
			got.Currency != "EUR" || got.DistanceM != 5321.5 || string(got.Snapshot) != string(want.Snapshot) || got.Kind != "ride" {
			t.Fatalf("Trip = %+v\nwant %+v", got, want)
		}
		if _, err := s.Trip(ctx, "nope"); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("Trip(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := s.Trip(ctx, "bad id!"); !errors.Is(err, archive.ErrInvalid) {
			t.Fatalf("Trip(bad id) = %v, want ErrInvalid", err)
		}
		bad := v1
		bad.RiderID = ""
		if _, err := s.UpsertTrips(ctx, []archive.Trip{bad}); !errors.Is(err, archive.ErrInvalid) {
			t.Fatalf("UpsertTrips(no rider) = %v, want ErrInvalid", err)
		}
	})
}

func TestListTripsFilters(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		var trips []archive.Trip
		for i := range 30 {
			status := []string{"requested", "completed", "cancelled"}[i%3]
			trips = append(trips, trip(fmt.Sprintf("t%02d", i), fmt.Sprintf("r%d", i%2), fmt.Sprintf("d%d", i%5),
				status, t0.Add(time.Duration(i)*time.Hour), 1))
		}
		if _, err := s.UpsertTrips(ctx, trips); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			q    archive.TripQuery
			want func(archive.Trip) bool
		}{
			{"all", archive.TripQuery{}, func(archive.Trip) bool { return true }},
			{"rider", archive.TripQuery{RiderID: "r1"}, func(t archive.Trip) bool { return t.RiderID == "r1" }},
			{"driver", archive.TripQuery{DriverID: "d3"}, func(t archive.Trip) bool { return t.DriverID == "d3" }},
			{"status", archive.TripQuery{Status: "completed"}, func(t archive.Trip) bool { return t.Status == "completed" }},
			{"from-to", archive.TripQuery{From: t0.Add(5 * time.Hour), To: t0.Add(12 * time.Hour)}, func(t archive.Trip) bool {
				return !t.CreatedAt.Before(t0.Add(5*time.Hour)) && t.CreatedAt.Before(t0.Add(12*time.Hour))
			}},
			{"empty range", archive.TripQuery{From: t0.Add(5 * time.Hour), To: t0.Add(5 * time.Hour)}, func(archive.Trip) bool { return false }},
			{"all filters", archive.TripQuery{RiderID: "r0", DriverID: "d0", Status: "requested", From: t0, To: t0.Add(100 * time.Hour)},
				func(t archive.Trip) bool { return t.RiderID == "r0" && t.DriverID == "d0" && t.Status == "requested" }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var want []string
				for i := len(trips) - 1; i >= 0; i-- {
					if tc.want(trips[i]) {
						want = append(want, trips[i].ID)
					}
				}
				q := tc.q
				q.Limit = 4
				got := pageAll(t, s, q)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("got %v\nwant %v", got, want)
				}
			})
		}
		// A full page with nothing after it has no Next.
		page, err := s.ListTrips(ctx, archive.TripQuery{Limit: 30})
		if err != nil || len(page.Trips) != 30 || page.Next != "" {
			t.Fatalf("ListTrips(limit 30 of 30) = %d trips, next %q, %v", len(page.Trips), page.Next, err)
		}
		if page, err := s.ListTrips(ctx, archive.TripQuery{}); err != nil || len(page.Trips) != 30 {
			t.Fatalf("ListTrips(default limit) = %d trips, %v", len(page.Trips), err)
		}
	})
}

// pageAll pages through q and returns the IDs in order, checking that
// each page is newest first.
func pageAll(t *testing.T, s *sqlstore.Store, q archive.TripQuery) []string {
	t.Helper()
	var (
		ids  []string
		prev *archive.Trip
	)
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("paging does not end")
		}
		page, err := s.ListTrips(context.Background(), q)
		if err != nil {
			t.Fatalf("ListTrips(%+v): %v", q, err)
		}
		for i := range page.Trips {
			tr := page.Trips[i]
			if prev != nil && cmp.Or(tr.CreatedAt.Compare(prev.CreatedAt), cmp.Compare(tr.ID, prev.ID)) >= 0 {
				t.Fatalf("trip %s (%s) after %s (%s): not newest first", tr.ID, tr.CreatedAt, prev.ID, prev.CreatedAt)
			}
			prev = &page.Trips[i]
			ids = append(ids, tr.ID)
		}
		if page.Next == "" {
			return ids
		}
		if len(page.Trips) != q.Limit {
			t.Fatalf("a page of %d trips (limit %d) has a next page", len(page.Trips), q.Limit)
		}
		q.Cursor = page.Next
	}
}

// TestListTripsConcurrentInserts: a client paging through a rider's trips
// while trips are created (newer ones, and late-archived ones with times
// among those already listed, some at the very same microsecond) and
// existing trips change status sees no trip twice and misses none that
// existed when it started.
func TestListTripsConcurrentInserts(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		const n = 300
		var seeded []archive.Trip
		for i := range n {
			// Three trips per microsecond: ties are broken by ID.
			seeded = append(seeded, trip(fmt.Sprintf("s%03d", i), "r1", "d1", "requested", t0.Add(time.Duration(i/3)*time.Second), 1))
		}
		if _, err := s.UpsertTrips(ctx, seeded); err != nil {
			t.Fatal(err)
		}
		// The writer inserts one batch per page, while the next page is
		// read (ack: the batch is stored before the following one starts).
		var (
			wg      sync.WaitGroup
			step    = make(chan struct{})
			ack     = make(chan struct{})
			created = map[string]bool{}
		)
		wg.Go(func() {
			for k := 0; ; k++ {
				if _, ok := <-step; !ok {
					return
				}
				var batch []archive.Trip
				for j := range 4 {
					i := k*4 + j
					// Late-archived trips among the listed ones (some at the
					// very microsecond of a seeded trip), and newer ones.
					at := t0.Add(time.Duration((i*53)%n) * time.Second / 3)
					if j == 3 {
						at = t0.Add(time.Duration(n+i) * time.Second)
					}
					batch = append(batch, trip(fmt.Sprintf("n%04d", i), "r1", "d1", "requested", at, 1))
					created[batch[len(batch)-1].ID] = true
					// And an existing trip moves on (its key must not move).
					batch = append(batch, trip(seeded[(i*37)%n].ID, "r1", "d1", "completed", t0.Add(time.Hour), int64(i+2)))
				}
				if _, err := s.UpsertTrips(ctx, batch); err != nil {
					t.Errorf("concurrent UpsertTrips: %v", err)
				}
				ack <- struct{}{}
			}
		})
		q := archive.TripQuery{RiderID: "r1", Limit: 7}
		var (
			ids     []string
			seen    = map[string]int{}
			pending bool
			prev    *archive.Trip
		)
		for {
			page, err := s.ListTrips(ctx, q)
			if err != nil {
				t.Fatalf("ListTrips: %v", err)
			}
			if pending {
				<-ack
			}
			step <- struct{}{}
			pending = true
			for _, tr := range page.Trips {
				if prev != nil && cmp.Or(tr.CreatedAt.Compare(prev.CreatedAt), cmp.Compare(tr.ID, prev.ID)) >= 0 {
					t.Fatalf("trip %s (%s) listed after %s (%s): not newest first", tr.ID, tr.CreatedAt, prev.ID, prev.CreatedAt)
				}
				prev = &tr
				ids = append(ids, tr.ID)
				seen[tr.ID]++
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		<-ack
		close(step)
		wg.Wait()
		for id, c := range seen {
			if c > 1 {
				t.Errorf("trip %s listed %d times", id, c)
			}
			if !created[id] && !strings.HasPrefix(id, "s") {
				t.Errorf("trip %s listed: neither seeded nor created", id)
			}
		}
		for _, tr := range seeded {
			if seen[tr.ID] != 1 {
				t.Errorf("seeded trip %s listed %d times, want once", tr.ID, seen[tr.ID])
			}
		}
		late := 0
		for id := range seen {
			if created[id] {
				late++
			}
		}
		t.Logf("%d pages; %d trips listed, %d of them created while paging (%d created in all)", (len(ids)+6)/7, len(ids), late, len(created))
		if late == 0 || late == len(created) {
			t.Fatalf("%d of %d trips created while paging were listed: the test needs some ahead of the cursor and some behind", late, len(created))
		}
	})
}

func TestListTripsBadQueries(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		if _, err := s.UpsertTrips(ctx, []archive.Trip{trip("t1", "r1", "", "requested", t0, 1)}); err != nil {
			t.Fatal(err)
		}
		good := archive.Cursor{Time: t0, ID: "t1"}.Encode()
		for _, tc := range []struct {
			name string
			q    archive.TripQuery
			want error
		}{
			{"malformed cursor", archive.TripQuery{Cursor: "not a cursor!"}, archive.ErrInvalidCursor},
			{"truncated cursor", archive.TripQuery{Cursor: good[:len(good)-3]}, archive.ErrInvalidCursor},
			{"inverted range", archive.TripQuery{From: t0.Add(time.Hour), To: t0}, archive.ErrInvalidRange},
			{"limit too big", archive.TripQuery{Limit: 100000}, archive.ErrInvalidLimit},
			{"limit 201", archive.TripQuery{Limit: archive.MaxLimit + 1}, archive.ErrInvalidLimit},
			{"negative limit", archive.TripQuery{Limit: -1}, archive.ErrInvalidLimit},
			{"bad rider", archive.TripQuery{RiderID: "r 1"}, archive.ErrInvalid},
			{"bad status", archive.TripQuery{Status: "DROP TABLE"}, archive.ErrInvalid},
		} {
			if page, err := s.ListTrips(ctx, tc.q); !errors.Is(err, tc.want) {
				t.Errorf("%s: ListTrips = %+v, %v; want %v", tc.name, page, err, tc.want)
			}
		}
		if page, err := s.ListTrips(ctx, archive.TripQuery{Cursor: good, Limit: archive.MaxLimit}); err != nil || len(page.Trips) != 0 {
			t.Errorf("ListTrips(after the only trip) = %+v, %v; want an empty page", page, err)
		}
	})
}

package sqlstore_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
)

func TestMigrateFromEmpty(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			u := b.url(t)
			applied, err := sqlstore.Migrate(ctx, u)
			if err != nil {
				t.Fatalf("Migrate on an empty database: %v", err)
			}
			if !slices.Equal(applied, []int64{1}) {
				t.Fatalf("Migrate applied %v, want [1]", applied)
			}
			again, err := sqlstore.Migrate(ctx, u)
			if err != nil || len(again) != 0 {
				t.Fatalf("Migrate again = %v, %v; want nothing applied", again, err)
			}
			// Open migrates too: on an up-to-date schema it changes nothing.
			s := mustOpen(t, u)
			v, err := s.SchemaVersion(ctx)
			if err != nil || v != 1 {
				t.Fatalf("SchemaVersion = %d, %v; want 1", v, err)
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			// Every table is there and empty.
			page, err := s.ListTrips(ctx, archive.TripQuery{})
			if err != nil || len(page.Trips) != 0 || page.Next != "" {
				t.Fatalf("ListTrips on a new archive = %+v, %v", page, err)
			}
			if res, err := s.Prune(ctx, archive.Time(1<<50)); err != nil || res != (archive.PruneResult{}) {
				t.Fatalf("Prune on a new archive = %+v, %v", res, err)
			}
		})
	}
}

// TestMigrateConcurrent: nodes that start together against one PostgreSQL
// migrate one at a time; exactly one applies the schema.
func TestMigrateConcurrent(t *testing.T) {
	u := pgURL(t)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied []int64
	)
	for range 3 {
		wg.Go(func() {
			v, err := sqlstore.Migrate(context.Background(), u)
			if err != nil {
				t.Errorf("Migrate: %v", err)
			}
			mu.Lock()
			applied = append(applied, v...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if !slices.Equal(applied, []int64{1}) {
		t.Fatalf("concurrent Migrate applied %v in all, want [1] once", applied)
	}
}

func TestOpenRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "sqlite:", ":memory:", "db.sqlite?mode=memory"} {
		if s, err := sqlstore.Open(context.Background(), u); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

package sqlstore_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
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
			if want := migrationVersions(t); !slices.Equal(applied, want) {
				t.Fatalf("Migrate applied %v, want %v", applied, want)
			}
			again, err := sqlstore.Migrate(ctx, u)
			if err != nil || len(again) != 0 {
				t.Fatalf("Migrate again = %v, %v; want nothing applied", again, err)
			}
			// Open migrates too: on an up-to-date schema it changes nothing.
			s := mustOpen(t, u)
			v, err := s.SchemaVersion(ctx)
			if want := migrationVersions(t); err != nil || v != want[len(want)-1] {
				t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, want[len(want)-1])
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
	if want := migrationVersions(t); !slices.Equal(applied, want) {
		t.Fatalf("concurrent Migrate applied %v in all, want %v once", applied, want)
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

// migrationVersions are the versions of the files in migrations/, oldest
// first: what Migrate applies to an empty database.
func migrationVersions(t *testing.T) []int64 {
	t.Helper()
	ents, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	var vs []int64
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			t.Fatalf("migration file %q is not <version>_<name>.sql", e.Name())
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
)

var t0 = time.Date(2026, 11, 20, 8, 0, 0, 123456000, time.UTC)

// events makes n events of topic trip:<trip>, IDs <ms>-<seq> from first.
func events(trip string, first, n int) []archive.Event {
	evs := make([]archive.Event, n)
	for i := range evs {
		k := first + i
		evs[i] = archive.Event{
			Topic:  "trip:" + trip,
			ID:     fmt.Sprintf("%d-%d", 1_790_000_000_000+k/20, k%20),
			Type:   "trip.status",
			TripID: trip,
			Data:   json.RawMessage(fmt.Sprintf(`{"status": "requested", "n":%d}`, k)),
			TS:     t0.Add(time.Duration(k) * time.Millisecond),
		}
	}
	return evs
}

// allEvents reads every event of a topic, page by page.
func allEvents(t *testing.T, s *sqlstore.Store, topic string) []archive.Event {
	t.Helper()
	var all []archive.Event
	after := ""
	for {
		evs, err := s.Events(context.Background(), archive.EventQuery{Topic: topic, After: after, Limit: archive.MaxEventLimit})
		if err != nil {
			t.Fatalf("Events(%s after %q): %v", topic, after, err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].ID
	}
}

func TestEventsArchivedOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		want := events("t1", 0, 60) // IDs …-0 … …-19: "-10" sorts after "-9"

		// A batch holding duplicates of its own events stores each once.
		batch := append(slices.Clone(want[:30]), want[5], want[29], want[0])
		if n, err := s.AppendEvents(ctx, batch); err != nil || n != 30 {
			t.Fatalf("AppendEvents(first 30 + 3 duplicates) = %d, %v; want 30", n, err)
		}
		// A redelivered batch stores nothing.
		if n, err := s.AppendEvents(ctx, want[:30]); err != nil || n != 0 {
			t.Fatalf("AppendEvents(redelivery) = %d, %v; want 0", n, err)
		}
		// A batch overlapping what is stored stores only the new events.
		if n, err := s.AppendEvents(ctx, want[20:]); err != nil || n != 30 {
			t.Fatalf("AppendEvents(overlap) = %d, %v; want 30", n, err)
		}
		got := allEvents(t, s, "trip:t1")
		if len(got) != len(want) {
			t.Fatalf("archived %d events, want %d", len(got), len(want))
		}
		for i := range want {
			w, g := want[i], got[i]
			if g.ID != w.ID || g.Type != w.Type || g.TripID != w.TripID || !g.TS.Equal(w.TS) || string(g.Data) != string(w.Data) {
				t.Fatalf("event %d = %+v, want %+v (same id, type, time and data byte for byte)", i, g, w)
			}
		}

		// After and Limit page through the feed's order.
		evs, err := s.Events(ctx, archive.EventQuery{Topic: "trip:t1", After: want[9].ID, Limit: 2})
		if err != nil || len(evs) != 2 || evs[0].ID != want[10].ID || evs[1].ID != want[11].ID {
			t.Fatalf("Events(after %s, limit 2) = %v, %v; want %s, %s", want[9].ID, evs, err, want[10].ID, want[11].ID)
		}
		if evs, err := s.Events(ctx, archive.EventQuery{Topic: "trip:other"}); err != nil || len(evs) != 0 {
			t.Fatalf("Events of an unknown topic = %v, %v", evs, err)
		}
	})
}

// TestEventsConcurrentRedelivery: consumers crashing and redelivering
// overlapping batches, in any order and at the same time, leave each event
// archived exactly once, and never deadlock one another.
func TestEventsConcurrentRedelivery(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		var want []archive.Event
		for i := range 4 {
			want = append(want, events(fmt.Sprintf("c%d", i), 0, 400)...)
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total int64
		)
		for c := range 4 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(c), 7))
				for round := range 3 {
					// Each round redelivers a shuffled window of the events,
					// larger than one INSERT (a transaction of several).
					lo := r.IntN(len(want) / 2)
					batch := slices.Clone(want[lo : lo+len(want)/2])
					r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
					n, err := s.AppendEvents(ctx, batch)
					if err != nil {
						t.Errorf("consumer %d round %d: %v", c, round, err)
						return
					}
					mu.Lock()
					total += n
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		// Then one consumer catches up on everything.
		n, err := s.AppendEvents(ctx, want)
		if err != nil {
			t.Fatalf("final AppendEvents: %v", err)
		}
		if total+n != int64(len(want)) {
			t.Fatalf("inserts reported %d, want %d", total+n, len(want))
		}
		for i := range 4 {
			got := allEvents(t, s, fmt.Sprintf("trip:c%d", i))
			if len(got) != 400 {
				t.Fatalf("topic c%d holds %d events, want 400", i, len(got))
			}
			for j, e := range got {
				if e.ID != want[i*400+j].ID {
					t.Fatalf("topic c%d event %d = %s, want %s", i, j, e.ID, want[i*400+j].ID)
				}
			}
		}
	})
}

func TestEventsInvalid(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		good := events("t1", 0, 3)
		for name, mutate := range map[string]func(*archive.Event){
			"id without seq":  func(e *archive.Event) { e.ID = "1790000000000" },
			"id not a number": func(e *archive.Event) { e.ID = "abc-1" },
			"no topic":        func(e *archive.Event) { e.Topic = "" },
			"bad JSON":        func(e *archive.Event) { e.Data = json.RawMessage(`{"a":`) },
			"no time":         func(e *archive.Event) { e.TS = time.Time{} },
		} {
			batch := slices.Clone(good)
			mutate(&batch[1])
			if n, err := s.AppendEvents(ctx, batch); !errors.Is(err, archive.ErrInvalid) || n != 0 {
				t.Errorf("%s: AppendEvents = %d, %v; want ErrInvalid", name, n, err)
			}
		}
		if got := allEvents(t, s, "trip:t1"); len(got) != 0 {
			t.Fatalf("a refused batch stored %d events", len(got))
		}
		for _, after := range []string{"x", "1-", "-1", "01-1", "1-1-1", "99999999999999999999-0"} {
			if _, err := s.Events(ctx, archive.EventQuery{Topic: "trip:t1", After: after}); !errors.Is(err, archive.ErrInvalidCursor) {
				t.Errorf("Events(after %q) = %v, want ErrInvalidCursor", after, err)
			}
		}
		if _, err := s.Events(ctx, archive.EventQuery{Topic: "trip:t1", Limit: archive.MaxEventLimit + 1}); !errors.Is(err, archive.ErrInvalidLimit) {
			t.Errorf("Events(limit too big) = %v, want ErrInvalidLimit", err)
		}
	})
}

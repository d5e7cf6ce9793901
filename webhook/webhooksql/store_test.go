package webhooksql_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/webhook"
	"github.com/hextrack/hextrack/webhook/webhooksql"
)

func newEndpoint(t *testing.T, st *webhooksql.Store, created time.Time, filter ...string) webhook.Endpoint {
	f, err := webhook.ParseFilter(filter)
	if err != nil {
		t.Fatal(err)
	}
	e := webhook.Endpoint{ID: webhook.NewID(), URL: "https://hooks.example/", Filter: f, Secret: webhook.NewSecret(),
		Enabled: true, CreatedAt: created, UpdatedAt: created}
	if err := st.CreateEndpoint(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRoute: routing queues each trip event for each matching endpoint
// that existed at its time, once however often it runs; other topics and
// types are marked routed without a delivery; heads are each queue's
// oldest pending delivery.
func TestRoute(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ string, s *sqlstore.Store) {
		ctx := context.Background()
		st := webhooksql.New(s.DB(), s.Dialect())
		t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
		all := newEndpoint(t, st, t0)
		status := newEndpoint(t, st, t0, "trip.status")
		late := newEndpoint(t, st, t0.Add(time.Hour))
		var evs []archive.Event
		for i := range 6 {
			typ := "trip.status"
			if i%3 == 2 {
				typ = "trip.eta"
			}
			evs = append(evs, archive.Event{Topic: fmt.Sprintf("trip:t_%d", i%2), TripID: fmt.Sprintf("t_%d", i%2), Type: typ,
				ID: fmt.Sprintf("1800000000%03d-0", i), TS: t0.Add(time.Minute), Data: json.RawMessage(`{}`)})
		}
		evs = append(evs, archive.Event{Topic: "driver:d1", Type: "offer", ID: "1800000000999-0", TS: t0, Data: json.RawMessage(`{}`)})
		if _, err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		n, topics, err := st.Route(ctx, 4)
		if err != nil || n != 4 || len(topics) != 2 {
			t.Fatalf("Route = %d, %v, %v; want 4 events for 2 endpoints", n, topics, err)
		}
		if n, _, err = st.Route(ctx, 100); err != nil || n != 3 {
			t.Fatalf("second Route = %d, %v; want the 3 left", n, err)
		}
		if n, _, err = st.Route(ctx, 100); err != nil || n != 0 {
			t.Fatalf("third Route = %d, %v; want none left", n, err)
		}
		count := func(id string) int {
			p, err := st.Deliveries(ctx, webhook.LogQuery{EndpointID: id, Limit: 200})
			if err != nil {
				t.Fatal(err)
			}
			return len(p.Deliveries)
		}
		if a, b, c := count(all.ID), count(status.ID), count(late.ID); a != 6 || b != 4 || c != 0 {
			t.Fatalf("queued %d, %d, %d; want 6 (all), 4 (trip.status), 0 (created later)", a, b, c)
		}
		heads, err := st.Heads(ctx, all.ID, nil)
		if err != nil || len(heads) != 2 {
			t.Fatalf("Heads = %+v, %v", heads, err)
		}
		for _, h := range heads {
			want := map[string]string{"trip:t_0": "1800000000000-0", "trip:t_1": "1800000000001-0"}[h.Topic]
			if h.EventID != want {
				t.Fatalf("head of %s = %s, want %s", h.Topic, h.EventID, want)
			}
		}

		// The head delivered: the next one is the head; the log keeps it
		// until pruned.
		d, err := st.Delivery(ctx, all.ID, "trip:t_0", "1800000000000-0")
		if err != nil {
			t.Fatal(err)
		}
		done := time.Now()
		ok, since, err := st.Record(ctx, d, webhook.Outcome{State: webhook.StateDelivered, At: done,
			Result: webhook.Result{StatusCode: 204, Latency: 3 * time.Millisecond}})
		if err != nil || !ok || !since.IsZero() {
			t.Fatalf("Record = %v, %v, %v", ok, since, err)
		}
		if ok, _, _ := st.Record(ctx, d, webhook.Outcome{State: webhook.StateDelivered, At: done}); ok {
			t.Fatal("a delivery was recorded twice")
		}
		if h, ok, err := st.Head(ctx, all.ID, "trip:t_0"); err != nil || !ok || h.EventID != "1800000000002-0" {
			t.Fatalf("next head = %+v, %v, %v", h, ok, err)
		}
		if n, err := st.PruneLog(ctx, done); err != nil || n != 0 {
			t.Fatalf("PruneLog before the delivery = %d, %v", n, err)
		}
		if n, err := st.PruneLog(ctx, done.Add(time.Second)); err != nil || n != 1 || count(all.ID) != 5 {
			t.Fatalf("PruneLog after it = %d, %v; %d left", n, err, count(all.ID))
		}
		// Deleting an endpoint deletes its queue.
		if err := st.DeleteEndpoint(ctx, all.ID); err != nil || count(all.ID) != 0 {
			t.Fatalf("DeleteEndpoint: %v, %d left", err, count(all.ID))
		}
	})
}

// TestRouteSeesEndpointCreatedWhileWaiting: an endpoint created and
// events archived while a routing step waits for SQLite's write lock
// get their deliveries. (Route once read the endpoints before taking the
// lock, and such an endpoint missed those events for good: the cause of
// TestDeliveryUnderFailures' old flake.)
func TestRouteSeesEndpointCreatedWhileWaiting(t *testing.T) {
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "archive.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := webhooksql.New(s.DB(), s.Dialect())
	t0 := time.Now().Add(-time.Minute)
	first := newEndpoint(t, st, t0)

	// Another writer holds the write lock (BEGIN IMMEDIATE, the DSN's
	// _txlock) while the routing step starts.
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	routed := make(chan error, 1)
	go func() { _, _, err := st.Route(ctx, 100); routed <- err }()
	time.Sleep(300 * time.Millisecond) // Route is waiting for the lock
	second := webhook.NewID()
	now := time.Now()
	f, _ := json.Marshal([]string{"trip.*"})
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, url, filter, secret, created_us, updated_us)
		VALUES (?, 'https://hooks.example/', ?, ?, ?, ?)`, second, string(f), webhook.NewSecret().Reveal(),
		archive.Micros(now), archive.Micros(now)); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO events (topic, id_ms, id_seq, type, trip_id, ts_us, data)
		VALUES ('trip:t_1', 1800000000000, 0, 'trip.status', 't_1', ?, '{}')`, archive.Micros(now.Add(time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-routed; err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Route(ctx, 100); err != nil { // in case the first step ran before the commit
		t.Fatal(err)
	}
	for _, id := range []string{first.ID, second} {
		heads, err := st.Heads(ctx, id, nil)
		if err != nil || len(heads) != 1 {
			t.Fatalf("endpoint %s: heads %v, %v; want the one event", id, heads, err)
		}
	}
}

// TestClaim: Claim takes only due queue heads, holds them until the
// claim ends (then a dead node's are due again), never a queue's later
// delivery while an earlier one is pending, and nothing of a paused
// endpoint; RecordAll records a batch and the endpoint's failure run;
// NextDue is the earliest head's time.
func TestClaim(t *testing.T) {
	forEachStore(t, func(t *testing.T, _ string, s *sqlstore.Store) {
		ctx := context.Background()
		st := webhooksql.New(s.DB(), s.Dialect())
		t0 := time.Now().Add(-time.Minute)
		ep := newEndpoint(t, st, t0)
		var evs []archive.Event
		for i, trip := range []string{"t_0", "t_1", "t_0"} {
			evs = append(evs, archive.Event{Topic: "trip:" + trip, TripID: trip, Type: "trip.status",
				ID: fmt.Sprintf("1800000000%03d-0", i), TS: t0.Add(time.Second), Data: json.RawMessage(`{}`)})
		}
		if _, err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Route(ctx, 100); err != nil {
			t.Fatal(err)
		}
		ids := func(ds []webhook.Delivery) []string {
			var out []string
			for _, d := range ds {
				out = append(out, d.Event.ID)
			}
			return out
		}
		now := time.Now()
		ds, err := st.Claim(ctx, ep.ID, now, now.Add(time.Minute), 10)
		if got := ids(ds); err != nil || fmt.Sprint(got) != fmt.Sprint([]string{evs[0].ID, evs[1].ID}) {
			t.Fatalf("Claim = %v, %v; want the two heads", got, err)
		}
		if again, err := st.Claim(ctx, ep.ID, now, now.Add(time.Minute), 10); err != nil || len(again) != 0 {
			t.Fatalf("Claim while claimed = %v, %v; want none", ids(again), err)
		}
		if next, ok, err := st.NextDue(ctx, ep.ID); err != nil || !ok || next.Sub(now.Add(time.Minute)).Abs() > time.Millisecond {
			t.Fatalf("NextDue = %v, %v, %v; want the claims' end", next, ok, err)
		}
		// t_0's head delivered, t_1's failed (retry in an hour).
		ok, since, err := st.RecordAll(ctx, ds, []webhook.Outcome{
			{State: webhook.StateDelivered, At: now, Result: webhook.Result{StatusCode: 204}},
			{State: webhook.StatePending, At: now.Add(time.Millisecond), Result: webhook.Result{StatusCode: 500, Err: fmt.Errorf("answered 500")},
				NextAttempt: now.Add(time.Hour)},
		})
		if err != nil || !ok[0] || !ok[1] || since.Sub(now.Add(time.Millisecond)).Abs() > time.Microsecond {
			t.Fatalf("RecordAll = %v, %v, %v; want both recorded, failing since the failure", ok, since, err)
		}
		if d, err := st.Delivery(ctx, ep.ID, evs[1].Topic, evs[1].ID); err != nil || d.State != webhook.StatePending || d.Attempts != 1 || d.StatusCode != 500 {
			t.Fatalf("failed delivery = %+v, %v", d, err)
		}
		ds, err = st.Claim(ctx, ep.ID, now, now.Add(time.Minute), 10)
		if got := ids(ds); err != nil || fmt.Sprint(got) != fmt.Sprint([]string{evs[2].ID}) {
			t.Fatalf("Claim after = %v, %v; want t_0's next only (t_1's retry is not due)", got, err)
		}
		// Two hours on: the claim ended (its node died) and the retry is due.
		later := now.Add(2 * time.Hour)
		if ds, err = st.Claim(ctx, ep.ID, later, later.Add(time.Minute), 10); err != nil || len(ds) != 2 {
			t.Fatalf("Claim later = %v, %v; want the retry and the expired claim", ids(ds), err)
		}
		// A paused endpoint: nothing is claimed.
		if err := st.Pause(ctx, ep.ID, since, now); err != nil {
			t.Fatal(err)
		}
		later = later.Add(2 * time.Hour)
		if ds, err = st.Claim(ctx, ep.ID, later, later.Add(time.Minute), 10); err != nil || len(ds) != 0 {
			t.Fatalf("Claim of a paused endpoint = %v, %v; want none", ids(ds), err)
		}
	})
}

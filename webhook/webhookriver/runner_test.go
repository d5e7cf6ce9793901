package webhookriver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/webhook"
	"github.com/hextrack/hextrack/webhook/webhookriver"
	"github.com/hextrack/hextrack/webhook/webhooksql"
)

// receiver is a webhook receiver over HTTP that verifies each delivery's
// signature and checks, at every request, that each earlier event of the
// trip was delivered (taken with a 2xx the sender saw) before.
type receiver struct {
	t   *testing.T
	srv *httptest.Server
	// answer decides a request's fate from its event and attempt number:
	// a status, or 0 to stall until the sender gives up.
	answer func(topic, id string, attempt int) int

	mu        sync.Mutex
	wh        *standardwebhooks.Webhook
	want      map[string][]string // topic -> event IDs in order
	delivered map[string]int      // topic/id -> 2xx answers
	dead      map[string]bool     // topic/id refused for good: counts as done
	attempts  map[string]int
	problems  []string
	stalled   int           // requests stalled so far
	stall     time.Duration // how long a stalled request lasts at most
}

func newReceiver(t *testing.T, answer func(topic, id string, attempt int) int) *receiver {
	r := &receiver{t: t, answer: answer, want: map[string][]string{}, delivered: map[string]int{}, dead: map[string]bool{}, attempts: map[string]int{},
		stall: 5 * time.Second}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setSecret(s webhook.Secret) {
	wh, err := standardwebhooks.NewWebhook(s.Reveal())
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.wh = wh
	r.mu.Unlock()
}

func (r *receiver) expect(evs []archive.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range evs {
		r.want[ev.Topic] = append(r.want[ev.Topic], ev.ID)
	}
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var ev struct{ ID, Topic, Type string }
	_ = json.Unmarshal(body, &ev)
	key := ev.Topic + "/" + ev.ID
	r.mu.Lock()
	if r.wh == nil || r.wh.Verify(body, req.Header) != nil {
		r.problems = append(r.problems, "bad signature on "+key)
	}
	if got := req.Header.Get("webhook-id"); got != key {
		r.problems = append(r.problems, fmt.Sprintf("webhook-id %s for %s", got, key))
	}
	order := r.want[ev.Topic]
	i := slices.Index(order, ev.ID)
	if i < 0 {
		r.problems = append(r.problems, "unexpected event "+key)
	}
	for _, prev := range order[:max(i, 0)] {
		if r.delivered[ev.Topic+"/"+prev] == 0 && !r.dead[ev.Topic+"/"+prev] {
			r.problems = append(r.problems, fmt.Sprintf("%s sent before %s was delivered", key, prev))
			break
		}
	}
	r.attempts[key]++
	status := r.answer(ev.Topic, ev.ID, r.attempts[key])
	r.mu.Unlock()
	if status == 0 { // stall: the sender times out (or dies)
		r.mu.Lock()
		r.stalled++
		r.mu.Unlock()
		select {
		case <-req.Context().Done():
		case <-time.After(r.stall):
		}
		w.WriteHeader(http.StatusServiceUnavailable) // never an implicit 200
		return
	}
	if status/100 == 2 {
		r.mu.Lock()
		r.delivered[key]++
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

// missing returns how many expected events were not delivered yet.
func (r *receiver) missing() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for topic, ids := range r.want {
		for _, id := range ids {
			if r.delivered[topic+"/"+id] == 0 && !r.dead[topic+"/"+id] {
				n++
			}
		}
	}
	return n
}

func (r *receiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) > 0 {
		r.t.Fatalf("%d problems, e.g. %v", len(r.problems), r.problems[:min(5, len(r.problems))])
	}
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			if current != nil {
				current.dump(t)
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// env is a runner over an archive, with a service to create endpoints.
type env struct {
	s      *sqlstore.Store
	store  *webhooksql.Store
	runner *webhookriver.Runner
	svc    *webhook.Service
	seq    int
}

func startEnv(t testing.TB, u string, s *sqlstore.Store, cfg webhookriver.Config) *env {
	store := webhooksql.New(s.DB(), s.Dialect())
	pol := webhook.Policy{Dev: true}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 20 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 200 * time.Millisecond
	}
	cfg.Interval, cfg.FetchPollInterval = 20*time.Millisecond, 50*time.Millisecond
	if cfg.Sweep == 0 {
		cfg.Sweep = 300 * time.Millisecond
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// 1 s: long enough for a loaded machine (2 cores, -race, other test
	// runs) to answer; a 300 ms timeout there timed everything out.
	r, err := webhookriver.Open(context.Background(), u, store, webhook.NewSender(pol, time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; r.Close(); current = nil })
	current = &env{s: s, store: store, runner: r, svc: &webhook.Service{Store: store, Policy: pol, Kicker: r}}
	return current
}

func (e *env) endpoint(t *testing.T, r *receiver, filter ...string) webhook.Endpoint {
	u := r.srv.URL + "/hooks"
	ep, err := e.svc.Create(context.Background(), webhook.Input{URL: &u, Filter: &filter})
	if err != nil {
		t.Fatal(err)
	}
	r.setSecret(ep.Secret)
	return ep
}

// appendEvents archives n events per trip of trips (trip topics), and
// one driver-topic event (never delivered), all stamped now.
func (e *env) appendEvents(t *testing.T, trips []string, n int) []archive.Event {
	var evs []archive.Event
	now := time.Now()
	for range n {
		e.seq++
		for i, trip := range trips {
			evs = append(evs, archive.Event{Topic: "trip:" + trip, TripID: trip, Type: "trip.status",
				ID: fmt.Sprintf("%d-%d", 1_800_000_000_000+e.seq, i), TS: now, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, e.seq))})
		}
	}
	other := archive.Event{Topic: "driver:d1", Type: "offer", ID: fmt.Sprintf("%d-0", 1_800_000_000_000+e.seq), TS: now, Data: json.RawMessage(`{}`)}
	if _, err := e.s.AppendEvents(context.Background(), append(slices.Clone(evs), other)); err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestDeliveryUnderFailures: three receivers, one failing half the
// requests, one stalling past the timeout on each event's first
// attempt, one answering 500 for a while then recovering: each gets
// every event, each trip's in order, signed; duplicates only as retries
// of the same id; the delivery log shows the attempts.
func TestDeliveryUnderFailures(t *testing.T) {
	forEachStore(t, func(t *testing.T, u string, s *sqlstore.Store) {
		e := startEnv(t, u, s, webhookriver.Config{})
		var mu sync.Mutex
		rnd := rand.New(rand.NewPCG(1, 2))
		flaky := newReceiver(t, func(_, _ string, _ int) int {
			mu.Lock()
			defer mu.Unlock()
			if rnd.IntN(2) == 0 {
				return 500
			}
			return 200
		})
		stall := newReceiver(t, func(_, _ string, n int) int {
			if n == 1 {
				return 0 // past the sender's timeout
			}
			return 204
		})
		upAt := time.Now().Add(1500 * time.Millisecond)
		down := newReceiver(t, func(_, _ string, _ int) int {
			if time.Now().Before(upAt) {
				return 500
			}
			return 200
		})
		rs := []*receiver{flaky, stall, down}
		eps := make([]webhook.Endpoint, len(rs))
		for i, r := range rs {
			eps[i] = e.endpoint(t, r, "trip.*")
		}
		trips := []string{"t_a", "t_b", "t_c", "t_d"}
		for range 3 {
			evs := e.appendEvents(t, trips, 4)
			for _, r := range rs {
				r.expect(evs)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for i, r := range rs {
			waitFor(t, fmt.Sprintf("receiver %d to get every event", i), 90*time.Second, func() bool { return r.missing() == 0 })
			r.check()
		}
		// The log: every delivery delivered; the down receiver's first
		// ones took several attempts, with the status it answered.
		page, err := e.svc.Deliveries(context.Background(), webhook.LogQuery{EndpointID: eps[2].ID, Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Deliveries) != 48 {
			t.Fatalf("log holds %d deliveries, want 48", len(page.Deliveries))
		}
		retried := 0
		for _, d := range page.Deliveries {
			if d.State != webhook.StateDelivered || d.StatusCode != 200 || d.Attempts < 1 {
				t.Fatalf("delivery %+v", d)
			}
			if d.Attempts > 1 {
				retried++
			}
		}
		if retried == 0 {
			t.Fatal("no delivery to the receiver that was down took more than one attempt")
		}
		// Paging walks the same rows, newest first.
		var all []webhook.Delivery
		q := webhook.LogQuery{EndpointID: eps[2].ID, Limit: 7}
		for {
			p, err := e.svc.Deliveries(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Deliveries...)
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
		if len(all) != 48 || all[0].Event.ID != page.Deliveries[0].Event.ID || all[47].Event.ID != page.Deliveries[47].Event.ID {
			t.Fatalf("paging walked %d deliveries", len(all))
		}
	})
}

// TestDeadLetterReplay: an event the receiver always refuses is
// dead-lettered after DeadAfter and the trip's later events follow it; a
// replay from an event re-delivers it and the later ones, nothing before.
func TestDeadLetterReplay(t *testing.T) {
	forEachStore(t, func(t *testing.T, u string, s *sqlstore.Store) {
		e := startEnv(t, u, s, webhookriver.Config{DeadAfter: 800 * time.Millisecond})
		var poison string
		var mu sync.Mutex
		picky := newReceiver(t, func(topic, id string, _ int) int {
			mu.Lock()
			defer mu.Unlock()
			if topic+"/"+id == poison {
				return 400
			}
			return 200
		})
		pickyEP := e.endpoint(t, picky)
		mu.Lock()
		poison = fmt.Sprintf("trip:t_x/%d-0", 1_800_000_000_002) // t_x's second event
		mu.Unlock()
		picky.mu.Lock()
		picky.dead[poison] = true
		picky.mu.Unlock()
		evs := e.appendEvents(t, []string{"t_x", "t_y"}, 5)
		picky.expect(evs)
		waitFor(t, "picky to get every other event", 60*time.Second, func() bool { return picky.missing() == 0 })
		picky.check()
		d, err := e.store.Delivery(context.Background(), pickyEP.ID, evs[2].Topic, evs[2].ID)
		if err != nil || d.State != webhook.StateDead || d.StatusCode != 400 || d.Attempts < 2 {
			t.Fatalf("poison delivery = %+v, %v; want dead after several 400s", d, err)
		}

		// Replay from t_y's third event: it and every later one of both
		// trips come again (the poison is not among them), nothing earlier.
		from := evs[5]
		before := map[string]int{}
		picky.mu.Lock()
		for k, v := range picky.delivered {
			before[k] = v
		}
		picky.mu.Unlock()
		n, err := e.svc.Replay(context.Background(), pickyEP.ID, webhook.ReplayFrom{EventID: from.ID})
		if err != nil || n != int64(len(evs)-5) {
			t.Fatalf("Replay = %d, %v; want %d", n, err, len(evs)-5)
		}
		waitFor(t, "the replay", 60*time.Second, func() bool {
			picky.mu.Lock()
			defer picky.mu.Unlock()
			for _, ev := range evs[5:] {
				if picky.delivered[ev.Topic+"/"+ev.ID] <= before[ev.Topic+"/"+ev.ID] {
					return false
				}
			}
			return true
		})
		picky.check()
		picky.mu.Lock()
		for _, ev := range evs[:5] {
			if k := ev.Topic + "/" + ev.ID; picky.delivered[k] != before[k] {
				t.Errorf("%s delivered again, before the replay's start", k)
			}
		}
		picky.mu.Unlock()
		if _, err := e.svc.Replay(context.Background(), pickyEP.ID, webhook.ReplayFrom{EventID: "nope"}); !errors.Is(err, webhook.ErrInvalid) {
			t.Fatalf("a replay from a malformed event id = %v, want ErrInvalid", err)
		}
		// A replay by time: everything from the first event's time.
		if n, err := e.svc.Replay(context.Background(), pickyEP.ID, webhook.ReplayFrom{Time: evs[0].TS}); err != nil || n != int64(len(evs)) {
			t.Fatalf("Replay from a time = %d, %v; want %d", n, err, len(evs))
		}
	})
}

// TestPauseResume: a receiver refusing everything gets its endpoint
// paused after PauseAfter (status "paused", the gauge counts it);
// enabling it again delivers the queue, in order.
func TestPauseResume(t *testing.T) {
	forEachStore(t, func(t *testing.T, u string, s *sqlstore.Store) {
		reg := prometheus.NewRegistry()
		e := startEnv(t, u, s, webhookriver.Config{PauseAfter: 500 * time.Millisecond, Registerer: reg})
		var mu sync.Mutex
		var healthy bool
		broken := newReceiver(t, func(_, _ string, _ int) int {
			mu.Lock()
			defer mu.Unlock()
			if healthy {
				return 200
			}
			return 503
		})
		brokenEP := e.endpoint(t, broken, "trip.status")
		broken.expect(e.appendEvents(t, []string{"t_x", "t_y"}, 5))
		waitFor(t, "the broken endpoint to be paused", 30*time.Second, func() bool {
			ep, err := e.svc.Get(context.Background(), brokenEP.ID)
			return err == nil && ep.Status() == webhook.StatusPaused
		})
		waitFor(t, "the paused gauge", 10*time.Second, func() bool { return metric(t, reg, "hextrack_webhook_endpoints_paused", "") == 1 })
		if metric(t, reg, "hextrack_webhook_deliveries_total", "failed") < 2 {
			t.Fatal("the failed attempts were not counted")
		}
		mu.Lock()
		healthy = true
		mu.Unlock()
		on := true
		if _, err := e.svc.Update(context.Background(), brokenEP.ID, webhook.Input{Enabled: &on}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the resumed endpoint to get every event", 60*time.Second, func() bool { return broken.missing() == 0 })
		broken.check()
		if ep, _ := e.svc.Get(context.Background(), brokenEP.ID); ep.Status() != webhook.StatusActive {
			t.Fatalf("resumed endpoint's status %s", ep.Status())
		}
		waitFor(t, "the paused gauge back to 0", 10*time.Second, func() bool { return metric(t, reg, "hextrack_webhook_endpoints_paused", "") == 0 })
		if n := metric(t, reg, "hextrack_webhook_deliveries_total", "delivered"); n < 10 {
			t.Fatalf("%v deliveries counted, want 10", n)
		}
	})
}

// current is the running test's env (tests run one at a time), dumped
// when a wait times out.
var current *env

// dump logs the jobs' and deliveries' states (a failing test's clue).
func (e *env) dump(t testing.TB) {
	for _, q := range []string{"SELECT state, count(*) FROM river_job GROUP BY state",
		"SELECT state, count(*) FROM webhook_deliveries GROUP BY state",
		"SELECT paused, failing_since_us FROM webhook_endpoints",
		"SELECT leader_id, expires_at FROM river_leader",
		"SELECT holder, until_us FROM webhook_leases"} {
		rows, err := e.s.DB().QueryContext(context.Background(), q)
		if err != nil {
			t.Log(err)
			continue
		}
		func() {
			defer rows.Close()
			for rows.Next() {
				var a, b any
				_ = rows.Scan(&a, &b)
				t.Logf("%s: %v %v", q, a, b)
			}
			if err := rows.Err(); err != nil {
				t.Log(err)
			}
		}()
	}
	rows, err := e.s.DB().QueryContext(context.Background(), "SELECT state, args, attempt, errors, scheduled_at FROM river_job WHERE state <> 'completed' LIMIT 20")
	if err != nil {
		t.Log(err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var st, args string
		var n int
		var errs, at any
		_ = rows.Scan(&st, &args, &n, &errs, &at)
		t.Logf("job %s %s attempt %d scheduled %v errors %.300s", st, args, n, at, fmt.Sprint(errs))
	}
	if err := rows.Err(); err != nil {
		t.Log(err)
	}
	if d, err := e.s.DB().QueryContext(context.Background(), "SELECT endpoint_id, topic, id_ms, id_seq, state, attempts, error FROM webhook_deliveries WHERE state = 'pending' LIMIT 20"); err == nil {
		defer d.Close()
		for d.Next() {
			var ep, topic, st, er string
			var ms, seq, n int64
			_ = d.Scan(&ep, &topic, &ms, &seq, &st, &n, &er)
			t.Logf("pending %s %s %d-%d attempts %d %s", ep, topic, ms, seq, n, er)
		}
		if err := d.Err(); err != nil {
			t.Log(err)
		}
	}
}

// metric reads a gauge, a counter (of outcome, if given) or a histogram's
// count from reg.
func metric(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if outcome != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != outcome) {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

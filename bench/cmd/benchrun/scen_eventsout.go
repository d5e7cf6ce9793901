package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The events-out load: eoTrips trips, chat messages posted at eoRate per
// second in all for eoSeconds, delivered to eoEndpoints receivers.
const eoEndpoints, eoTrips, eoRate, eoSeconds = 10, 200, 1000, 10

// eventsOutScenario is the "events out" row (issue 18): a hextrack whose
// archive is a PostgreSQL schema of its own, 10 webhook endpoints
// (created through the REST API with an ops token, filter trip.message)
// whose receivers run in this process on ports of their own and verify
// every delivery's Standard Webhooks signature and each trip's order; a
// load of 1,000 chat messages/s over 200 assigned trips, posted by each
// trip's rider (each a durable trip.message event, archived by the
// pipeline, routed and delivered by webhookriver) for 10 s. Latency = a
// receiver's first receipt - the event's ts (the body's). Lost = posted
// messages x endpoints - distinct deliveries received, 120 s after the
// last post at most. The NATS export's lag is the nats row's (shown in
// extra). extra.cpu_us_per_delivery is the CPU every process of the path
// spent per delivery over the run (hextrack, PostgreSQL's backends,
// the bench's Redis, this process's posting and receivers): at 10,000
// deliveries/s its total/100 is the cores the row needs.
type eventsOutScenario struct{ rig }

// eoReceiver is one endpoint's receiver.
type eoReceiver struct {
	srv                      *http.Server
	url                      string
	wh                       atomic.Pointer[standardwebhooks.Webhook]
	mu                       sync.Mutex
	seen                     map[string]bool     // webhook-id
	last                     map[string][2]int64 // topic -> last event ID received (ms, seq)
	lat                      lat
	dups, badSig, outOfOrder int
}

func newEOReceiver() (*eoReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &eoReceiver{url: "http://" + ln.Addr().String() + "/hooks", seen: map[string]bool{}, last: map[string][2]int64{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func eventIDParts(id string) [2]int64 {
	a, b, _ := strings.Cut(id, "-")
	ms, _ := strconv.ParseInt(a, 10, 64)
	seq, _ := strconv.ParseInt(b, 10, 64)
	return [2]int64{ms, seq}
}

func (r *eoReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev struct {
		ID    string    `json:"id"`
		Topic string    `json:"topic"`
		TS    time.Time `json:"ts"`
	}
	wh := r.wh.Load()
	if wh == nil || wh.Verify(body, req.Header) != nil || json.Unmarshal(body, &ev) != nil {
		r.mu.Lock()
		r.badSig++
		r.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized) // retried: counted as lost if never verified
		return
	}
	key := req.Header.Get("webhook-id")
	id := eventIDParts(ev.ID)
	r.mu.Lock()
	if r.seen[key] {
		r.dups++
	} else {
		r.seen[key] = true
		r.lat = append(r.lat, now.Sub(ev.TS))
		if l, ok := r.last[ev.Topic]; ok && (id[0] < l[0] || id[0] == l[0] && id[1] < l[1]) {
			r.outOfOrder++
		}
		r.last[ev.Topic] = id
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *eoReceiver) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (sc *eventsOutScenario) run(ctx context.Context) error {
	natsRow := natsRowOf(sc.cfg.out) // before this run rewrites the file
	arch, err := benchSchema(ctx, sc.cfg.archiveDB)
	if err != nil {
		return err
	}
	defer arch.drop()
	if err := sc.startServer(ctx, "eventsout", "HEXTRACK_DATABASE_URL="+arch.url); err != nil {
		return err
	}
	defer sc.stopServer() // before the schema is dropped
	ops := sc.token("ops", "eventsout-ops")
	recvs := make([]*eoReceiver, eoEndpoints)
	for i := range recvs {
		r, err := newEOReceiver()
		if err != nil {
			return err
		}
		defer r.srv.Close()
		recvs[i] = r
		body, _ := json.Marshal(map[string]any{"url": r.url, "filter": []string{"trip.message"}})
		var ep struct {
			Secret string `json:"secret"`
		}
		if err := sc.apiJSON(ctx, "POST", "/v1/webhooks/endpoints", ops, body, 201, &ep); err != nil {
			return fmt.Errorf("create endpoint: %w", err)
		}
		wh, err := standardwebhooks.NewWebhook(ep.Secret)
		if err != nil {
			return err
		}
		r.wh.Store(wh)
	}
	// Assigned trips, each with its own rider (as a live operation has
	// them; requested trips with no driver would keep dispatch busy
	// through the whole run).
	trips, err := tripSetup{sc.servers}.assign(ctx, eoTrips)
	if err != nil {
		return err
	}
	logf("events out: %d endpoints, %d trips; posting %d messages/s for %d s", eoEndpoints, eoTrips, eoRate, eoSeconds)

	// Posting: a job per message, at eoRate per second, over 16
	// keep-alive connections.
	const conns = 16
	jobs := make(chan int, eoRate)
	var posted, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range conns {
		h, err := dialH(ctx, nil, sc.addr())
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer h.Close()
			for i := range jobs {
				body := fmt.Appendf(nil, `{"client_id":"eo%d","text":"message %d"}`, i, i)
				t := &trips[i%eoTrips]
				st, rb, err := h.do(request("POST", sc.addr(), "/v1/trips/"+t.Trip+"/messages", t.RTok, nil, body), "", nil)
				if err != nil || st != 201 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s %v", st, rb, err))
					continue
				}
				posted.Add(1)
			}
		})
	}
	start := time.Now()
	cpu := newCPUShare(map[string]func() int64{
		"hextrack":                      func() int64 { return cpuTicks(sc.srv.pid()) },
		"postgres":                      func() int64 { return commTicks("postgres") },
		"redis":                         func() int64 { return cpuTicks(sc.redis.pid()) },
		"bench (posting, 10 receivers)": func() int64 { return cpuTicks(os.Getpid()) },
	})
	prof := sc.rec.profile(ctx, "eventsout", eoSeconds*time.Second*8/10)
	defer func() { <-prof }()
	tick := time.NewTicker(10 * time.Millisecond)
	for i := 0; i < eoRate*eoSeconds; {
		select {
		case <-ctx.Done():
			close(jobs)
			tick.Stop()
			wg.Wait()
			return ctx.Err()
		case <-tick.C:
		}
		due := int(time.Since(start).Seconds() * eoRate)
		for ; i < min(due, eoRate*eoSeconds); i++ {
			jobs <- i
		}
	}
	close(jobs)
	tick.Stop()
	wg.Wait()
	postTook := time.Since(start)
	if failed.Load() > 0 {
		logf("events out: %d posts failed, e.g. %v", failed.Load(), firstErr.Load())
	}
	want := int(posted.Load())
	total := func() int {
		n := 0
		for _, r := range recvs {
			n += r.received()
		}
		return n
	}
	t := time.Now()
	for total() < want*eoEndpoints && time.Since(t) < 120*time.Second {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	took := time.Since(start)
	cpuUS := cpu.perOp(total())
	var all lat
	dups, bad, order := 0, 0, 0
	for _, r := range recvs {
		r.mu.Lock()
		all = append(all, r.lat...)
		dups, bad, order = dups+r.dups, bad+r.badSig, order+r.outOfOrder
		r.mu.Unlock()
	}
	all = all.sorted()
	lost := want*eoEndpoints - len(all)
	p99 := all.q(0.99)
	extra := map[string]any{"endpoints": eoEndpoints, "trips": eoTrips, "events_posted": want, "posts_failed": failed.Load(),
		"post_seconds": postTook.Seconds(), "events_per_s_offered": float64(want) / postTook.Seconds(), "deliveries_expected": want * eoEndpoints, "deliveries_received": len(all),
		"lost": lost, "duplicates": dups, "bad_signatures": bad, "out_of_order": order,
		"deliveries_per_s": float64(len(all)) / took.Seconds(), "p50_ms": ms(all.q(0.5)), "max_ms": ms(all.q(1)),
		// CPU µs per delivery, by process, over the whole run (posting,
		// archiving, routing, delivering, receiving): what 10,000
		// deliveries/s would need in cores is total/100.
		"cpu_us_per_delivery": cpuUS, "cores_needed_at_10k_per_s": round1(cpuUS["total"] / 100)}
	for k, v := range natsRow {
		extra[k] = v
	}
	notes := ""
	if postTook > eoSeconds*time.Second*11/10 {
		notes = fmt.Sprintf("the server took the %d messages in %.0f s, not %d s: %.0f events/s offered, not %d", want, postTook.Seconds(), eoSeconds,
			float64(want)/postTook.Seconds(), eoRate)
	}
	cmd := fmt.Sprintf("%s -only eventsout  # PostgreSQL archive; %d endpoints (trip.message) with receivers in the bench verifying signatures and per-trip order; %d chat messages/s over %d assigned trips (each its rider's) for %d s; latency = receipt - event ts; lost = posted x endpoints - distinct received (120 s grace)",
		benchrunBin, eoEndpoints, eoRate, eoTrips, eoSeconds)
	sc.rec.add(Scenario{Name: "8 events out", Metric: "event ts to webhook delivery (p99)", Value: ms(p99), Unit: "ms",
		Target:    "1,000 events/s to 10 endpoints: p99 <= 1000 ms, 0 lost",
		Met:       p99 <= time.Second && lost == 0 && want >= eoRate*eoSeconds && order == 0,
		Reference: Ref{Name: "nats export lag (p99, the nats row)", Value: floatOf(natsRow["nats_export_lag_p99_ms"]), Unit: "ms"},
		Command:   cmd, Notes: notes, Extra: extra})
	return nil
}

// apiJSON sends a JSON request to the server and decodes a want-status
// answer into out.
func (sc *eventsOutScenario) apiJSON(ctx context.Context, method, path, token string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, sc.base()+path, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// natsRowOf reads the nats row's lag from the results file (the row the
// NATS export's lag is measured in), for the events-out row's extra.
func natsRowOf(path string) map[string]any {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var res Results
	if json.Unmarshal(b, &res) != nil {
		return nil
	}
	for _, s := range res.Scenarios {
		if s.Name == "nats export lag" && s.Metric != "error" {
			return map[string]any{"nats_export_lag_p99_ms": s.Value, "nats_export_lag_met": s.Met,
				"nats_export_lag_from": "the nats row of results.json (scripts/bench.sh -only nats)"}
		}
	}
	return nil
}

func floatOf(v any) float64 {
	f, _ := v.(float64)
	return f
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hextrack/hextrack/feed"
)

const resumeMissed, resumeRuns = 1000, 30

// resumeScenario is scenario 5: a client that missed 1,000 durable events
// reconnects with Last-Event-ID; time from the start of its request (TCP
// connect included) until the 1,000th missed event is read. Reference:
// XRANGE of the same 1,000 stream entries from the same Redis.
type resumeScenario struct{ rig }

// run posts the missed events, then times the resumes and the XRANGEs.
func (sc *resumeScenario) run(ctx context.Context) error {
	if err := sc.startServer(ctx, "resume"); err != nil {
		return err
	}
	rider := sc.token("rider", "resume-rider")
	pts := cityDense(2, 5)
	s, err := sc.createTrip(ctx, rider, "resume-1", "ride", "cash", pts[0], pts[1])
	if err != nil {
		return err
	}
	id, from := s.Trip.ID, s.FeedPosition
	// 1,000 durable events the client misses: chat messages.
	h, err := dialH(ctx, nil, sc.addr())
	if err != nil {
		return err
	}
	for i := 0; i < resumeMissed; i++ {
		body := fmt.Appendf(nil, `{"client_id":"m%d","text":"message %d"}`, i, i)
		st, rb, err := h.do(request("POST", sc.addr(), "/v1/trips/"+id+"/messages", rider, nil, body), "", nil)
		if err != nil || st != 201 {
			h.Close()
			return fmt.Errorf("post message %d: %d %s %v", i, st, rb, err)
		}
	}
	h.Close()
	key := feed.StreamKey(prefix, "trip:"+id)
	var hx, rx lat
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for run := 0; run < resumeRuns+3; run++ {
		d, n, err := resumeOnce(ctx, client, sc.base()+"/v1/trips/"+id+"/events", rider, from)
		if err != nil {
			return err
		}
		if n != resumeMissed {
			return fmt.Errorf("resume: got %d of %d missed events", n, resumeMissed)
		}
		t := time.Now()
		xs, err := sc.rdb.XRangeN(ctx, key, "("+from, "+", resumeMissed).Result()
		x := time.Since(t)
		if err != nil {
			return err
		}
		if len(xs) < resumeMissed {
			return fmt.Errorf("XRANGE: %d entries", len(xs))
		}
		if run >= 3 { // the first runs warm connections and caches
			hx, rx = append(hx, d), append(rx, x)
		}
	}
	hx, rx = hx.sorted(), rx.sorted()
	cmd := fmt.Sprintf("%s -only resume  # %d runs: SSE GET /v1/trips/{id}/events with Last-Event-ID 1,000 events back, new TCP connection each; reference XRANGE key (from +  COUNT 1000", benchrunBin, resumeRuns)
	sc.rec.add(Scenario{Name: "5 resume", Metric: "catch-up of 1,000 missed events (median)", Value: ms(hx.q(0.5)), Unit: "ms", Target: "<= 100 ms",
		Met:       hx.q(0.5) <= 100*time.Millisecond && hx.q(1) <= 100*time.Millisecond,
		Reference: Ref{Name: "XRANGE of the same 1,000 entries (median)", Value: ms(rx.q(0.5)), Unit: "ms"}, Command: cmd,
		Extra: map[string]any{"runs": resumeRuns, "max_ms": ms(hx.q(1)), "min_ms": ms(hx.q(0)), "xrange_max_ms": ms(rx.q(1))}})
	return nil
}

// resumeOnce opens the stream with Last-Event-ID and reads until n
// trip.message events after from have arrived.
func resumeOnce(ctx context.Context, c *http.Client, url, token, from string) (time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Last-Event-ID", from)
	t := time.Now()
	r, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer r.Body.Close()
	if r.StatusCode != 200 {
		return 0, 0, fmt.Errorf("resume: %s", r.Status)
	}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "event: ") {
			switch l[7:] {
			case "trip.message":
				n++
				if n == resumeMissed {
					return time.Since(t), n, nil
				}
			case "reset":
				return 0, n, fmt.Errorf("resume: got a reset instead of the missed events")
			}
		}
	}
	return time.Since(t), n, sc.Err()
}

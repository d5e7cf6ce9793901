package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pollTarget is one resource a polling client keeps fresh.
type pollTarget struct {
	path, token, etag string
}

type pollResult struct {
	total, n304, other, errs int64
	rate                     float64
}

// hammer runs conns keep-alive connections in a closed loop for d, each
// polling targets round-robin with If-None-Match; a 200 updates the ETag
// as a client would. A connection whose answer takes beyond the window
// plus 10 s is given up; no answer at all, or ctx ending, is an error.
func hammer(ctx context.Context, addr string, conns int, d time.Duration, targets []pollTarget) (pollResult, error) {
	var total, n304, other, errs atomic.Int64
	var wg sync.WaitGroup
	dl := &spreadDialer{n: 16}
	start := make(chan struct{})
	var stopAt time.Time
	for k := 0; k < conns; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			h, err := dialH(ctx, dl, addr)
			if err != nil {
				errs.Add(1)
				return
			}
			defer h.Close()
			ts := append([]pollTarget(nil), targets...)
			reqs := make([][]byte, len(ts))
			for i, t := range ts {
				reqs[i] = request("GET", addr, t.path, t.token, []string{"If-None-Match", t.etag}, nil)
			}
			<-start
			_ = h.c.SetDeadline(stopAt.Add(10 * time.Second))
			var etag string
			for i := k; time.Now().Before(stopAt) && ctx.Err() == nil; i++ {
				j := i % len(ts)
				etag = ""
				st, _, err := h.do(reqs[j], "etag", &etag)
				if err != nil {
					errs.Add(1)
					return
				}
				total.Add(1)
				if st == 304 {
					n304.Add(1)
					continue
				}
				other.Add(1)
				if st == 200 && etag != "" {
					ts[j].etag = etag
					reqs[j] = request("GET", addr, ts[j].path, ts[j].token, []string{"If-None-Match", etag}, nil)
				}
			}
		}(k)
	}
	_ = sleepCtx(ctx, 200*time.Millisecond) // let every connection open
	t0 := time.Now()
	stopAt = t0.Add(d)
	close(start)
	wg.Wait()
	el := time.Since(t0).Seconds()
	r := pollResult{total: total.Load(), n304: n304.Load(), other: other.Load(), errs: errs.Load(), rate: float64(n304.Load()) / el}
	if ctx.Err() != nil {
		return r, fmt.Errorf("polling %s: %d answers in %.0f s: %w", addr, r.total, el, context.Cause(ctx))
	}
	if r.total == 0 {
		return r, fmt.Errorf("polling %s: 0 answers from %d connections in %.0f s (%d errors)", addr, conns, el, r.errs)
	}
	return r, nil
}

const pollConns = 32

// pollScenario is scenario 6: GET /v1/trips/{id} and GET
// /v1/payments/{id} with If-None-Match → 304, against the same generator
// on a trivial 304 handler.
type pollScenario struct{ rig }

// run measures the reference, then the trips, then the payments (a
// build without payments gets a row saying so).
func (sc *pollScenario) run(ctx context.Context) error {
	ref, refAddr, err := sc.startRef(ctx)
	if err != nil {
		return err
	}
	rr, err := hammer(ctx, refAddr, pollConns, sc.cfg.pollDur, []pollTarget{{path: "/304", etag: `"v1"`}})
	ref.stop(5 * time.Second)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	refRow := Ref{Name: "net/http 304 handler, same generator", Value: rr.rate, Unit: "req/s"}
	logf("reference 304: %.0f req/s (%d errors)", rr.rate, rr.errs)

	if err := sc.startServer(ctx, "poll"); err != nil {
		return err
	}
	// The polled trips are assigned (a driver on the way): the state
	// riders poll in, and no dispatch search runs beside the benchmark.
	file, err := tripSetup{sc.servers}.run(ctx, 100)
	if err != nil {
		return err
	}
	fts, err := readTrips(file)
	if err != nil {
		return err
	}
	var trips []pollTarget
	for _, t := range fts {
		trips = append(trips, pollTarget{path: "/v1/trips/" + t.Trip, token: t.RTok})
	}
	for i := range trips {
		_, h, err := call(ctx, http.MethodGet, sc.base()+trips[i].path, trips[i].token, nil, nil)
		if err != nil {
			return err
		}
		trips[i].etag = h.Get("ETag")
	}
	rider := sc.token("rider", "poll-rider")
	pts := cityDense(200, 3)
	cmd := fmt.Sprintf("%s -only poll  # %d keep-alive connections, %s, 100 assigned trips round-robin, If-None-Match", benchrunBin, pollConns, sc.cfg.pollDur)
	prof := sc.rec.profile(ctx, "poll-trips", sc.cfg.pollDur-2*time.Second)
	r, err := hammer(ctx, sc.addr(), pollConns, sc.cfg.pollDur, trips)
	<-prof
	if err != nil {
		return fmt.Errorf("trips: %w", err)
	}
	sc.rec.add(Scenario{Name: "6 polling trips", Metric: "304 req/s", Value: r.rate, Unit: "req/s", Target: ">= 30000", Met: r.rate >= 30000,
		Reference: refRow, Command: cmd,
		Extra: map[string]any{"requests": r.total, "not_modified": r.n304, "other_status": r.other, "errors": r.errs, "connections": pollConns}})

	// Payments: an online delivery awaits payment; its payment is polled.
	var pays []pollTarget
	var payErr error
	for i := 0; i < 100 && payErr == nil; i++ {
		s, err := sc.createTrip(ctx, rider, fmt.Sprintf("pay-%d", i), "delivery", "online", pts[2*i], pts[2*i+1])
		if err != nil {
			payErr = err
			break
		}
		var p struct {
			ID      string `json:"id"`
			Payment struct {
				ID string `json:"id"`
			} `json:"payment"`
		}
		if _, _, err := call(ctx, http.MethodPost, sc.base()+"/v1/trips/"+s.Trip.ID+"/payment", rider, map[string]any{}, &p); err != nil {
			payErr = err
			break
		}
		id := p.ID
		if id == "" {
			id = p.Payment.ID
		}
		t := pollTarget{path: "/v1/payments/" + id, token: rider}
		_, h, err := call(ctx, http.MethodGet, sc.base()+t.path, rider, nil, nil)
		if err != nil {
			payErr = err
			break
		}
		t.etag = h.Get("ETag")
		pays = append(pays, t)
	}
	if payErr != nil {
		logf("payments unavailable: %v", payErr)
		sc.rec.add(Scenario{Name: "6 polling payments", Metric: "304 req/s", Unit: "req/s", Target: ">= 30000", Met: false, Reference: refRow,
			Command: cmd, Notes: "not measured: payments are not served by this build (" + firstLine(payErr.Error()) + ")"})
		return nil
	}
	prof = sc.rec.profile(ctx, "poll-payments", sc.cfg.pollDur-2*time.Second)
	r, err = hammer(ctx, sc.addr(), pollConns, sc.cfg.pollDur, pays)
	<-prof
	if err != nil {
		return fmt.Errorf("payments: %w", err)
	}
	sc.rec.add(Scenario{Name: "6 polling payments", Metric: "304 req/s", Value: r.rate, Unit: "req/s", Target: ">= 30000", Met: r.rate >= 30000,
		Reference: refRow, Command: strings.Replace(cmd, "100 trips", "100 payments", 1),
		Extra: map[string]any{"requests": r.total, "not_modified": r.n304, "other_status": r.other, "errors": r.errs, "connections": pollConns}})
	return nil
}

func firstLine(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.SplitN(s, "\n", 2)[0]
}

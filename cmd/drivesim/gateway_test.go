package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/payment"
	"github.com/hextrack/hextrack/trip"
)

// e2eClient speaks JSON to hextrack with a bearer token.
type e2eClient struct {
	base, tok string
	hc        *http.Client
}

func (c e2eClient) do(ctx context.Context, method, path string, body any, hdr map[string]string) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if c.tok != "" {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// flowResult is what one customer saw.
type flowResult struct {
	pay    payment.Payment
	tripID string
	polls  int
	notMod int
	err    error
}

// TestGatewayEndToEnd is the whole online-payment flow against the real
// server binary on real Redis with the simulated gateway: 16 customers
// create online deliveries, create payments, open the checkout page, pay,
// come back and poll GET /v1/payments/{id} (If-None-Match, honouring
// Retry-After) until it is final. The gateway delivers duplicated, stale
// out-of-order and failing webhooks. Every payment must end in the
// gateway's outcome and never revert; the trip must be requested (and then
// dispatched: it expires with no drivers around) or cancelled; the feed
// must hold exactly one payment.status per change; every distinct event is
// stored once.
func TestGatewayEndToEnd(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gwURL := "http://" + gln.Addr().String()
	base := mustRunServer(t, "HEXTRACK_KEY_PREFIX="+prefix, "HEXTRACK_PAYMENT_GATEWAY_URL="+gwURL,
		"HEXTRACK_PAYMENT_WEBHOOK_SECRETS=whsec_e2e_old, whsec_e2e_new", "HEXTRACK_DISPATCH_TIMEOUT=1500ms")
	if !strings.HasPrefix(base, "http") {
		base = "http://" + base
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	g := newGateway(gatewayConfig{Server: base, Secret: []byte("whsec_e2e_new"), MinDelay: 100 * time.Millisecond,
		MaxDelay: 1200 * time.Millisecond, Dup: 0.5, Reorder: 0.5, Fail: 0.3, Seed: 42})
	gsrv := &http.Server{Handler: g.handler(ctx)}
	go func() { _ = gsrv.Serve(gln) }()
	defer gsrv.Close()

	const n = 16
	results := make([]flowResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = customer(ctx, base, i) })
	}
	wg.Wait()
	if err := g.wait(ctx); err != nil {
		t.Fatalf("gateway deliveries: %v", err)
	}
	var succeeded, failed, dups, reorders, polls, notMod int
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("customer %d: %v", i, r.err)
		}
		g.mu.Lock()
		c := *g.byID[r.pay.ID]
		g.mu.Unlock()
		want := map[string]string{payment.WebhookSucceeded: payment.StatusSucceeded, payment.WebhookFailed: payment.StatusFailed}[c.Outcome]
		if r.pay.Status != want {
			t.Errorf("payment %s: polled %s, the gateway decided %s", r.pay.ID, r.pay.Status, c.Outcome)
		}
		// Every delivery answered 200; the first applied, the rest changed nothing.
		for j, d := range c.Deliveries {
			wantOutcome := payment.OutcomeApplied
			switch {
			case j > 0 && d.EventID == c.Deliveries[0].EventID:
				wantOutcome = payment.OutcomeDuplicate
			case j > 0 && d.Type != c.Outcome:
				wantOutcome = payment.OutcomeConflict
			case j > 0:
				wantOutcome = payment.OutcomeIgnored
			}
			if d.Status != http.StatusOK || d.Outcome != wantOutcome {
				t.Errorf("payment %s delivery %d (%s): %d %q, want 200 %q", r.pay.ID, j, d.Type, d.Status, d.Outcome, wantOutcome)
			}
		}
		checkAfterFlow(ctx, t, base, r, c)
		stored, err := rdb.HLen(ctx, prefix+"trip:{"+r.tripID+"}:payment:events").Result()
		distinct := 1
		if c.Reordered {
			distinct = 2
		}
		if err != nil || stored != int64(distinct) {
			t.Errorf("payment %s: %d events stored, want %d (%v)", r.pay.ID, stored, distinct, err)
		}
		if want == payment.StatusSucceeded {
			succeeded++
		} else {
			failed++
		}
		if c.Duplicated {
			dups++
		}
		if c.Reordered {
			reorders++
		}
		polls += r.polls
		notMod += r.notMod
	}
	t.Logf("e2e: %d payments: %d succeeded, %d failed; %d duplicated, %d with a stale event after the final one; %d polls, %d of them 304; %d webhook requests",
		n, succeeded, failed, dups, reorders, polls, notMod, g.sent.Load())
	if succeeded == 0 || failed == 0 || dups == 0 || reorders == 0 || notMod == 0 {
		t.Fatalf("the run did not cover every case (succeeded %d, failed %d, dups %d, reorders %d, 304s %d)", succeeded, failed, dups, reorders, notMod)
	}
}

// customer is one rider's whole flow.
func customer(ctx context.Context, base string, i int) (r flowResult) {
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	anon := e2eClient{base: base, hc: hc}
	resp, b, err := anon.do(ctx, "POST", "/v1/dev/token", map[string]string{"role": "rider", "sub": fmt.Sprintf("r_pay_%d", i), "ttl": "1h"}, nil)
	if err != nil || resp.StatusCode != 200 {
		return flowResult{err: fmt.Errorf("token: %v %s", err, b)}
	}
	var tok struct{ Token string }
	_ = json.Unmarshal(b, &tok)
	c := e2eClient{base: base, tok: tok.Token, hc: hc}
	resp, b, err = c.do(ctx, "POST", "/v1/trips", map[string]any{"kind": "delivery", "payment": "online",
		"pickup": map[string]any{"lat": 41.1496, "lng": -8.6109}, "dropoff": map[string]any{"lat": 41.16 + float64(i)*0.001, "lng": -8.62}},
		map[string]string{"Idempotency-Key": fmt.Sprintf("pay-e2e-%d", i)})
	if err != nil || resp.StatusCode != 201 {
		return flowResult{err: fmt.Errorf("create trip: %v %s", err, b)}
	}
	var snap trip.Snapshot
	_ = json.Unmarshal(b, &snap)
	r.tripID = snap.Trip.ID
	if snap.Trip.Status != trip.StatusAwaitingPayment {
		return flowResult{err: fmt.Errorf("new online delivery is %s", snap.Trip.Status)}
	}
	resp, b, err = c.do(ctx, "POST", "/v1/trips/"+r.tripID+"/payment", map[string]string{"return_path": "/?trip=" + r.tripID}, nil)
	if err != nil || resp.StatusCode != 201 {
		return flowResult{err: fmt.Errorf("create payment: %v %s", err, b)}
	}
	_ = json.Unmarshal(b, &r.pay)
	// The checkout page, then "Pay".
	page, err := hc.Get(r.pay.CheckoutURL)
	if err != nil {
		return flowResult{err: err}
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	amount := fmt.Sprintf("%d.%02d %s", r.pay.Amount/100, r.pay.Amount%100, r.pay.Currency)
	if page.StatusCode != 200 || !strings.Contains(string(html), amount) {
		return flowResult{err: fmt.Errorf("checkout page %d lacks %q", page.StatusCode, amount)}
	}
	cu, _ := url.Parse(r.pay.CheckoutURL)
	form := url.Values{"action": {"pay"}, "amount": {cu.Query().Get("amount")}, "currency": {cu.Query().Get("currency")}, "return": {cu.Query().Get("return")}}
	back, err := hc.PostForm(cu.Scheme+"://"+cu.Host+cu.Path, form)
	if err != nil {
		return flowResult{err: err}
	}
	back.Body.Close()
	wantBack := base + "/?payment=" + url.QueryEscape(r.pay.ID) + "&trip=" + r.tripID
	if back.StatusCode != http.StatusSeeOther || back.Header.Get("Location") != wantBack {
		return flowResult{err: fmt.Errorf("back from checkout: %d to %q, want %q", back.StatusCode, back.Header.Get("Location"), wantBack)}
	}
	// Poll until final, as a browser would: If-None-Match, Retry-After.
	etag := ""
	for {
		resp, b, err := c.do(ctx, "GET", "/v1/payments/"+r.pay.ID, nil, map[string]string{"If-None-Match": etag})
		if err != nil {
			return flowResult{err: err}
		}
		r.polls++
		switch resp.StatusCode {
		case http.StatusNotModified:
			r.notMod++
		case http.StatusOK:
			_ = json.Unmarshal(b, &r.pay)
			etag = resp.Header.Get("ETag")
		default:
			return flowResult{err: fmt.Errorf("poll: %d %s", resp.StatusCode, b)}
		}
		ra := resp.Header.Get("Retry-After")
		if ra == "" {
			if !r.pay.Final() || resp.StatusCode != http.StatusOK && r.notMod == 0 {
				return flowResult{err: fmt.Errorf("no Retry-After on a %s payment", r.pay.Status)}
			}
			// Final: one more conditional poll must be a 304 without a hint.
			resp, _, err := c.do(ctx, "GET", "/v1/payments/"+r.pay.ID, nil, map[string]string{"If-None-Match": etag})
			if err != nil || resp.StatusCode != http.StatusNotModified || resp.Header.Get("Retry-After") != "" {
				return flowResult{err: fmt.Errorf("final re-poll: %v %v", resp, err)}
			}
			r.polls++
			r.notMod++
			return r
		}
		secs, err := strconv.Atoi(ra)
		if err != nil || secs < 2 || secs > 3 {
			return flowResult{err: fmt.Errorf("Retry-After %q", ra)}
		}
		select {
		case <-ctx.Done():
			return flowResult{err: fmt.Errorf("payment %s still %s: %w", r.pay.ID, r.pay.Status, ctx.Err())}
		case <-time.After(time.Duration(secs) * time.Second):
		}
	}
}

// checkAfterFlow: once the gateway is done, the payment still has its
// final status, the trip moved once (and dispatch ran on a paid one), and
// the feed has exactly two payment.status events.
func checkAfterFlow(ctx context.Context, t *testing.T, base string, r flowResult, c checkout) {
	t.Helper()
	resp, b, err := (e2eClient{base: base, hc: http.DefaultClient}).do(ctx, "POST", "/v1/dev/token",
		map[string]string{"role": "ops", "sub": "ops_e2e", "ttl": "1h"}, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("ops token: %v", err)
	}
	var tok struct{ Token string }
	_ = json.Unmarshal(b, &tok)
	ops := e2eClient{base: base, tok: tok.Token, hc: http.DefaultClient}
	_, b, _ = ops.do(ctx, "GET", "/v1/payments/"+r.pay.ID, nil, nil)
	var now payment.Payment
	_ = json.Unmarshal(b, &now)
	if now.Status != r.pay.Status || now.Version != 2 {
		t.Errorf("payment %s is %s v%d after all deliveries, polled %s", r.pay.ID, now.Status, now.Version, r.pay.Status)
	}
	wantTrip := []string{trip.StatusCancelled}
	if r.pay.Status == payment.StatusSucceeded {
		// Dispatch started: with no driver it expires after the dispatch timeout.
		wantTrip = []string{trip.StatusRequested, trip.StatusExpired}
	}
	deadline := time.Now().Add(5 * time.Second)
	var events []struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	for {
		_, b, _ = ops.do(ctx, "GET", "/v1/trips/"+r.tripID+"/events?limit=100", nil, nil)
		var page struct {
			Events []struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			} `json:"events"`
		}
		_ = json.Unmarshal(b, &page)
		events = page.Events
		last := ""
		for _, e := range events {
			var d struct{ Status string }
			_ = json.Unmarshal(e.Data, &d)
			if strings.HasPrefix(e.Type, "trip.") && d.Status != "" {
				last = d.Status
			}
		}
		if last == wantTrip[len(wantTrip)-1] || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var pays, statuses []string
	for _, e := range events {
		var d struct{ Status string }
		_ = json.Unmarshal(e.Data, &d)
		if e.Type == payment.EventStatus {
			pays = append(pays, d.Status)
		} else if e.Type != trip.EventCreated {
			statuses = append(statuses, d.Status)
		}
	}
	if strings.Join(pays, ",") != payment.StatusPending+","+r.pay.Status {
		t.Errorf("trip %s: payment.status events %v", r.tripID, pays)
	}
	if strings.Join(statuses, ",") != strings.Join(wantTrip, ",") {
		t.Errorf("trip %s: trip statuses %v, want %v (gateway %s)", r.tripID, statuses, wantTrip, c.Outcome)
	}
}

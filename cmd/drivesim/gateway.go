package main

// drivesim gateway plays the third-party payment gateway: it serves the
// checkout page a payment's checkout_url points at, and once the customer
// pays (or declines) it sends signed webhooks to hextrack after a random
// delay — sometimes twice, sometimes out of order (a stale event of an
// earlier attempt arrives after the final one), sometimes failing. It
// retries deliveries that got no answer, 429, 404 or 5xx, like a real
// gateway.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hextrack/hextrack/payment"
)

// gatewayConfig configures the simulated gateway.
type gatewayConfig struct {
	Server   string // hextrack base URL; webhooks go to <Server>/v1/webhooks/payments
	Secret   []byte
	MinDelay time.Duration // delay before the first delivery, random in [MinDelay, MaxDelay]
	MaxDelay time.Duration
	Dup      float64 // probability that the final event is delivered twice
	Reorder  float64 // probability that a stale event of an earlier attempt arrives after the final one
	Fail     float64 // probability that a payment fails although the customer paid
	Seed     uint64  // 0: random
	Attempts int     // delivery attempts per event (retries on 429/404/5xx/network)
}

// delivery is one webhook sent (or tried).
type delivery struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Status  int    `json:"status"` // last HTTP status, 0: no answer
	Outcome string `json:"outcome,omitempty"`
	Tries   int    `json:"tries"`
}

// checkout is one payment the gateway has seen paid or declined.
type checkout struct {
	PaymentID  string     `json:"payment_id"`
	Outcome    string     `json:"outcome"` // payment.succeeded | payment.failed
	Duplicated bool       `json:"duplicated"`
	Reordered  bool       `json:"reordered"`
	Deliveries []delivery `json:"deliveries"`
	Done       bool       `json:"done"`
}

type gateway struct {
	cfg    gatewayConfig
	client *http.Client

	mu     sync.Mutex
	rnd    *mrand.Rand
	byID   map[string]*checkout
	wg     sync.WaitGroup
	sent   atomic.Int64
	failed atomic.Int64
}

func newGateway(cfg gatewayConfig) *gateway {
	if cfg.Attempts <= 0 {
		cfg.Attempts = 6
	}
	if cfg.MaxDelay < cfg.MinDelay {
		cfg.MaxDelay = cfg.MinDelay
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	cfg.Server = strings.TrimRight(cfg.Server, "/")
	return &gateway{cfg: cfg, client: &http.Client{Timeout: 10 * time.Second},
		rnd: mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), byID: map[string]*checkout{}}
}

func (g *gateway) handler(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout/{id}", g.page)
	mux.HandleFunc("POST /checkout/{id}", func(w http.ResponseWriter, r *http.Request) { g.pay(ctx, w, r) })
	mux.HandleFunc("GET /payments/{id}", g.status)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return mux
}

var checkoutPage = template.Must(template.New("checkout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Simulated checkout</title>
<style>body{font:16px system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
.amount{font-size:2rem;margin:.5rem 0 1.5rem}button{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem}</style></head>
<body><h1>Simulated payment gateway</h1>
<p>Payment <code id="payment-id">{{.ID}}</code></p>
<p class="amount" id="amount">{{.Amount}} {{.Currency}}</p>
<form method="post" action="/checkout/{{.ID}}">
<input type="hidden" name="amount" value="{{.Minor}}"><input type="hidden" name="currency" value="{{.Currency}}">
<input type="hidden" name="return" value="{{.Return}}">
<button type="submit" name="action" value="pay" id="pay">Pay</button>
<button type="submit" name="action" value="decline" id="decline">Decline</button>
</form>
<p><small>drivesim gateway: the result reaches hextrack as a signed webhook after a random delay.</small></p>
</body></html>`))

func validPaymentID(id string) bool {
	_, ok := payment.TripOf(id)
	return ok
}

// page is the checkout page: amount and currency from the checkout URL.
func (g *gateway) page(w http.ResponseWriter, r *http.Request) {
	id, q := r.PathValue("id"), r.URL.Query()
	minor, err := strconv.ParseInt(q.Get("amount"), 10, 64)
	if !validPaymentID(id) || err != nil || minor < 0 || len(q.Get("currency")) != 3 {
		http.Error(w, "bad checkout link", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = checkoutPage.Execute(w, map[string]any{"ID": id, "Minor": minor, "Currency": q.Get("currency"),
		"Amount": fmt.Sprintf("%d.%02d", minor/100, minor%100), "Return": q.Get("return")})
}

// pay takes the customer's decision, plans the webhooks and sends the
// customer back to the return URL (with payment=<id>).
func (g *gateway) pay(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	minor, err := strconv.ParseInt(r.FormValue("amount"), 10, 64)
	currency := r.FormValue("currency")
	if !validPaymentID(id) || err != nil || len(currency) != 3 {
		http.Error(w, "bad checkout form", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	c := g.byID[id]
	if c == nil {
		c = &checkout{PaymentID: id, Outcome: payment.WebhookSucceeded}
		if r.FormValue("action") == "decline" || g.rnd.Float64() < g.cfg.Fail {
			c.Outcome = payment.WebhookFailed
		}
		c.Duplicated = g.rnd.Float64() < g.cfg.Dup
		c.Reordered = g.rnd.Float64() < g.cfg.Reorder
		g.byID[id] = c
		delay := g.cfg.MinDelay + time.Duration(g.rnd.Int64N(int64(g.cfg.MaxDelay-g.cfg.MinDelay)+1))
		gap := time.Duration(g.rnd.Int64N(int64(300*time.Millisecond))) + 20*time.Millisecond
		g.wg.Add(1)
		go g.deliverAll(ctx, c, minor, currency, delay, gap)
	}
	g.mu.Unlock()
	back := r.FormValue("return")
	if u, err := url.Parse(back); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		q := u.Query()
		q.Set("payment", id)
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "payment %s submitted; you may close this page\n", id)
}

// status shows what the gateway did with a payment (tests, curious humans).
func (g *gateway) status(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	c := g.byID[r.PathValue("id")]
	var b []byte
	if c != nil {
		b, _ = json.Marshal(c)
	}
	g.mu.Unlock()
	if c == nil {
		http.Error(w, "unknown payment", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func newEventID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "evt_" + hex.EncodeToString(b[:])
}

// deliverAll sends the planned events in delivery order: the final event;
// its duplicate (same event ID); then, if reordered, a stale event of an
// earlier attempt (created 30 s before) that must not change the result.
func (g *gateway) deliverAll(ctx context.Context, c *checkout, minor int64, currency string, delay, gap time.Duration) {
	defer g.wg.Done()
	now := time.Now()
	type ev struct {
		id, typ string
		created time.Time
	}
	final := ev{newEventID(), c.Outcome, now}
	plan := []ev{final}
	if c.Duplicated {
		plan = append(plan, final)
	}
	if c.Reordered {
		// An earlier attempt was declined (a retried card), or failed
		// before the final failure.
		plan = append(plan, ev{newEventID(), payment.WebhookFailed, now.Add(-30 * time.Second)})
	}
	wait := delay
	for _, e := range plan {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = gap
		body, _ := json.Marshal(map[string]any{"id": e.id, "type": e.typ, "created": e.created.Unix(),
			"data": map[string]any{"payment_id": c.PaymentID, "amount": minor, "currency": currency}})
		d := g.send(ctx, e.id, e.typ, body)
		g.mu.Lock()
		c.Deliveries = append(c.Deliveries, d)
		g.mu.Unlock()
	}
	g.mu.Lock()
	c.Done = true
	g.mu.Unlock()
}

// send posts one event, signed at send time, retrying with backoff on no
// answer, 429, 404 and 5xx.
func (g *gateway) send(ctx context.Context, id, typ string, body []byte) delivery {
	d := delivery{EventID: id, Type: typ}
	backoff := 200 * time.Millisecond
	for d.Tries < g.cfg.Attempts {
		d.Tries++
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.Server+"/v1/webhooks/payments", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(payment.SignatureHeader, payment.Sign(g.cfg.Secret, time.Now(), body))
		resp, err := g.client.Do(req)
		g.sent.Add(1)
		if err == nil {
			var res struct {
				Outcome string `json:"outcome"`
			}
			_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&res)
			resp.Body.Close()
			d.Status, d.Outcome = resp.StatusCode, res.Outcome
			if resp.StatusCode < 300 {
				return d
			}
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusNotFound && resp.StatusCode < 500 {
				break // 400, 401: retrying cannot help
			}
		}
		select {
		case <-ctx.Done():
			return d
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	g.failed.Add(1)
	return d
}

// wait blocks until every planned delivery is done or ctx ends.
func (g *gateway) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runGateway: drivesim gateway --server URL --secret S --listen ADDR.
func runGateway(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var cfg gatewayConfig
	server := fs.String("server", "http://localhost:8080", "hextrack base URL (webhooks go to <server>/v1/webhooks/payments)")
	secret := fs.String("secret", "", "webhook signing secret (one of hextrack's HEXTRACK_PAYMENT_WEBHOOK_SECRETS)")
	listen := fs.String("listen", "127.0.0.1:8090", "address of the checkout pages (hextrack's HEXTRACK_PAYMENT_GATEWAY_URL)")
	fs.DurationVar(&cfg.MinDelay, "min-delay", 500*time.Millisecond, "shortest delay before the first webhook")
	fs.DurationVar(&cfg.MaxDelay, "max-delay", 3*time.Second, "longest delay before the first webhook")
	fs.Float64Var(&cfg.Dup, "dup", 0.3, "probability of delivering the final event twice")
	fs.Float64Var(&cfg.Reorder, "reorder", 0.3, "probability of a stale earlier-attempt event arriving after the final one")
	fs.Float64Var(&cfg.Fail, "fail", 0.2, "probability that a paid checkout fails")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "random seed; 0: random")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" {
		return errors.New("gateway: --secret is required")
	}
	cfg.Server, cfg.Secret = *server, []byte(*secret)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("gateway: listen %s: %w", *listen, err)
	}
	g := newGateway(cfg)
	srv := &http.Server{Handler: g.handler(ctx), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "gateway listening on http://%s (webhooks to %s)\n", ln.Addr(), cfg.Server)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	_ = g.wait(sctx)
	g.mu.Lock()
	n := len(g.byID)
	g.mu.Unlock()
	fmt.Fprintf(stdout, "gateway: %d checkouts, %d webhook requests, %d deliveries given up\n", n, g.sent.Load(), g.failed.Load())
	return nil
}

package paymentredis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/payment"
	"github.com/hextrack/hextrack/payment/paymentredis"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

var (
	oldSecret = []byte("whsec_old_0123456789")
	newSecret = []byte("whsec_new_9876543210")
)

// payEnv is a trip service with payments (secrets: newSecret, oldSecret).
type payEnv struct {
	*triptest.Env
	pays  *paymentredis.Service
	hooks *paymentredis.Webhooks
	hook  *recordHook
}

type recordHook struct {
	mu      sync.Mutex
	changes []trip.Change
}

func (h *recordHook) TripChanged(_ context.Context, c trip.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changes = append(h.changes, c)
}

func (h *recordHook) CheckAccept(context.Context, string, string) error { return nil }

func (h *recordHook) actions(tripID string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.changes {
		if c.Trip.ID == tripID {
			out = append(out, c.Action+":"+c.From+">"+c.To)
		}
	}
	return out
}

func mustPayEnv(tb testing.TB) *payEnv {
	tb.Helper()
	e := triptest.MustEnv(tb, tripredis.Config{})
	h := &recordHook{}
	e.Trips.SetHook(h)
	cfg := paymentredis.Config{GatewayURL: "http://gw.test/", Secrets: [][]byte{newSecret, oldSecret}, Prefix: e.Prefix}
	p := paymentredis.New(e.RDB, e.Feed, e.Trips, cfg)
	return &payEnv{Env: e, pays: p, hooks: paymentredis.NewWebhooks(e.RDB, e.Feed, e.Trips, cfg), hook: h}
}

var delivery = trip.CreateRequest{Kind: trip.KindDelivery, Pickup: triptest.Ride.Pickup, Dropoff: triptest.Ride.Dropoff, Payment: trip.PaymentOnline}

// pending makes an awaiting_payment delivery with a pending payment.
func (e *payEnv) pending(tb testing.TB) (payment.Payment, trip.Actor) {
	tb.Helper()
	snap, a := e.Create(tb, delivery)
	pay, created, err := e.pays.Create(context.Background(), snap.Trip.ID, a, "http://app.test/?trip="+snap.Trip.ID)
	if err != nil || !created {
		tb.Fatalf("create payment: %v (created %v)", err, created)
	}
	return pay, a
}

var evtN sync.Mutex
var evtCount int

func eventBody(id, typ string, pay payment.Payment, created time.Time) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "type": typ, "created": created.Unix(),
		"data": map[string]any{"payment_id": pay.ID, "amount": pay.Amount, "currency": pay.Currency}})
	return b
}

func (e *payEnv) deliver(tb testing.TB, body []byte) (payment.WebhookResult, error) {
	tb.Helper()
	return e.hooks.Webhook(context.Background(), payment.Sign(newSecret, time.Now(), body), body)
}

func evtID() string {
	evtN.Lock()
	defer evtN.Unlock()
	evtCount++
	return fmt.Sprintf("evt_%d_%d", time.Now().UnixNano(), evtCount)
}

func TestPaymentCreate(t *testing.T) {
	e := mustPayEnv(t)
	ctx := context.Background()
	pay, a := e.pending(t)
	tripID := pay.TripID
	if pay.Status != payment.StatusPending || pay.Currency != "EUR" || pay.Version != 1 {
		t.Fatalf("payment %+v", pay)
	}
	// Berlin Alexanderplatz → ~3 km: 250 + 120/km.
	if pay.Amount < 500 || pay.Amount > 700 {
		t.Fatalf("amount %d for ~3 km", pay.Amount)
	}
	u, err := url.Parse(pay.CheckoutURL)
	if err != nil || u.Host != "gw.test" || u.Path != "/checkout/"+pay.ID || u.Query().Get("return") != "http://app.test/?trip="+tripID ||
		u.Query().Get("amount") != fmt.Sprint(pay.Amount) || u.Query().Get("currency") != "EUR" {
		t.Fatalf("checkout url %q", pay.CheckoutURL)
	}
	if ev := e.LastEvent(t, tripID); ev.Type != payment.EventStatus || !strings.Contains(string(ev.Data), `"status":"pending"`) {
		t.Fatalf("last event %s %s", ev.Type, ev.Data)
	}
	n := e.StreamLen(t, tripID)

	t.Run("again returns the same payment", func(t *testing.T) {
		again, created, err := e.pays.Create(ctx, tripID, a, "")
		if err != nil || created || again.ID != pay.ID || again.Amount != pay.Amount {
			t.Fatalf("again: %+v %v %v", again, created, err)
		}
		if e.StreamLen(t, tripID) != n {
			t.Fatal("a repeated create appended an event")
		}
	})
	t.Run("another rider", func(t *testing.T) {
		_, _, err := e.pays.Create(ctx, tripID, trip.Actor{Role: trip.RoleRider, ID: "someone"}, "")
		if !errors.Is(err, trip.ErrForbidden) {
			t.Fatalf("want ErrForbidden, got %v", err)
		}
		if _, err := e.pays.Get(ctx, pay.ID, trip.Actor{Role: trip.RoleRider, ID: "someone"}); !errors.Is(err, trip.ErrForbidden) {
			t.Fatalf("get: want ErrForbidden, got %v", err)
		}
	})
	t.Run("cash trip", func(t *testing.T) {
		snap, ra := e.Create(t, triptest.Ride)
		if _, _, err := e.pays.Create(ctx, snap.Trip.ID, ra, ""); !errors.Is(err, trip.ErrInvalid) {
			t.Fatalf("want ErrInvalid, got %v", err)
		}
	})
	t.Run("cancelled before paying", func(t *testing.T) {
		snap, ra := e.Create(t, delivery)
		if _, err := e.Trips.Cancel(ctx, snap.Trip.ID, ra, "changed my mind"); err != nil {
			t.Fatal(err)
		}
		_, _, err := e.pays.Create(ctx, snap.Trip.ID, ra, "")
		var te *trip.TransitionError
		if !errors.As(err, &te) || te.Current != trip.StatusCancelled {
			t.Fatalf("want a TransitionError from cancelled, got %v", err)
		}
	})
	t.Run("unknown trip and malformed ids", func(t *testing.T) {
		if _, _, err := e.pays.Create(ctx, "t_nope", a, ""); !errors.Is(err, trip.ErrNotFound) {
			t.Fatalf("create: %v", err)
		}
		for _, id := range []string{"", "pay_", "pay_0123456789abcdef_", "pay_0123456789abcdef_t_nope", "x" + pay.ID,
			strings.Replace(pay.ID, pay.ID[4:8], "ffff", 1)} {
			if _, err := e.pays.Get(ctx, id, a); !errors.Is(err, payment.ErrNotFound) {
				t.Fatalf("get %q: %v", id, err)
			}
		}
	})
}

func TestWebhookAppliesOnce(t *testing.T) {
	tests := []struct {
		name     string
		typ      string
		payment  string
		tr       string
		tripType string
		action   string
	}{
		{"success starts dispatch", payment.WebhookSucceeded, payment.StatusSucceeded, trip.StatusRequested, trip.EventStatus, trip.ActPaid},
		{"failure cancels", payment.WebhookFailed, payment.StatusFailed, trip.StatusCancelled, trip.EventCancelled, trip.ActUnpaid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustPayEnv(t)
			ctx := context.Background()
			pay, a := e.pending(t)
			before := e.StreamLen(t, pay.TripID)
			body := eventBody(evtID(), tc.typ, pay, time.Now())
			// Eight concurrent deliveries of one event: one applies.
			var wg sync.WaitGroup
			outcomes := make([]string, 8)
			for i := range outcomes {
				wg.Go(func() {
					r, err := e.deliver(t, body)
					if err != nil {
						t.Error(err)
					}
					outcomes[i] = r.Outcome
				})
			}
			wg.Wait()
			applied := 0
			for _, o := range outcomes {
				switch o {
				case payment.OutcomeApplied:
					applied++
				case payment.OutcomeDuplicate:
				default:
					t.Fatalf("outcome %q", o)
				}
			}
			if applied != 1 {
				t.Fatalf("outcomes %v: want exactly one applied", outcomes)
			}
			got, err := e.pays.Get(ctx, pay.ID, a)
			if err != nil || got.Status != tc.payment || got.Version != 2 {
				t.Fatalf("payment %+v %v", got, err)
			}
			tr, _ := e.Trips.Get(ctx, pay.TripID)
			if tr.Status != tc.tr || tr.Version != 2 { // created, then one transition (payment events do not bump the trip)
				t.Fatalf("trip %s v%d", tr.Status, tr.Version)
			}
			// Exactly two events: payment.status, then the trip's.
			evs, _, err := e.Feed.Read(ctx, trip.Topic(pay.TripID), "", 100)
			if err != nil || int64(len(evs)) != before+2 {
				t.Fatalf("%d events (before %d): %v", len(evs), before, err)
			}
			pe, te := evs[len(evs)-2], evs[len(evs)-1]
			if pe.Type != payment.EventStatus || !strings.Contains(string(pe.Data), `"status":"`+tc.payment+`"`) ||
				!strings.Contains(string(pe.Data), `"version":2`) {
				t.Fatalf("payment event %s %s", pe.Type, pe.Data)
			}
			var td struct {
				Version int64  `json:"version"`
				From    string `json:"from"`
				Status  string `json:"status"`
			}
			if err := json.Unmarshal(te.Data, &td); err != nil || te.Type != tc.tripType || td.Version != tr.Version ||
				td.From != trip.StatusAwaitingPayment || td.Status != tc.tr {
				t.Fatalf("trip event %s %s", te.Type, te.Data)
			}
			if acts := e.hook.actions(pay.TripID); len(acts) != 2 || acts[1] != tc.action+":awaiting_payment>"+tc.tr {
				t.Fatalf("hook saw %v", acts)
			}
			stored, err := e.hooks.Events(ctx, pay.ID)
			if err != nil || len(stored) != 1 || stored[0].Outcome != payment.OutcomeApplied || string(stored[0].Event) != string(body) {
				t.Fatalf("stored %+v %v", stored, err)
			}
		})
	}
}

// TestWebhookOrdering: the first final event wins; later events are stored
// and change nothing, whatever their created time.
func TestWebhookOrdering(t *testing.T) {
	e := mustPayEnv(t)
	ctx := context.Background()
	now := time.Now()
	type step struct {
		typ     string
		created time.Duration // relative to now
		outcome string
		status  string
	}
	tests := []struct {
		name  string
		steps []step
		tr    string
	}{
		{"success then a late, older failure", []step{
			{payment.WebhookSucceeded, 0, payment.OutcomeApplied, payment.StatusSucceeded},
			{payment.WebhookFailed, -time.Minute, payment.OutcomeConflict, payment.StatusSucceeded},
		}, trip.StatusRequested},
		{"failure then a newer success", []step{
			{payment.WebhookFailed, 0, payment.OutcomeApplied, payment.StatusFailed},
			{payment.WebhookSucceeded, time.Minute, payment.OutcomeConflict, payment.StatusFailed},
		}, trip.StatusCancelled},
		{"success twice with two event ids", []step{
			{payment.WebhookSucceeded, 0, payment.OutcomeApplied, payment.StatusSucceeded},
			{payment.WebhookSucceeded, time.Second, payment.OutcomeIgnored, payment.StatusSucceeded},
		}, trip.StatusRequested},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pay, a := e.pending(t)
			var ids []string
			for i, s := range tc.steps {
				id := evtID()
				ids = append(ids, id)
				r, err := e.deliver(t, eventBody(id, s.typ, pay, now.Add(s.created)))
				if err != nil || r.Outcome != s.outcome || r.Status != s.status {
					t.Fatalf("step %d: %+v %v", i, r, err)
				}
			}
			n := e.StreamLen(t, pay.TripID)
			// Redeliver everything in reverse: all duplicates, no change.
			for i := len(ids) - 1; i >= 0; i-- {
				s := tc.steps[i]
				r, err := e.deliver(t, eventBody(ids[i], s.typ, pay, now.Add(s.created)))
				if err != nil || r.Outcome != payment.OutcomeDuplicate {
					t.Fatalf("redelivery %d: %+v %v", i, r, err)
				}
			}
			if e.StreamLen(t, pay.TripID) != n {
				t.Fatal("late events appended to the feed")
			}
			got, _ := e.pays.Get(ctx, pay.ID, a)
			tr, _ := e.Trips.Get(ctx, pay.TripID)
			if got.Status != tc.steps[0].status || got.Version != 2 || tr.Status != tc.tr {
				t.Fatalf("payment %s v%d, trip %s", got.Status, got.Version, tr.Status)
			}
			stored, err := e.hooks.Events(ctx, pay.ID)
			if err != nil || len(stored) != len(tc.steps) {
				t.Fatalf("stored %d events: %v", len(stored), err)
			}
			for i, s := range stored {
				if s.Seq != int64(i+1) || s.Outcome != tc.steps[i].outcome {
					t.Fatalf("stored[%d] = %+v", i, s)
				}
			}
		})
	}
	t.Run("success and failure race: one wins", func(t *testing.T) {
		for range 5 {
			pay, _ := e.pending(t)
			var wg sync.WaitGroup
			res := make([]payment.WebhookResult, 2)
			for i, typ := range []string{payment.WebhookSucceeded, payment.WebhookFailed} {
				wg.Go(func() {
					r, err := e.deliver(t, eventBody(evtID(), typ, pay, now))
					if err != nil {
						t.Error(err)
					}
					res[i] = r
				})
			}
			wg.Wait()
			a, b := res[0].Outcome, res[1].Outcome
			if !(a == payment.OutcomeApplied && b == payment.OutcomeConflict || a == payment.OutcomeConflict && b == payment.OutcomeApplied) {
				t.Fatalf("outcomes %s %s", a, b)
			}
			tr, _ := e.Trips.Get(ctx, pay.TripID)
			want := trip.StatusRequested
			if b == payment.OutcomeApplied {
				want = trip.StatusCancelled
			}
			if tr.Status != want {
				t.Fatalf("trip %s, want %s", tr.Status, want)
			}
		}
	})
	t.Run("amount mismatch stays pending", func(t *testing.T) {
		pay, a := e.pending(t)
		wrong := pay
		wrong.Amount++
		r, err := e.deliver(t, eventBody(evtID(), payment.WebhookSucceeded, wrong, now))
		if err != nil || r.Outcome != payment.OutcomeMismatch || r.Status != payment.StatusPending {
			t.Fatalf("%+v %v", r, err)
		}
		if got, _ := e.pays.Get(ctx, pay.ID, a); got.Status != payment.StatusPending {
			t.Fatalf("payment %s", got.Status)
		}
	})
	t.Run("unknown payment", func(t *testing.T) {
		pay, _ := e.pending(t)
		ghost := pay
		ghost.ID = "pay_0000000000000000_" + pay.TripID
		if _, err := e.deliver(t, eventBody(evtID(), payment.WebhookSucceeded, ghost, now)); !errors.Is(err, payment.ErrNotFound) {
			t.Fatalf("want ErrPaymentNotFound, got %v", err)
		}
	})
	t.Run("trip cancelled while paying", func(t *testing.T) {
		pay, a := e.pending(t)
		if _, err := e.Trips.Cancel(ctx, pay.TripID, a, "too slow"); err != nil {
			t.Fatal(err)
		}
		r, err := e.deliver(t, eventBody(evtID(), payment.WebhookSucceeded, pay, now))
		if err != nil || r.Outcome != payment.OutcomeApplied || r.TripStatus != "" {
			t.Fatalf("%+v %v", r, err)
		}
		if tr, _ := e.Trips.Get(ctx, pay.TripID); tr.Status != trip.StatusCancelled {
			t.Fatalf("trip %s", tr.Status)
		}
	})
	t.Run("signature and body errors", func(t *testing.T) {
		pay, _ := e.pending(t)
		body := eventBody(evtID(), payment.WebhookSucceeded, pay, now)
		if _, err := e.hooks.Webhook(ctx, payment.Sign([]byte("nope"), now, body), body); !errors.Is(err, payment.ErrSignature) {
			t.Fatalf("wrong secret: %v", err)
		}
		bad := []byte(`{"id":"evt_x"}`)
		if _, err := e.hooks.Webhook(ctx, payment.Sign(oldSecret, now, bad), bad); !errors.Is(err, payment.ErrInvalidEvent) {
			t.Fatalf("bad body: %v", err)
		}
		if stored, _ := e.hooks.Events(ctx, pay.ID); len(stored) != 0 {
			t.Fatalf("refused webhooks were stored: %+v", stored)
		}
	})
}

// TestPaymentFinalCached: a final payment is served from memory.
func TestPaymentFinalCached(t *testing.T) {
	e := mustPayEnv(t)
	ctx := context.Background()
	pay, a := e.pending(t)
	if _, err := e.deliver(t, eventBody(evtID(), payment.WebhookSucceeded, pay, time.Now())); err != nil {
		t.Fatal(err)
	}
	if got, err := e.pays.Get(ctx, pay.ID, a); err != nil || got.Status != payment.StatusSucceeded {
		t.Fatalf("%+v %v", got, err)
	}
	// Remove it from Redis: the cached copy still answers, authorization
	// still applies.
	if err := e.RDB.Del(ctx, e.Prefix+"trip:{"+pay.TripID+"}:payment").Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := e.pays.Get(ctx, pay.ID, a); err != nil || got.Status != payment.StatusSucceeded {
		t.Fatalf("cached: %+v %v", got, err)
	}
	if _, err := e.pays.Get(ctx, pay.ID, trip.Actor{Role: trip.RoleRider, ID: "other"}); !errors.Is(err, trip.ErrForbidden) {
		t.Fatalf("cached, other rider: %v", err)
	}
}

// TestPaymentTag checks that the poller's validator agrees with Get
// (ETag, finality, errors) while pending and once final, and that a tag
// read never puts a partial payment in the final cache.
func TestPaymentTag(t *testing.T) {
	e := mustPayEnv(t)
	ctx := context.Background()
	pay, a := e.pending(t)
	same := func(t *testing.T, id string, who trip.Actor) {
		t.Helper()
		got, gerr := e.pays.Get(ctx, id, who)
		tag, final, terr := e.pays.Tag(ctx, id, who)
		if gerr != nil || terr != nil {
			if gerr == nil || terr == nil || gerr.Error() != terr.Error() {
				t.Fatalf("%s as %+v: Get error %v, Tag error %v", id, who, gerr, terr)
			}
			return
		}
		if tag != got.ETag() || final != got.Final() {
			t.Fatalf("%s as %+v: Tag %s final %v, Get %s final %v", id, who, tag, final, got.ETag(), got.Final())
		}
	}
	ops := trip.Actor{Role: trip.RoleOps, ID: "ops"}
	other := trip.Actor{Role: trip.RoleRider, ID: "other"}
	unknown := strings.Replace(pay.ID, pay.TripID, pay.TripID+"x", 1)
	for _, phase := range []string{"pending", "final"} {
		t.Run(phase, func(t *testing.T) {
			if tag, final, err := e.pays.Tag(ctx, pay.ID, a); err != nil || final != (phase == "final") || tag == "" {
				t.Fatalf("rider: %s final %v, %v", tag, final, err)
			}
			if _, _, err := e.pays.Tag(ctx, pay.ID, other); !errors.Is(err, trip.ErrForbidden) {
				t.Fatalf("other rider: %v", err)
			}
			for _, tc := range []struct {
				id  string
				who trip.Actor
			}{{pay.ID, a}, {pay.ID, ops}, {pay.ID, other}, {pay.ID, trip.Actor{}}, {unknown, ops}, {"pay_nope", ops}} {
				same(t, tc.id, tc.who)
			}
		})
		if phase == "pending" {
			// Tag reads of a pending payment cached nothing: the webhook's
			// change shows at once.
			before, _, _ := e.pays.Tag(ctx, pay.ID, a)
			if _, err := e.deliver(t, eventBody(evtID(), payment.WebhookSucceeded, pay, time.Now())); err != nil {
				t.Fatal(err)
			}
			if after, final, _ := e.pays.Tag(ctx, pay.ID, a); after == before || !final {
				t.Fatalf("after the webhook: tag %s (was %s), final %v", after, before, final)
			}
			// Once final, a tag read cached it: Redis is no longer read.
			if err := e.RDB.Del(ctx, e.Prefix+"trip:{"+pay.TripID+"}:payment").Err(); err != nil {
				t.Fatal(err)
			}
			if _, final, err := e.pays.Tag(ctx, pay.ID, a); err != nil || !final {
				t.Fatalf("final payment not cached by Tag: final %v, %v", final, err)
			}
		}
	}
}

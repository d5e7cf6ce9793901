package api

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hextrack/hextrack/api/pollcache"
	"github.com/hextrack/hextrack/payment"

	"github.com/hextrack/hextrack/api/tokens"
)

// paymentRoutes: creating a payment and polling it need a rider (or ops)
// token; the webhook is the gateway's door and carries no token: its
// HMAC signature is its credential.
func (s *Server) paymentRoutes() {
	p := s.payments
	s.e.POST("/v1/trips/:id/payment", guard(p.pay(p.createPayment), tokens.RoleRider, tokens.RoleOps))
	s.e.GET("/v1/payments/:id", guard(p.pay(p.getPayment), tokens.RoleRider, tokens.RoleOps))
	s.e.POST("/v1/webhooks/payments", p.pay(p.paymentWebhook))
}

// paymentHandlers serve a delivery's online payment and the gateway's
// webhook.
type paymentHandlers struct {
	payments Payments
	webhooks Webhooks
	polls    *pollcache.Cache // nil: off
	// trip is tripHandlers.trip: payments are served only with trips.
	trip func(echo.HandlerFunc) echo.HandlerFunc
}

// pay wraps a payment handler: 503 when this server has no payments (and
// what s.trip does).
func (s *paymentHandlers) pay(h echo.HandlerFunc) echo.HandlerFunc {
	th := s.trip(h)
	return func(c echo.Context) error {
		if s.payments == nil || s.webhooks == nil {
			return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "payments are not served by this node"}
		}
		return th(c)
	}
}

type createPaymentRequest struct {
	// ReturnPath is where the gateway sends the customer back: a path on
	// this site ("/?trip=…"). Zero: "/?trip=<id>".
	ReturnPath string `json:"return_path"`
}

// createPayment: 201 with a new payment, 200 with the trip's existing one.
func (s *paymentHandlers) createPayment(c echo.Context) error {
	b, err := readBody(c, 4096)
	if err != nil {
		return err
	}
	var r createPaymentRequest
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := decodeJSON(b, &r); err != nil {
			return err
		}
	}
	id := c.Param("id")
	if r.ReturnPath == "" {
		r.ReturnPath = "/?trip=" + id
	}
	// Only a path on this site: the checkout page must not become an open
	// redirect to anywhere.
	if !strings.HasPrefix(r.ReturnPath, "/") || strings.HasPrefix(r.ReturnPath, "//") ||
		strings.ContainsAny(r.ReturnPath, "\\\r\n\t") || len(r.ReturnPath) > 512 {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: "return_path must be a path on this site, like /?trip=t_1"}
	}
	pay, created, err := s.payments.Create(c.Request().Context(), id, actor(c), c.Scheme()+"://"+c.Request().Host+r.ReturnPath)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderLocation, "/v1/payments/"+pay.ID)
	h.Set("ETag", pay.ETag())
	if !created {
		h.Set("Idempotent-Replayed", "true")
		return c.JSON(http.StatusOK, pay)
	}
	return c.JSON(http.StatusCreated, pay)
}

// getPayment is the polling endpoint: ETag / If-None-Match → 304, and a
// Retry-After of 2 or 3 s (random, so that clients spread out) while the
// payment is pending; none once it is final. A final payment is served
// from memory, a pending one with one Redis read.
func (s *paymentHandlers) getPayment(c echo.Context) error {
	ctx, id, a := c.Request().Context(), c.Param("id"), actor(c)
	h := c.Response().Header()
	trip, _ := payment.TripOf(id)
	k, cache := pollKeyOf(id, a)
	cache = cache && trip != "" && s.polls != nil
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" {
		if cache {
			if etag, final, ok := s.polls.Get(trip, k); ok && etagMatch(inm, etag[0]) {
				paymentHeaders(h, etag, final == 1)
				return c.NoContent(http.StatusNotModified)
			}
		}
		// A poller: compare with the tag alone (same checks, a smaller
		// read) and load the payment only when it changed.
		at := time.Now()
		etag, final, err := s.payments.Tag(ctx, id, a)
		if err != nil {
			return err
		}
		etagV := []string{etag}[:1:1]
		if cache {
			s.polls.Put(trip, k, etagV, b2i(final), at)
		}
		if etagMatch(inm, etag) {
			paymentHeaders(h, etagV, final)
			return c.NoContent(http.StatusNotModified)
		}
	}
	at := time.Now()
	pay, err := s.payments.Get(ctx, id, a)
	if err != nil {
		return err
	}
	etagV := []string{pay.ETag()}[:1:1]
	if cache {
		s.polls.Put(trip, k, etagV, b2i(pay.Final()), at)
	}
	paymentHeaders(h, etagV, pay.Final())
	return c.JSON(http.StatusOK, pay)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// paymentHeaders sets a payment poll's ETag (the header's value, shared:
// see pollHeaders), Cache-Control and, while pending, Retry-After.
func paymentHeaders(h http.Header, etag []string, final bool) {
	h["Etag"] = etag
	h["Cache-Control"] = privateNoCache
	if !final {
		h["Retry-After"] = retryAfter23[rand.IntN(2)][:1:1]
	}
}

// retryAfter23 are the Retry-After values of a pending payment's poll.
var retryAfter23 = [2][]string{{"2"}, {"3"}}

// paymentWebhook verifies and applies a gateway event. 200 for anything
// verified and understood, including a redelivery or an event that no
// longer changes anything (the gateway must stop retrying); 401 for a bad
// signature, 400 for a malformed body, 404 for an unknown payment.
func (s *paymentHandlers) paymentWebhook(c echo.Context) error {
	body, err := readBody(c, payment.MaxWebhookBody)
	if err != nil {
		return err
	}
	r, err := s.webhooks.Webhook(c.Request().Context(), c.Request().Header.Get(payment.SignatureHeader), body)
	if err != nil {
		return err
	}
	if trip, ok := payment.TripOf(r.PaymentID); ok {
		s.polls.Forget(trip) // the payment and its trip may have changed
	}
	return c.JSON(http.StatusOK, r)
}

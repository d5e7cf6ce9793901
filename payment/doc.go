// Package payment is the domain of the online payment of a delivery that
// starts awaiting_payment: the Payment and its statuses (a final status
// never reverts), the payment.status event, the gateway's webhook events
// and their outcomes (applied, duplicate, ignored, conflict, mismatch),
// and the pure rules: the price of a delivery (Price), who may see a
// payment (Payment.CheckAccess), payment IDs (NewID; TripOf reads the
// trip ID inside, so a poll is one read), and webhook signatures
// (HMAC-SHA256 over "<t>.<body>" with any configured secret, constant
// time: Sign, VerifySignature, ParseSignature) and bodies (ParseEvent,
// MaxWebhookBody).
//
// It declares Trips, what payments need of the trip service (trip.Service
// implements it). Creating payments, serving them and applying webhooks
// in Redis is package payment/paymentredis.
//
// payment imports only root packages (trip, geo for their types and
// distance) and never go-redis, even transitively; it never imports
// paymentredis, dispatch, ops, eta, api, echo or gorilla.
package payment

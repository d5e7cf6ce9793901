// Package paymentredis keeps the online payments of deliveries in Redis.
//
// Service (service.go) creates a delivery's one payment (pending, priced
// by payment.Price, with a checkout URL on the configured gateway) and
// serves payment status; final payments are cached in process.
//
// Webhooks (webhooks.go) verifies a gateway event (payment.VerifySignature,
// 5-minute tolerance), stores every verified event, ignores a redelivered
// event ID, and applies the first final event of a pending payment: the
// payment, the trip (→ requested, which starts dispatch, or → cancelled)
// and the payment.status and trip events are one script on the trip's
// slot (scripts.go). A later contrary event is stored with outcome
// "conflict" (for ops to refund) and changes nothing.
//
// Keys "<prefix>trip:{<id>}:payment" and "…:payment:events" share the
// trip's hash tag and TTL.
//
// It reaches trips through payment.Trips (trip.Service implements it); the
// webhook script writes the trip hash fields status, version, updated,
// cancelled_by and cancel_reason, as trip's own transition script does,
// and reports the change through Trips.Changed so the ops index, live ETAs
// and dispatch hear of it.
//
// paymentredis imports payment, trip, feed and internal helpers; it never
// imports dispatch, ops, eta, api, echo or gorilla.
package paymentredis

// Package payment owns the online payment of a delivery that starts
// awaiting_payment. Create gives it one payment (pending, priced from the
// straight-line distance, with a checkout URL on the configured gateway);
// Webhook verifies a gateway event (HMAC-SHA256 over "<t>.<body>" with any
// configured secret, constant time, 5-minute tolerance), stores every
// verified event, ignores a redelivered event ID, and applies the first
// final event of a pending payment: the payment, the trip (→ requested,
// which starts dispatch, or → cancelled) and the payment.status and trip
// events are one script on the trip's slot. A final status never reverts:
// a later contrary event is stored with outcome "conflict" (for ops to
// refund) and changes nothing.
//
// Keys "<prefix>trip:{<id>}:payment" and "…:payment:events" share the
// trip's hash tag and TTL. A payment ID embeds its trip ID, so a poll is
// one read; final payments are cached in process.
//
// It reaches trips through Trips, an interface it declares (tripredis.Service
// implements it); the webhook script writes the trip hash fields status,
// version, updated, cancelled_by and cancel_reason, as trip's own
// transition script does, and reports the change through Trips.Changed so
// the ops index, live ETAs and dispatch hear of it.
//
// payment imports trip, feed, geo and internal helpers; it never imports
// dispatch, ops, eta, api, echo or gorilla.
package payment

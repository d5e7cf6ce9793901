// Package rider owns trips (rides and deliveries): the trip lifecycle state
// machine, rider actions (create with an idempotency key, cancel, change
// dropoff, chat), driver transitions (accept, arrived, pickup, complete,
// decline), share links for viewers, and the live location of a trip's
// driver (conflated trip.location, breadcrumbs). Its Redis code is in
// redis.go.
//
// # Lifecycle
//
//	awaiting_payment ─▶ requested ─▶ driver_assigned ─▶ driver_arrived ─▶ in_progress ─▶ completed
//	        │               │  ▲             │   │              │   │               │
//	        ▼               ▼  └─────────────┴───┴──────────────┘   │               │
//	    cancelled        expired   (driver cancel / decline,        │               │
//	                               ops reassign: back to requested) ▼               ▼
//	                                                            cancelled       cancelled (ops)
//
// Rules is the table of every allowed transition and who may make it. Every
// transition bumps the trip's version and appends exactly one durable event
// to the trip's feed in ONE Lua script (feed.Script), so the state, its
// version and its event never disagree. A forbidden transition is a
// *TransitionError (errors.Is ErrInvalidTransition) carrying the current
// status.
//
// # Keys
//
// Trip hash "<prefix>trip:{<id>}", breadcrumbs list "<prefix>trip:{<id>}:path"
// and share revocations "<prefix>trip:{<id>}:revoked:<share>" share the hash
// tag of the trip's feed "feed:trip:{<id>}", so a transition and its event
// are one atomic script even under Redis Cluster. Every key has a TTL
// (Config.TripTTL, refreshed on every write).
//
// # Drivers
//
// A driver is given to a trip with Assign (used by accept; dispatch will use
// it for offers): the driver is claimed atomically in its own hash first
// (Drivers.Claim), so two trips never get the same driver, then the trip
// moves to driver_assigned; if the trip move fails, the claim is released.
// Completing or cancelling releases the driver.
//
// # Location
//
// Service implements driver.Listener: each applied move of a driver on a trip
// is queued (latest wins per trip, never blocking the ingest path); workers
// store it in the trip hash with a per-trip position sequence (a fix older
// than the stored one is dropped), append a sampled breadcrumb (capped list),
// and publish a live-only trip.location at most once per Config.LocationEvery
// per trip across all nodes (leading edge at once, trailing edge carries the
// latest fix). Run must be running for this.
//
// # Payments
//
// Payments (payment.go, payment_webhook.go, payment_redis.go) is the online
// payment of a delivery that starts awaiting_payment: Create gives it one
// payment (pending, priced from the straight-line distance, with a checkout
// URL on the configured gateway); Webhook verifies a gateway event
// (HMAC-SHA256 over "<t>.<body>" with any configured secret, constant
// time, 5-minute tolerance), stores every verified event, ignores a
// redelivered event ID, and applies the first final event of a pending
// payment: the payment, the trip (→ requested, which starts dispatch, or
// → cancelled) and the payment.status and trip events are one script on
// the trip's slot. A final status never reverts: a later contrary event is
// stored with outcome "conflict" (for ops to refund) and changes nothing.
// Keys "<prefix>trip:{<id>}:payment" and "…:payment:events" share the
// trip's hash tag and TTL. A payment ID embeds its trip ID, so a poll is
// one read; final payments are cached in process.
//
// # ETA
//
// LiveETA (eta.go) keeps a trip's ETA current: to the pickup while
// driver_assigned or driver_arrived, to the dropoff while in_progress. It is
// a driver.Listener that only queues moves (latest wins per trip, bounded;
// a full queue drops and counts); workers estimate through a Router (the
// eta engine, adapted in cmd: rider does not import eta) at most once per
// ETAConfig.Every per trip across all nodes (the time of the last estimate
// in the trip hash, read and set by one script with the fields the estimate
// needs; a gated move waits for the gate unless an estimate from a newer
// fix was made meanwhile). One script stores the estimate in the trip
// hash (so snapshots carry it as "eta", atomically with the feed position)
// and appends the durable trip.eta {eta_s, arrive_at, distance_m,
// route_version, leg} when the leg or its target changed, or
// ETAConfig.ShouldEmit (eta.ShouldEmit: ≥ 15 s or ≥ 10%) says the change
// matters. Pickup and dropoff changes are estimated at once. The first ETA
// of each leg is the promise: on completion ETAConfig.Accuracy gets the
// actual duration of each leg against it (the pickup leg ends at
// driver_arrived; a return to requested forgets the pickup promise, a new
// dropoff the dropoff one).
//
// # Ops
//
// Ops (ops.go, ops_redis.go) is the ops dashboard's cluster-wide view.
// Trips: after every change (create, transition, address change, payment;
// from notify, after the trip's own script) the trip is moved in an ops
// index under the hash tag {ops-trips}: a sorted set of all trips and one
// per status (score: last change), and a record "event id|status|pickup
// r9" per trip. A record only moves to a newer event ID, so changes indexed
// out of order by two nodes end right; a failed index write is logged and
// caught up at the trip's next change. Counts are one ZCOUNT per status;
// entries older than TripTTL are trimmed a few per write. Drivers: one read
// of the position index's region records (geo.Index's documented layout),
// O(fleet), reused for OpsConfig.FleetEvery per node. Viewports and the
// supply map follow the H3 hierarchy: a driver is in a cell when its r9
// cell descends from it.
//
// rider imports feed, geo and driver (for driver.Move); it never imports
// eta, api, web, echo or gorilla.
package rider

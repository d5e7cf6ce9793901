// Package trip owns trips (rides and deliveries) and their Redis hash: the
// lifecycle state machine and its actions (Service: create with an
// idempotency key, accept/assign, cancel, change dropoff, the driver
// transitions), reads and access checks (Store), share links for viewers
// (Shares), chat (Chat), the live location of a trip's driver (Tracker:
// conflated trip.location, breadcrumbs) and the storage of live ETAs
// (ETAs; live.Service computes them). Its Redis code is in redis.go and
// eta.go.
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
// to the trip's feed in ONE Lua script (feedredis.Script), so the state, its
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
// A driver is given to a trip with Assign (used by accept): the driver is claimed atomically in its own hash first
// (Drivers.Claim), so two trips never get the same driver, then the trip
// moves to driver_assigned; if the trip move fails, the claim is released.
// Completing or cancelling releases the driver.
//
// # Location
//
// Tracker implements driver.Listener: each applied move of a driver on a trip
// is queued (latest wins per trip, never blocking the ingest path); workers
// store it in the trip hash with a per-trip position sequence (a fix older
// than the stored one is dropped), append a sampled breadcrumb (capped list),
// and publish a live-only trip.location at most once per Config.LocationEvery
// per trip across all nodes (leading edge at once, trailing edge carries the
// latest fix). Run must be running for this.
//
// # Changes
//
// Every committed change (create, transition, address change, and the
// payment package's payment transitions through Service.Changed) is told
// to the Observers (the ops index, live ETAs) and then to the Hook
// (dispatch, which may also veto an accept).
//
// # ETA storage
//
// ETAs keeps what live.Service computes in the trip hash: the estimate gate
// (the time of the last estimate, read and set by one script with the
// fields the estimate needs), the estimate (the snapshot's "eta",
// atomically with the feed position) with the durable trip.eta when asked,
// and the first promise of each leg. A transition to requested forgets the
// pickup leg, driver_arrived records its end, a new dropoff forgets the
// dropoff promise (etaPairs, in the transition's own script).
//
// trip imports feed, geo, driver (for driver.Move) and internal helpers;
// it never imports dispatch, payment, ops, eta, api, web, echo or gorilla.
package trip

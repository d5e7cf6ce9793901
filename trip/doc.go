// Package trip is the trip domain (rides and deliveries) in plain Go: the
// trip and its snapshot, places, locations and breadcrumbs, share links,
// chat messages and stored ETAs as types; the lifecycle state machine
// (Rules, Allowed, Owns, CanSee); IDs and If-Match versions (ValidID,
// ParseVersion); the errors every layer maps (ErrInvalid, ErrNotFound,
// *TransitionError, *VersionError, ...); and the Observer and Hook
// interfaces told of every committed change. Redis storage and the
// lifecycle's actions are in trip/tripredis.
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
// to the trip's feed (tripredis does both in one script), so the state,
// its version and its event never disagree. A forbidden transition is a
// *TransitionError (errors.Is ErrInvalidTransition) carrying the current
// status.
//
// # Stops
//
// A trip's Stops are ordered pickups and drops (a ride: its pickup and
// dropoff as s1 and s2); each moves pending → arriving → arrived →
// completed | failed | skipped. The list's rules (stoplist.go) are plain
// functions over []Stop; tripredis commits their results conditional on
// the version it read. A stop action that moves the trip appends its
// stop.status and the trip's one trip.status; the ride's pickup and
// complete append only trip.status, carrying the stop's change.
//
// # Changes
//
// Every committed change (create, transition, address change, and the
// payment package's payment transitions) is told to the Observers (the ops
// index, live ETAs) and then to the Hook (dispatch, which may also veto an
// accept), as a Change.
//
// trip imports no other hextrack package and never go-redis; it never
// imports dispatch, payment, ops, eta, api, web, echo or gorilla.
package trip

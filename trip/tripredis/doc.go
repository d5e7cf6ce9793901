// Package tripredis keeps trips (the types and rules of package trip) in
// Redis: the lifecycle's actions (Service: create with an idempotency key,
// accept/assign, cancel, change dropoff, the driver transitions; commits:
// the transition script, observers and hook), reads and access checks
// (Store), share links for viewers (Shares), chat (Chat), the live
// location of a trip's driver (Tracker: conflated trip.location,
// breadcrumbs) and the storage of live ETAs (ETAs; live.Service computes
// them). The scripts and hash decoding are in redis.go and eta.go.
//
// Every transition bumps the trip's version and appends exactly one
// durable event to the trip's feed in ONE Lua script (feedredis.Script).
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
// latest fix). Run must be running for this. When the feed archives
// (Feed.ArchiveGrace > 0), every accepted fix of the conflated moves (not
// only the newest) is appended to the trip's trail record stream
// (feedredis.RecordTrail) by the same script, the trip marked first.
//
// # Changes
//
// Every committed change (create, transition, address change, and the
// payment package's payment transitions through Service.Changed) is told
// to the trip.Observers (the ops index, live ETAs) and then to the
// trip.Hook (dispatch, which may also veto an accept).
//
// # Stops
//
// Stops (stops.go, stopbase.go, stopguard.go, pin.go) changes a trip's
// stops: each change reads the trip, applies one of trip's list rules and
// commits with stopScript (stopcommit.go) only if the version is still the
// one read (If-Match, or a retry), writing the stops, the version and the
// stop.* events at once. A completion checks the geotag, the proofs
// (trip.ProofFiles) and the PIN (its wrong attempts counted in one
// script). StopWatch, a driver.Listener, fires stop.approaching and
// stop.arrived once per stop: the event's script sets a flag field.
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
// tripredis imports trip, feed, driver (for driver.Move and
// driver.Estimator), geo, go-redis and internal helpers; it never imports
// dispatch, payment, ops, eta, api, web, echo or gorilla.
package tripredis

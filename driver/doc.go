// Package driver is the drivers' domain: ping decoding (the kept
// internal/jsonscan fast path) and validation, GPS plausibility, driver
// ids, the types of a driver's state, of an ingest's result and of a nearby
// search, and its sentinel errors. The Listener interface is how a move is
// told to the rest of the system (trip location fan-out, speed learning,
// arrivals, live ETAs); listeners must not block.
//
// The Redis-backed service (ingest, status, claims, reads) is
// driver/driverredis; this package talks to no store and must not import
// go-redis, even through another package.
//
// driver imports geo (points and cells) and internal/jsonscan only; it
// never imports driverredis, api, trip, feed, echo or gorilla.
package driver

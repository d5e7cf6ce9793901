// Package driver owns drivers: ping decoding and validation, GPS plausibility,
// location ingest (idempotent by seq, applied in ts order, newest fix wins),
// driver state and status, and claims of a driver by a trip. Its Redis code is
// in redis.go; the spatial index it feeds is georedis.Index.
//
// Keys: hash drv:{<id>} (state) and sorted set drv:{<id>}:seqs (recently seen
// sequence numbers, bounded, with a TTL) share the driver's hash tag, so one
// Lua script applies a whole batch atomically.
//
// driver imports geo, ratelimit (its ping bucket) and internal/jsonscan (its
// JSON fast path) only; it never imports api, trip, feed, echo or gorilla.
// Listeners (trip location fan-out, speed learning) are told about moves
// through the small Listener interface and must not block.
package driver

// Package ratelimit is hextrack's one token bucket kept in Redis: limits
// that must hold across every node (actions per token subject, pings per
// driver).
//
// A bucket holds up to burst tokens and refills at rate tokens per second;
// a request costs some tokens, and a bucket that cannot pay refuses without
// taking any and says how long until it could (the caller's Retry-After).
// The state is one hash per key (fields t: tokens, ts: last refill, ms) that
// expires once it would be full again, so idle keys cost nothing. Each key is
// one Redis key: under Cluster a caller hash-tags it ("rl:{rider:r1}") so it
// can sit in one script beside other keys of the same slot.
//
// There are two ways in, one bucket:
//
//   - Bucket.Take charges a bucket by itself (one EVALSHA).
//   - Lua is the same bucket as a Lua function, hx_take, for scripts that
//     must charge the bucket and do their work atomically in one round trip
//     (driver's ingest script: a refused batch changes nothing).
//
// Why not go-redis/redis_rate (GCRA on go-redis v9, which the embedded
// miniredis also runs): its script cannot be composed into another script,
// so the driver's ping ingest would pay a second round trip per batch and
// lose its all-or-nothing step, or keep a bucket of its own: two buckets
// again. The bucket here is twelve lines of Lua.
//
// The clock is the caller's (ms since the epoch), not Redis TIME: nodes
// are NTP-synced, and a node a little ahead only refills its callers' buckets
// a little early. The Lua runs on Redis 7 and on miniredis (no Redis-only
// libraries).
//
// ratelimit imports only go-redis; it knows nothing of HTTP or of what the
// keys name.
package ratelimit

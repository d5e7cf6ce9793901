// Package driverredis is the driver service kept in Redis: location ingest
// (idempotent by seq, applied in ts order, newest fix wins, charged to the
// driver's ping bucket in the same script), driver status, and claims of a
// driver by a trip, ops' suspensions of drivers (suspend.go: kept without
// a TTL, read by the status, claim and ingest scripts, audited), and the
// reads of a driver's state and of nearby drivers (through geo.Index, which
// it keeps up to date).
//
// Keys: hash drv:{<id>} (state), sorted set drv:{<id>}:seqs (recently seen
// sequence numbers, bounded, with a TTL) and hash drv:{<id>}:rl (the ping
// bucket, ratelimit's hx_take) share the driver's hash tag, so one Lua
// script charges and applies a whole batch atomically; so do the
// suspension hash drv:{<id>}:susp and its audit stream drv:{<id>}:susplog.
// The sorted set drivers:suspended lists suspended drivers.
//
// The rules (validation, plausibility, the types) are package driver's;
// this package imports driver, geo, ratelimit (its Lua), internal/autopipe
// and go-redis, and never api, trip, feed, echo or gorilla. Listeners are
// told about every applied move (driver.Listener) and must not block.
package driverredis

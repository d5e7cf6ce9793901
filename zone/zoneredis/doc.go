// Package zoneredis keeps zones and drivers' zone state in Redis so every
// node agrees:
//
//   - Store: zones in one hash (ops CRUD), a version counter bumped by
//     every change; each node keeps a zone.Index in memory and rebuilds it
//     when the version moves (checked every Config.Reload and after its own
//     changes).
//   - Tracker: a driver.Listener. On the ingest path it only asks the
//     in-memory index whether the move is near a zone (Index.Near) and
//     queues it (conflated per driver: the first start cell, the newest
//     fix); its workers load the driver's zone state, run zone.Step and
//     write the new state and the events in one script that compares the
//     state it read (another node's change makes it retry), so the events
//     of a driver whose pings land on different nodes stay right and in
//     order.
//
// Events (zone.entered, zone.exited, zone.dwell) are durable feed events
// on the driver's zone topic "driverzones:<driver id>", appended by the
// same script that writes the state (one hash tag: the driver id), then
// copied to the zone's topic "zone:<zone id>" with the driver topic's event
// id as the idempotency key (ops read that one; a node dying between the
// two loses the copy, never the driver-topic event). Drivers inside a zone
// are kept in a per-zone sorted set (who is inside, checked against the
// states when read) and an "active" set, both written when events happen;
// the active set's score is the last fix at the last event, a lower bound
// Sweep corrects: it exits drivers whose state's last fix is older than
// Config.Stale (the same window the position index uses); any node may
// run it. A driver set offline (DriverOffline) or moving while offline is
// exited at once. Each node caches the raw state it last saw per driver:
// the step script compares it and answers the current one on a conflict,
// so a batch costs one round trip while a driver stays on one node. A
// step that moves only the last fix (no event, the same zones) is not
// written until flushEvery (10 s, at most a third of Stale) has passed
// since the node's last write: the next step with an event writes the
// newest state. Another node stepping the driver in between starts from
// the stored, older last fix (its segment is longer; the order of events
// is still the stored state's). make bench's zones row: a write per ping
// batch cost 35 % of ingest throughput, 23 % without the quiet writes.
//
// It imports zone, driver (Listener, Move), feed and go-redis; never api or
// echo.
package zoneredis

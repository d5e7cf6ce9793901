// Package sink is a webhook receiver for tests and demos (`drivesim
// sink`): it verifies each delivery's Standard Webhooks signature
// (webhook-id, webhook-timestamp, webhook-signature: v1,<base64
// HMAC-SHA256 of "id.timestamp.body"> with the endpoint's whsec_ secret,
// through github.com/standard-webhooks/standard-webhooks/libraries/go),
// checks each trip's events arrive in order, and can misbehave on purpose:
// answer 500 to a share of requests (Config.Fail), stall a share
// (Config.Stall, Config.StallShare), or answer 500 to everything for a
// while (Config.FailFor).
//
// A delivery's body is the feed's event envelope (id, type, topic or
// trip, ts, data); its webhook-id is the event id, bare or qualified by
// its topic ("trip:t_1/1800000000000-3"), anything else is counted as a
// mismatch (and taken). Only deliveries it answered 2xx count as delivered;
// those go to an eventcheck.Checker per trip (keyed by trip id, or by
// topic for events of no trip), which finds:
//
//   - duplicates: a delivery of an event id already delivered (at least
//     once: a retry whose first answer was lost — a stalled request the
//     sender gave up on — is one);
//   - out of order: a delivery whose event id is below one of the same
//     trip delivered before (a redelivery is a duplicate, not a reorder);
//   - gaps: with a History (GET /v1/trips/{id}/events), every event of the
//     trip's history whose type matches Config.Types that was never
//     delivered — Report is a final report, so an event still in flight
//     counts: report once deliveries have drained.
//
// Ordering is the feed's event id order (<ms>-<seq>, eventcheck.ParseID).
// It speaks only HTTP (the client package for the history); it must not
// import hextrack server packages.
package sink

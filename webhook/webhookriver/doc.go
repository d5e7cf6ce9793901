// Package webhookriver delivers outbound webhooks with River
// (github.com/riverqueue/river): durable jobs, retries with backoff and
// the rescue of jobs a dead node left running come from River, on the
// archive's own database (riverpgxv5 on PostgreSQL, riversqlite on
// SQLite; River's tables created by rivermigrate at start and by
// `hextrack migrate`). The queues and the log are webhook/webhooksql's.
//
// # From the archive to the queues
//
// The archive pipeline (archive/archiveredis) brings each durable event
// into the archive's events table once, each topic's in order. One node
// at a time (a lease row, 15 s) routes: it reads events not yet routed
// (events.webhook_routed = 0, oldest ID first), queues each trip event
// (topic "trip:<id>") for every enabled endpoint whose filter matches and
// that existed at the event's time — one row per (endpoint, event),
// unique, so routing again is harmless — and marks the events routed, in
// one transaction. Then it inserts the drain job of every endpoint it
// queued deliveries for.
//
// # Draining an endpoint: claims, batches, per-trip order
//
// A queue is (endpoint, trip topic); its head is its oldest pending
// delivery, and only a head is sent. Each delivery has a next-attempt
// time (next_attempt_us, migration 00007): 0 when queued or replayed, the
// end of a claim while a node sends it, the retry's time after a failed
// attempt. River runs one drain job per endpoint (unique by endpoint
// among waiting and running jobs): its worker runs up to 4 lanes; a lane
// claims a batch of the endpoint's due heads (Config.InFlight/4, oldest
// first, at most one per trip; Claim sets their next attempt to now +
// Config.Claim in the same statement, so no other lane or node takes
// them), sends them at once (keep-alive HTTP), records every outcome and
// the endpoint's failure run in one statement (PostgreSQL; one
// transaction on SQLite), and claims again until nothing is due. So a
// delivery costs a share of three statements, not a River job; a trip's
// later event is never sent to an endpoint before the earlier one
// succeeded or was dead-lettered (it is not a head before), while
// different trips and endpoints go in parallel (Config.Workers endpoints
// per node). A job hands over (snoozes, available at once behind the
// jobs waiting) after 5 s: with more endpoints than workers, each gets
// its turn.
//
// When nothing is due, a retry due within Config.Linger (2 s) is waited
// for in the job, which looks for new deliveries every Config.Interval
// meanwhile; a later one gets a drain job scheduled at its time (unique
// by endpoint and time). A drain job inserted while another is live is
// skipped by River; the Runner then inserts it again at every step until
// one is in, since the live one may be ending after its last look. If a
// node dies, River gives its running job to another after
// Config.RescueAfter, and the deliveries it held are due again when their
// claim ends; the lease holder's sweep (every Config.Sweep) inserts the
// drain job of every endpoint with pending deliveries.
//
// # Retries, dead letters, pauses
//
// A failed attempt leaves its delivery pending with a next attempt
// RetryBase·2^(failures-1) later, capped at MaxBackoff, drawn in [d/2, d]
// (jitter: receivers that come back are not hit by every queue at once).
// Once a delivery has been failing for DeadAfter (24 h) from its first
// attempt, its next failure dead-letters it (state dead, kept in the
// log) and the trip's next event goes. An endpoint whose every attempt
// failed for PauseAfter (1 h; any success ends the run) is paused: its
// deliveries stay queued (Claim takes nothing of a paused or disabled
// endpoint), its status says "paused", hextrack_webhook_endpoints_paused
// counts it, and enabling it again (PATCH enabled=true) resumes it. So a
// receiver that is down pauses before its deliveries die; one that
// refuses a single event kills that event only, while others succeed.
//
// At least once: a delivery whose success could not be recorded (the
// database failed, the node died) is sent again when its claim ends,
// with the same webhook-id. A replay (from an event ID or a time) queues
// the endpoint's matching archived events again, pending with
// generation+1 and due at once; an attempt of the old generation still in
// flight is not recorded over it.
//
// # Throughput
//
// BenchmarkFanout archives 1,000 events/s of 1,000 trips for 5 s
// (appended to a PostgreSQL archive directly: the archive pipeline is not
// in it) for 10 local receivers answering 204, and reports deliveries/s
// from the first event to the last delivery, the p50/p99 from event time
// to delivery, and duplicates. Measured on the development machine (2
// cores) while other work kept its load average at 8-30:
//
//   - the job-per-head design before this one: ~100-130 deliveries/s at
//     200 events/s (a fifth of the load above);
//   - this design, first cut (one batch of 32 per endpoint, a window
//     over the whole backlog per claim, 5 round trips per record):
//     680-1,040 deliveries/s at 200 events/s, 640 at 1,000 events/s;
//   - as it is (lanes, the head probe, one-statement records, 32 idle
//     database connections): 1,118-1,336 deliveries/s at 1,000 events/s,
//     p50 15-20 s, p99 29-39 s, i.e. still 7-9x short of the 10,000/s
//     offered on that machine. 0-854 duplicates: the bench's sender
//     times out at 1 s, and an overloaded receiver's answer can come
//     later (at least once sends it again).
//
// Where the time went (per-phase timings and a CPU profile of the
// benchmark): with database round trips of 10-40 ms on the loaded
// machine, a claim took 60-70 ms, a record 70 ms, a batch's sends 80-150
// ms; the benchmark's process (senders, receivers, River, routing) used
// 0.3 of a core, half of it in HTTP, the rest of the time being waits for
// PostgreSQL and for the cores other work held. Earlier cuts were dominated by a fresh table's plans (the
// head check and the record's join scanned an endpoint's whole backlog
// per row until ANALYZE; the queries are now written so that they
// cannot), by new PostgreSQL connections per query (database/sql kept 2
// idle) and by HTTP dials (16 idle connections per host). The make bench
// row "8 events out" measures the whole path (API, archive pipeline,
// routing, delivery); see bench/results.json. The target (p99 <= 1 s at
// 10,000 deliveries/s) is not met on this machine, and the row says why
// in extra.cpu_us_per_delivery: the CPU every process of the path spent
// per delivery. Measured (load average 15, so high by some margin):
// hextrack 189 µs (posting, archiving, routing, signing and sending),
// PostgreSQL 199 µs (a delivery is a queue row inserted, claimed and
// recorded: three row versions, each in four indexes), the bench's
// receivers and posting 85 µs, Redis 22 µs: about 500 µs, so 10,000
// deliveries/s would take about 5 cores, and 2 cores top out near
// 4,000/s before any latency target. Even the receivers' share alone
// (HTTP/1.1 per event, Standard Webhooks' one event per request) is
// close to a core at that rate.
//
// Metrics: hextrack_webhook_deliveries_total{outcome="delivered|failed|dead"},
// hextrack_webhook_delivery_latency_seconds (event time to success),
// hextrack_webhook_endpoints_paused, hextrack_webhook_events_routed_total.
//
// webhookriver imports webhook, feed, River and pgx; it declares the Store
// and Sender it needs and never imports webhooksql, sqlstore, api or a
// Redis client.
package webhookriver

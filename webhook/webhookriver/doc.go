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
// one transaction. Then it inserts the River job of the head of every
// queue it touched.
//
// # Per-trip order: one job per queue head
//
// A queue is (endpoint, trip topic); its head is its oldest pending
// delivery. Only a head is sent: a job's worker checks that its delivery
// is still pending at the job's generation and still the head, else it
// queues the real head and ends. When the head is delivered or
// dead-lettered the worker inserts the job of the next head. So a trip's
// later event is never sent to an endpoint before the earlier one
// succeeded or was dead-lettered, while different trips and endpoints go
// in parallel (Config.Workers per node). Jobs are unique by their args
// (endpoint, topic, event, generation) among waiting and running jobs, so
// a head never has two. If a node dies between recording a delivery and
// inserting its successor's job, the lease holder's sweep (every
// Config.Sweep) queues every head again; River gives a job left running
// by a dead node to another after Config.RescueAfter.
//
// # Retries, dead letters, pauses
//
// A failed attempt is returned to River as an error; River retries it
// after RetryBase·2^(failures-1), capped at MaxBackoff, drawn in [d/2, d].
// Once a delivery has been failing for DeadAfter (24 h) from its first
// attempt, its next failure dead-letters it (state dead, kept in the
// log) and the trip's next event goes. An endpoint whose every attempt
// failed for PauseAfter (1 h; any success ends the run) is paused: its
// deliveries stay queued, its status says "paused",
// hextrack_webhook_endpoints_paused counts it, and enabling it again
// (PATCH enabled=true) resumes it. So a receiver that is down pauses
// before its deliveries die; one that refuses a single event kills that
// event only, while others succeed.
//
// At least once: a delivery whose success could not be recorded (the
// database failed, the node died) is sent again, with the same
// webhook-id. A replay (from an event ID or a time) queues the endpoint's
// matching archived events again, pending with generation+1, so running
// or waiting jobs of the old generation do nothing.
//
// # Throughput
//
// Each delivery is one River job and about eight statements (River's
// fetch and completion, reading the delivery, endpoint and head,
// recording the attempt, inserting the next head's job), and a trip's
// queue advances one job at a time. BenchmarkFanout measures it (200
// events/s of 100 trips to 10 local endpoints, PostgreSQL): on the
// development machine under a load average of ~27 on 2 cores it gave
// ~100-130 deliveries/s, far below the 1,000 events/s to 10
// endpoints. The next step, if a quiet machine confirms it, is a job per
// queue that drains it (several heads per job, no River round trip per
// event), keeping the one-worker-per-queue rule.
//
// Metrics: hextrack_webhook_deliveries_total{outcome="delivered|failed|dead"},
// hextrack_webhook_delivery_latency_seconds (event time to success),
// hextrack_webhook_endpoints_paused, hextrack_webhook_events_routed_total.
//
// webhookriver imports webhook, feed, River and pgx; it declares the Store
// and Sender it needs and never imports webhooksql, sqlstore, api or a
// Redis client.
package webhookriver

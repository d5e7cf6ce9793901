// Package archive is hextrack's system of record: the record types that
// outlive Redis (durable feed events, trips, GPS trails, the payments
// ledger, driver status history and the shifts derived from it, backend
// services' API keys, hashed), the
// queries over them with their validation and bounds, the opaque cursor of
// newest-first lists, and the sentinel errors api maps to statuses.
// Package archive/sqlstore stores them in PostgreSQL or SQLite.
//
// archive imports no other hextrack package (it keeps its own copies of
// the few rules it needs: the ID alphabet of trip.ValidID, the event ID
// form of feed.ParseID, the statuses "offline" and "completed"), so the
// event pipeline, api and cmd can all use it. It must never import feed,
// trip, driver, payment, api or any Redis client.
//
// # Semantics
//
// Every write is idempotent: the pipeline delivers at least once, so a
// record may arrive twice. Events are keyed by (topic, event ID), trail
// points by (trip, trail seq: the trip's own counter of accepted fixes, in
// arrival order; order by ts_us for measurement order), ledger entries by
// an ID their writer chooses, status changes by (driver, time, status): a second copy is
// dropped. A trip is upserted at every change and a copy older than the
// stored version is ignored. Nothing in the ledger is ever updated.
//
// Lists of trips are newest first by (created time, trip ID) with a keyset
// Cursor: under concurrent inserts a client paging through never sees a
// trip twice and never misses one that existed when it started, because
// the key of a trip never changes. Every time is stored in unix
// microseconds (UTC), so what is read back equals what was written,
// truncated to the microsecond.
//
// # Schema (archive/sqlstore/migrations, goose)
//
//	events        PK (topic, id_ms, id_seq) · type · trip_id · ts_us · data
//	              idx (ts_us)
//	trips         PK id · kind · rider_id · driver_id · status · version · created_us · updated_us ·
//	              ended_us NULL · fare · currency · distance_m · snapshot
//	              idx (created_us, id), (rider_id, …), (driver_id, …), (status, created_us, id)
//	trail_points  PK (trip_id, seq) · driver_id · lat · lng · ts_us · accuracy_m · speed_mps · heading
//	              idx (ts_us)
//	ledger        PK id · kind · payment_id · trip_id · amount · currency · status · outcome · at_us · body
//	              idx (trip_id, at_us), (payment_id, at_us)
//	driver_status PK (driver_id, at_us, status) · trip_id
//	              idx (at_us)
//	nats_export   PK name · holder · until_us   (the NATS export's lease; 00004 also adds
//	              events.nats_exported and the partial idx (id_ms, id_seq, topic) WHERE it is 0:
//	              archive/natsexport's outbox)
//	api_keys      PK id · name · hash (hex SHA-256 of the secret) · scopes (comma-separated) ·
//	              created_us · expires_us NULL · revoked_us NULL · last_used_us NULL
//	              idx (created_us, id)   (00005: package apikey's keys)
//
// Times are BIGINT unix microseconds (*_us) and JSON is TEXT on both
// databases, so the one migration file is the same SQL for both (no
// per-dialect file was needed), keyset comparisons are exact integers, and
// stored JSON (event data, snapshots, webhook bodies) is served back byte
// for byte — PostgreSQL's jsonb would reorder keys. Event IDs are kept as
// two integers so a topic's events sort as the feed's do ("…-10" after
// "…-9"). Retention (Prune) deletes old events, trail points and status
// changes; trips and the ledger are the record and are kept.
//
// # Choices
//
//   - PostgreSQL through pgx v5's database/sql driver (pgx/v5/stdlib): one
//     code path for both databases; batches are multi-row INSERT … ON
//     CONFLICT, which both accept, rather than COPY (which cannot skip
//     duplicates without a staging table).
//   - SQLite through mattn/go-sqlite3 (cgo): hextrack already needs cgo
//     for h3, so a pure-Go driver buys no portability; the C library is
//     faster at batch inserts, is not slowed by the race detector in
//     tests, and adds no dependency, where modernc.org/sqlite brings a
//     translated libc and pins its own golang.org/x/sys. The cost is a
//     one-time C compile (cached by go build).
//   - pressly/goose v3 with the migrations embedded (embed.FS), run through
//     its Provider (no package globals) at Open and by sqlstore.Migrate;
//     on PostgreSQL an advisory lock lets nodes that start together
//     migrate one at a time.
package archive

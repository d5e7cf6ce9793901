// Package archiveredis is the durable event pipeline: it brings every
// durable feed event (the Redis Streams of feed/feedredis), and the
// records kept beside them (trip trails, payment webhook events, driver
// status changes), into the archive at least once, in per-topic order,
// without depending on any one node, on a single Redis or a Redis Cluster.
// The archive's writes are idempotent by each record's key, so "at least
// once" archives each record exactly once.
//
// # Keys
//
//	<prefix>archive:dirty:{s<N>}   sorted set: topics that may hold unarchived entries (N = feedredis.DirtyShard)
//	<prefix>archive:lease:{s<N>}   the node that drains shard N (SET NX PX, renewed)
//	<prefix>archive:nodes          sorted set: live pipeline nodes, scored by when their registration ends
//	<prefix>archive:lease:prune    the node running this period's retention job
//	feed:<topic's key>:archived    the ID of the topic's last archived event (in the topic's slot)
//	feed:<topic's key>:rec:<kind>  a record stream of the topic (feedredis.RecordKey, in the topic's slot)
//	feed:<topic's key>:archived:<kind>  its cursor
//
// # Record streams
//
// Some records are not feed events; each is appended, by the domain script
// that makes it, to a record stream of a topic, in the topic's slot, after
// the writer marked the topic (feedredis.Publisher.Mark, the same mark a
// durable publish writes). The pipeline drains a topic's feed stream and
// its record streams together (one read script per topic), each with its
// own cursor, and deletes a record stream's entries once archived.
//
//	trip:<id>   trail     every accepted fix of the trip's driver (trip/tripredis's
//	                      location script): seq (the trip's trail counter, 1, 2, …),
//	                      drv, ts ms, lat, lng, acc, spd, hdg → trail_points (trip, seq)
//	trip:<id>   webhooks  every webhook event paymentredis stored (a redelivered event ID
//	                      is not stored twice): seq, pay, amount, currency, status after
//	                      it, outcome, at ms, body → ledger "<payment>:w<seq>"
//	driver:<id> status    every status change (driverredis Claims: SetStatus, Claim,
//	                      Release): status, trip → driver_status (driver, the entry
//	                      ID's time in µs + its sequence, status)
//
// payment.status feed events also become ledger entries, keyed
// "<payment>:v<version>" (the payment's state at each version). Every key
// is a function of the entry, never of when it was read, so a re-read batch
// is the same rows.
//
// # Why consumer groups are not used
//
// A consumer group reads one stream; with a stream per topic, a consumer
// would still need to find the streams with new entries, and a Lua script
// under Cluster may touch only the keys of one slot, so hx_publish cannot
// append to a shared outbox stream atomically with the topic's stream. The
// stream itself stays the outbox: what is added is an index of the topics
// to look at, and a per-topic cursor beside the stream.
//
// # Why nothing is lost
//
// The invariant is: every topic whose stream holds an event after its
// cursor is in the dirty index, or has a publish still allowed to land
// before its mark's deadline.
//
//   - Before every durable publish (feedredis.Config.ArchiveMarks), the
//     publisher marks the topic: ZADD GT with score = the Redis time of the
//     shard's master + ArchiveGrace (15 s). The mark comes first, so a node
//     dying between mark and publish leaves a mark with nothing behind it,
//     which a consumer drains (finds nothing) and drops. A mark that cannot
//     be written fails the publish.
//   - A consumer reads a shard's topics with their scores and the same
//     master's time T in one script; for each topic it reads the stream
//     after the cursor (XRANGE COUNT Batch), writes the events to the
//     archive, then advances the cursor (compare-and-set, forward only),
//     until the stream is drained (read shorter than Batch). Then it removes the topic only if its
//     score was below T (every publish announced by that mark had landed
//     before the stream was read: it was read to the end after them) and
//     is unchanged (a script compares it): a publish marked in the meantime
//     raised the score (GT, later time) and keeps the topic dirty.
//   - A crash between the archive write and the cursor advance re-reads the
//     batch, which the archive absorbs. A cursor never moves back, so a
//     consumer that lost its lease and still runs cannot undo progress;
//     two consumers at once only write duplicates.
//
// The one assumption is the grace: a publish must run within ArchiveGrace
// of its mark (Publish runs it at once; a domain script runs right after
// PublishParams, which marks). A publish delayed longer (a node stalled
// between the two for 15 s) could land after its mark was dropped; it is
// archived when the topic is next published to.
//
// Record streams follow the same invariant: their writers mark before
// appending (the tracker reuses a mark for a third of the grace, so the
// append still lands within it; the webhook script runs after
// PublishParams, which marks; Claims marks before each script), and the
// cursor and trim move only after the archive write. The trail's one
// window is before Redis: the tracker takes a driver's accepted fixes from
// the ingest path into its in-memory queue (conflated per trip; the fixes
// of conflated moves are all kept, up to 4096 a trip) and appends them
// within milliseconds; a node killed in that window, or a location script
// that fails (Redis unreachable; logged), loses those fixes from the trail,
// as it loses the trip's live location. Closing it would take the ingest
// script itself appending to a stream in the driver's slot. A record stream is
// capped (trail 100 000, webhooks 10 000, status 1 000 entries, oldest
// dropped) and expires with its trip or after 7 days: an archive outage
// longer than what they hold loses the oldest.
//
// If the stream no longer holds the event after the cursor (trimmed by
// MaxLen/MaxAge before it was archived, e.g. the archive was down longer
// than the retention), the pipeline archives what remains, logs the gap and
// counts it in hextrack_archive_gaps_total: continuity can't be proven, and
// it says so. Each entry's "prev" field proves continuity otherwise. A
// stream that expired whole (idle longer than the feed's MaxAge, 24 h by
// default) before it was archived cannot be told from a mark whose publish
// never happened: keep an archive outage shorter than MaxAge.
//
// # Nodes
//
// Every node runs a Pipeline and registers in the node registry (a
// heartbeat every LeaseTTL/3; a registration not renewed for LeaseTTL is
// dropped). Each of the feedredis.ArchiveShards shards is drained by the
// node holding its lease (renewed every LeaseTTL/3); a node holds at most
// ceil(shards / live nodes): when nodes join it releases the excess, and it
// takes free shards up to its share, so three nodes hold 6, 6 and 4. A
// dead node's shards are taken by the others after LeaseTTL (its leases
// and registration expire; the others' share grows). A pass that fails
// (archive or Redis down) releases the node's leases and registration, so
// a node that can reach both takes over, and retries after a growing pause
// (up to MaxBackoff): entries wait in the streams, the lag grows, nothing
// is lost while the streams retain them. A shard's topics are drained in
// rounds of up to 256 topics: one pipelined read of the next Batch entries
// of each stream of each, one archive write per record kind, one pipelined
// advance of their cursors; each stream's entries go in order, batch after
// batch.
//
// # Retention
//
// Retention (NewRetention) prunes the archive's raw records (events, trail
// points, status changes) older than RetentionConfig.Keep (default 90
// days); trips and the ledger are kept. Every node runs it; the node that
// takes the period's lease (SET NX for Every, 1h) prunes, so one node
// prunes per period; a failed prune releases the lease for the next try.
//
// For a trip topic, once its new events are archived the trip's current
// record (Config.Trips) is upserted before the cursor moves; the archive
// keeps the highest version. The records are read Config.Readers at a
// time, and only when they may have changed: the read held an event that
// Config.Changes says may change the record (a chat message does not), or
// a full read of the same drain did, or this process has not upserted the
// trip yet (a new node, or one that took the shard over, pays what the
// node before it may have owed).
//
// # Metrics
//
// hextrack_archive_lag_seconds (histogram: each event's age when archived),
// hextrack_archive_backlog_seconds (the oldest unarchived entry's age as the
// last pass saw it: it grows while the archive is down),
// hextrack_archive_events_total, hextrack_archive_records_total{table}
// (new trail points, ledger entries, status changes),
// hextrack_archive_gaps_total, hextrack_archive_invalid_records_total
// (entries that could not be records, skipped and logged),
// hextrack_archive_pipeline_errors_total, hextrack_archive_shards_held,
// hextrack_archive_nodes, hextrack_archive_pruned_rows_total{table},
// hextrack_archive_pass_seconds (how long a pass over the held shards
// takes: an event waits up to a pass plus Interval).
package archiveredis

// Package archiveredis is the durable event pipeline: it brings every
// durable feed event (the Redis Streams of feed/feedredis) into the archive
// at least once, in per-topic order, without depending on any one node, on
// a single Redis or a Redis Cluster. The archive's writes are idempotent by
// (topic, event ID), so "at least once" archives each event exactly once.
//
// # Keys
//
//	<prefix>archive:dirty:{s<N>}   sorted set: topics that may hold unarchived events (N = feedredis.DirtyShard)
//	<prefix>archive:lease:{s<N>}   the node that drains shard N (SET NX PX, renewed)
//	feed:<topic's key>:archived    the ID of the topic's last archived event (in the topic's slot)
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
// Every node runs a Pipeline. Each of the feedredis.ArchiveShards shards is
// drained by the node holding its lease (renewed every LeaseTTL/3; a dead
// node's shards are taken by another after LeaseTTL). A pass that fails
// (archive or Redis down) releases the node's leases, so a node that can
// reach both takes over, and retries after a growing pause (up to
// MaxBackoff): events wait in the streams, the lag grows, nothing is lost
// while the streams retain them. A shard's topics are drained in rounds of
// up to 32 topics: one pipelined read of the next Batch events of each, one
// archive write for all of them, one pipelined advance of their cursors;
// each topic's events go in stream order, batch after batch.
//
// For a trip topic, once its new events are archived the trip's current
// record (Config.Trips) is upserted before the cursor moves; the archive
// keeps the highest version.
//
// # Metrics
//
// hextrack_archive_lag_seconds (histogram: each event's age when archived),
// hextrack_archive_backlog_seconds (the oldest unarchived event's age as the
// last pass saw it: it grows while the archive is down),
// hextrack_archive_events_total, hextrack_archive_gaps_total,
// hextrack_archive_pipeline_errors_total, hextrack_archive_shards_held.
package archiveredis

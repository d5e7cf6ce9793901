// Package natsexport exports every durable feed event to a NATS JetStream
// stream, exactly once, from the archive: the durable event pipeline
// (archive/archiveredis) already brings each durable event into the
// archive's events table once, in per-topic order; an Exporter publishes
// what was archived there and not yet exported.
//
// # Messages
//
// Each event is one message on Subject ("hextrack.<type>.<trip id>" for a
// trip's events, "hextrack.<type>.<kind>.<tag>" for another topic's, e.g.
// "hextrack.offer.driver.d1"; "hextrack.<type>._.ops"), whose body is the
// feed's envelope ({"id","type","topic","ts","data"}, as SSE sends it) and
// whose Nats-Msg-Id is MsgID, "<topic>/<event id>": feed IDs are unique
// only within a topic. The stream (Config.Stream, "HEXTRACK") is created at
// start with the subjects "hextrack.>" and a 2-minute duplicates window, or
// an existing one gets the subjects and the window added, the rest of its
// configuration (retention, replicas) left as its operator set it.
//
// # Why nothing is lost, and nothing is stored twice
//
//   - The outbox is the events table itself (archive/sqlstore, migration
//     4): every archived event starts pending (nats_exported = 0) and is
//     marked exported only after the stream acknowledged it. A partial
//     index holds just the pending events, in (ID, topic) order. An
//     insertion sequence with a cursor was not used: on PostgreSQL
//     concurrent inserts commit out of order, so a cursor can pass a row
//     committed late; a pending flag has no such window, and a late row is
//     simply pending later. A topic's events are archived in order, batch
//     after batch, so reading pending events by ID keeps each topic's order.
//   - One node exports at a time: a lease row in the archive (LeaseTTL 15 s,
//     renewed every 5 s; a dead node's export is taken over after it, a node
//     stopping hands it back at once).
//   - A batch is published with PublishAsync, each message expecting the
//     stream's last sequence to be the one before it
//     (Nats-Expected-Last-Sequence), and the acks are awaited in order; only
//     the acknowledged prefix is marked. The expectation makes the stream
//     hold a prefix of what was sent: a message lost on the way (a NATS
//     restart, a leader change) fails every later one instead of leaving a
//     gap. The connection keeps no reconnect buffer, so nothing queued
//     during an outage is sent after it out of order.
//   - After any failure (NATS down or restarted, acks timed out, the
//     archive down) the exporter re-reads the stream's last message: if it
//     is one of the batch in flight, that batch up to it was stored and
//     its acks were lost, so it is marked without being sent again; the
//     rest is sent again, expecting the stream's real last sequence. This
//     holds however long the outage was.
//   - What is left, a node that dies between a publish and marking it, is
//     republished by the next lease holder with the same Nats-Msg-Id, which
//     the stream drops as a duplicate.
//
// The one assumption: the next lease holder republishes within the
// stream's duplicates window (2 min by default, against a 15 s lease and a
// 10 s ack wait), and nothing else publishes into the stream (a foreign
// message at the tail makes the exporter fall back on that window; foreign
// messages also fail the sequence expectations, retried, but never lose
// or duplicate an event).
//
// While NATS is unreachable events wait in the archive (pending), the
// exporter backs off (up to 30 s) and resumes where the stream stopped;
// hextrack_nats_export_lag_seconds (each event's age when acknowledged)
// grows, hextrack_nats_export_errors_total{stage} counts the failures.
// The archive's retention (Prune) deletes old events, exported or not: an
// outage longer than it loses them from the export, as from the archive.
// Enabling the export on an archive with history exports that history,
// oldest first.
//
// natsexport imports archive, feed (the envelope) and nats.go; it never
// imports a Redis client, sqlstore (it declares Outbox and Leases), api or
// the domain packages.
package natsexport

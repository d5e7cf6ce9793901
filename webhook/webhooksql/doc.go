// Package webhooksql keeps outbound webhooks in the archive's database
// (PostgreSQL or SQLite, through database/sql, the handle
// sqlstore.Store.DB gives): the tables of migrations 00006 and 00007 —
// endpoints,
// the per-(endpoint, topic) delivery queues that are also the delivery
// log, the routing lease — and the events table's webhook_routed flag
// (its outbox, as nats_exported is the NATS export's).
//
// Store has three parts: endpoints (store.go: CRUD, pause, the lease),
// queues (queue.go: Route copies unrouted events into the queues of the
// endpoints whose filter matches and marks them routed, in one
// transaction; Claim takes an endpoint's due queue heads, oldest first,
// and holds them until a time (next_attempt_us), NextDue and
// PendingEndpoints tell a drain when and where to look; Heads and Head
// find the oldest pending delivery of a queue; RecordAll and Record store
// attempts and the endpoint's run of failures, only for deliveries not
// replayed meanwhile, in one statement on PostgreSQL) and deliveryLog
// (log.go: the log paged newest first, Replay). Queries are portable SQL
// with $n parameters numbered in the order they appear (SQLite numbers
// "$n" names by appearance); only marking events routed and recording a
// batch differ by dialect, as in sqlstore.
//
// webhooksql imports webhook, archive (IDs, times) and database/sql; it
// never imports sqlstore (the schema is sqlstore's migrations'), River,
// api or a Redis client.
package webhooksql

// Package sqlstore stores the archive (package archive's records) in
// PostgreSQL (pgx v5, "postgres://…") or a SQLite file (any other URL),
// with one schema applied by versioned goose migrations embedded in the
// binary: Open applies them, Migrate applies them alone (`hextrack
// migrate`).
//
// Store's batch writes are idempotent and atomic per batch (writer in
// write.go); its queries are bounded and checked (reader in read.go). On
// SQLite, writes from one process are serialized in Go and the file is in
// WAL mode, so reads never wait for them; several processes on one file
// rely on SQLite's busy timeout (10 s).
//
// The NATS export's outbox and lease (export.go: PendingExport,
// MarkExported, LeaseExport, ReleaseExport; migration 00004) are read by
// archive/natsexport, whose doc says why.
//
// sqlstore imports archive only of hextrack; it never imports feed, trip,
// api or a Redis client. The event pipeline that feeds it and the HTTP
// routes that read it declare the interfaces they need of *Store.
package sqlstore

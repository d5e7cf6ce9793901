-- The NATS JetStream export's outbox (archive/natsexport): every archived
-- event starts pending (nats_exported = 0) and is marked exported once the
-- stream acknowledged it. The partial index holds only pending events, so
-- it stays small while the export keeps up; a concurrent insert committed
-- late is simply pending later (no cursor can skip it). One lease row lets
-- one node export at a time. Portable SQL, like 00001.

-- +goose Up
ALTER TABLE events ADD COLUMN nats_exported SMALLINT NOT NULL DEFAULT 0;
CREATE INDEX events_nats_pending ON events (id_ms, id_seq, topic) WHERE nats_exported = 0;

CREATE TABLE nats_export (
    name     TEXT   PRIMARY KEY,
    holder   TEXT   NOT NULL DEFAULT '',
    until_us BIGINT NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE nats_export;
DROP INDEX events_nats_pending;
ALTER TABLE events DROP COLUMN nats_exported;

-- Outbound webhooks (package webhook and its adapters; the design is in
-- webhook/webhookriver's doc). Portable SQL, like 00001.
--
-- events.webhook_routed is the webhooks' outbox flag, as nats_exported is
-- the NATS export's (00004): every archived event starts unrouted; the
-- router copies it into the delivery queue of each endpoint whose filter
-- matches, then marks it routed, in one transaction. The partial index
-- holds only unrouted events.
--
-- webhook_deliveries is one queue per (endpoint, topic): a row per event
-- and endpoint, unique, so routing twice is harmless. Only the head of a
-- queue (its oldest pending row) has a River job; the job for the next
-- row is inserted when the head is delivered or dead-lettered. gen counts
-- replays of a row (its River job's args carry it). The delivery log is
-- this table read newest first.

-- +goose Up
ALTER TABLE events ADD COLUMN webhook_routed SMALLINT NOT NULL DEFAULT 0;
CREATE INDEX events_webhook_pending ON events (id_ms, id_seq, topic) WHERE webhook_routed = 0;

CREATE TABLE webhook_endpoints (
    id               TEXT     PRIMARY KEY,
    url              TEXT     NOT NULL,
    filter           TEXT     NOT NULL,
    secret           TEXT     NOT NULL,
    enabled          SMALLINT NOT NULL DEFAULT 1,
    paused           SMALLINT NOT NULL DEFAULT 0,
    failing_since_us BIGINT   NOT NULL DEFAULT 0,
    created_us       BIGINT   NOT NULL,
    updated_us       BIGINT   NOT NULL
);

CREATE TABLE webhook_deliveries (
    endpoint_id      TEXT   NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    topic            TEXT   NOT NULL,
    id_ms            BIGINT NOT NULL,
    id_seq           BIGINT NOT NULL,
    type             TEXT   NOT NULL,
    trip_id          TEXT   NOT NULL DEFAULT '',
    ts_us            BIGINT NOT NULL,
    data             TEXT   NOT NULL,
    state            TEXT   NOT NULL DEFAULT 'pending',
    gen              BIGINT NOT NULL DEFAULT 0,
    attempts         BIGINT NOT NULL DEFAULT 0,
    first_attempt_us BIGINT NOT NULL DEFAULT 0,
    last_attempt_us  BIGINT NOT NULL DEFAULT 0,
    status_code      BIGINT NOT NULL DEFAULT 0,
    latency_us       BIGINT NOT NULL DEFAULT 0,
    error            TEXT   NOT NULL DEFAULT '',
    response         TEXT   NOT NULL DEFAULT '',
    done_us          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, topic, id_ms, id_seq)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, topic, id_ms, id_seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, id_ms, id_seq, topic);

CREATE TABLE webhook_leases (
    name     TEXT   PRIMARY KEY,
    holder   TEXT   NOT NULL DEFAULT '',
    until_us BIGINT NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE webhook_leases;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP INDEX events_webhook_pending;
ALTER TABLE events DROP COLUMN webhook_routed;

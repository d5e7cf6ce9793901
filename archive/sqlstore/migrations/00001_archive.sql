-- The archive's first schema. Portable SQL: the same file runs on
-- PostgreSQL and SQLite. Times are unix microseconds (BIGINT, columns *_us),
-- JSON is TEXT (served back byte for byte). See archive/doc.go.

-- +goose Up
CREATE TABLE events (
    topic   TEXT   NOT NULL,
    id_ms   BIGINT NOT NULL,
    id_seq  BIGINT NOT NULL,
    type    TEXT   NOT NULL,
    trip_id TEXT   NOT NULL DEFAULT '',
    ts_us   BIGINT NOT NULL,
    data    TEXT   NOT NULL,
    PRIMARY KEY (topic, id_ms, id_seq)
);
CREATE INDEX events_ts ON events (ts_us);
-- No index on trip_id yet: events are the hottest table; the query that
-- needs one adds it.

CREATE TABLE trips (
    id          TEXT   PRIMARY KEY,
    kind        TEXT   NOT NULL DEFAULT '',
    rider_id    TEXT   NOT NULL,
    driver_id   TEXT   NOT NULL DEFAULT '',
    status      TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    created_us  BIGINT NOT NULL,
    updated_us  BIGINT NOT NULL,
    ended_us    BIGINT,
    fare        BIGINT NOT NULL DEFAULT 0,
    currency    TEXT   NOT NULL DEFAULT '',
    distance_m  DOUBLE PRECISION NOT NULL DEFAULT 0,
    snapshot    TEXT
);
CREATE INDEX trips_created ON trips (created_us, id);
CREATE INDEX trips_rider ON trips (rider_id, created_us, id);
CREATE INDEX trips_driver ON trips (driver_id, created_us, id);
CREATE INDEX trips_status ON trips (status, created_us, id);

CREATE TABLE trail_points (
    trip_id    TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    driver_id  TEXT   NOT NULL,
    lat        DOUBLE PRECISION NOT NULL,
    lng        DOUBLE PRECISION NOT NULL,
    ts_us      BIGINT NOT NULL,
    accuracy_m DOUBLE PRECISION,
    speed_mps  DOUBLE PRECISION,
    heading    DOUBLE PRECISION,
    PRIMARY KEY (trip_id, seq)
);
CREATE INDEX trail_points_ts ON trail_points (ts_us);

-- Append-only: the store never updates or deletes a ledger row.
CREATE TABLE ledger (
    id         TEXT   PRIMARY KEY,
    kind       TEXT   NOT NULL,
    payment_id TEXT   NOT NULL,
    trip_id    TEXT   NOT NULL DEFAULT '',
    amount     BIGINT NOT NULL,
    currency   TEXT   NOT NULL,
    status     TEXT   NOT NULL DEFAULT '',
    outcome    TEXT   NOT NULL DEFAULT '',
    at_us      BIGINT NOT NULL,
    body       TEXT   NOT NULL
);
CREATE INDEX ledger_trip ON ledger (trip_id, at_us);
CREATE INDEX ledger_payment ON ledger (payment_id, at_us);

CREATE TABLE driver_status (
    driver_id TEXT   NOT NULL,
    at_us     BIGINT NOT NULL,
    status    TEXT   NOT NULL,
    trip_id   TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (driver_id, at_us, status)
);
CREATE INDEX driver_status_at ON driver_status (at_us);

-- +goose Down
DROP TABLE driver_status;
DROP TABLE ledger;
DROP TABLE trail_points;
DROP TABLE trips;
DROP TABLE events;

-- API keys of backend services (package apikey): never the secret, only
-- its hex SHA-256; scopes comma-separated; times unix microseconds, NULL
-- for never. A key is looked up by its id (the primary key) on every
-- cache miss of the verifier, and listed newest first by ops. Portable
-- SQL, like 00001: the same file runs on PostgreSQL and SQLite.

-- +goose Up
CREATE TABLE api_keys (
    id           TEXT   PRIMARY KEY,
    name         TEXT   NOT NULL,
    hash         TEXT   NOT NULL,
    scopes       TEXT   NOT NULL,
    created_us   BIGINT NOT NULL,
    expires_us   BIGINT,
    revoked_us   BIGINT,
    last_used_us BIGINT
);
CREATE INDEX api_keys_created ON api_keys (created_us, id);

-- +goose Down
DROP TABLE api_keys;

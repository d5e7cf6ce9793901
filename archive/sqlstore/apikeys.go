package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hextrack/hextrack/archive"
)

// Placeholders are numbered in order of appearance: SQLite numbers "$n"
// parameters by where they first appear, not by n.

// API keys (migration 00005, package apikey): created, read by id on the
// verifier's cache misses, listed by ops, revoked, and touched (last used)
// at most once a minute per key by the verifier.

const apiKeyCols = `id, name, hash, scopes, created_us, expires_us, revoked_us, last_used_us` //nolint:gosec // column names, not a credential

// CreateAPIKey stores a new key; an id already taken is an error.
func (s *Store) CreateAPIKey(ctx context.Context, k archive.APIKey) error {
	if err := k.Validate(); err != nil {
		return err
	}
	_, err := s.exec(ctx, `INSERT INTO api_keys (`+apiKeyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.Name, k.Hash, strings.Join(k.Scopes, ","), archive.Micros(k.CreatedAt),
		nullMicros(k.ExpiresAt), nullMicros(k.RevokedAt), nullMicros(k.LastUsedAt))
	if err != nil {
		return fmt.Errorf("archive: create api key %s: %w", k.ID, err)
	}
	return nil
}

// APIKey returns key id; archive.ErrNotFound if there is none.
func (s *Store) APIKey(ctx context.Context, id string) (archive.APIKey, error) {
	k, err := scanAPIKey(s.db.QueryRowContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return archive.APIKey{}, fmt.Errorf("api key %s: %w", id, archive.ErrNotFound)
	}
	if err != nil {
		return archive.APIKey{}, fmt.Errorf("archive: api key %s: %w", id, err)
	}
	return k, nil
}

// APIKeys lists the keys, revoked and expired ones included, newest first
// (at most archive.MaxAPIKeys).
func (s *Store) APIKeys(ctx context.Context) ([]archive.APIKey, error) {
	return queryAll(ctx, s.db, "api keys", scanAPIKey,
		`SELECT `+apiKeyCols+` FROM api_keys ORDER BY created_us DESC, id DESC LIMIT $1`, archive.MaxAPIKeys)
}

// RevokeAPIKey marks key id revoked at at; revoking a revoked key keeps
// its first time. archive.ErrNotFound if there is no such key.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	n, err := s.exec(ctx, `UPDATE api_keys SET revoked_us = $1 WHERE id = $2 AND revoked_us IS NULL`, archive.Micros(at), id)
	if err != nil {
		return fmt.Errorf("archive: revoke api key %s: %w", id, err)
	}
	if n == 0 {
		_, err := s.APIKey(ctx, id) // revoked before, or no such key
		return err
	}
	return nil
}

// TouchAPIKey records that key id was used at at; an older time never
// replaces a newer one (nodes touch keys in any order). An unknown id is
// not an error (nothing to record).
func (s *Store) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	us := archive.Micros(at)
	_, err := s.exec(ctx, `UPDATE api_keys SET last_used_us = $1 WHERE id = $2 AND (last_used_us IS NULL OR last_used_us < $3)`,
		us, id, us)
	if err != nil {
		return fmt.Errorf("archive: touch api key %s: %w", id, err)
	}
	return nil
}

func scanAPIKey(row scanner) (archive.APIKey, error) {
	var (
		k                          archive.APIKey
		scopes                     string
		created                    int64
		expires, revoked, lastUsed sql.NullInt64
	)
	if err := row.Scan(&k.ID, &k.Name, &k.Hash, &scopes, &created, &expires, &revoked, &lastUsed); err != nil {
		return k, err
	}
	k.Scopes = strings.Split(scopes, ",")
	k.CreatedAt = archive.Time(created)
	k.ExpiresAt, k.RevokedAt, k.LastUsedAt = timeOf(expires), timeOf(revoked), timeOf(lastUsed)
	return k, nil
}

// nullMicros is t in unix microseconds, NULL for the zero time.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: archive.Micros(t), Valid: true}
}

// timeOf is the time of a nullable microseconds column (zero for NULL).
func timeOf(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return archive.Time(us.Int64)
}

package webhooksql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/webhook"
)

// Store is the webhooks' tables in the archive's database: the endpoints
// (store.go), the delivery queues (queue.go) and the delivery log with
// replays (log.go).
type Store struct {
	endpoints
	router
	queues
	deliveryLog
}

// conn is the database the parts share.
type conn struct {
	db *sql.DB
	pg bool
}

// endpoints are the endpoints' rows, and the routing lease.
type endpoints struct{ conn }

// New returns the Store over db, whose schema (migration 00006) is
// applied: dialect is "postgres" or "sqlite3" (sqlstore.Store.Dialect).
func New(db *sql.DB, dialect string) *Store {
	c := conn{db: db, pg: dialect == "postgres"}
	return &Store{endpoints{c}, router{c}, queues{c}, deliveryLog{c}}
}

var _ webhook.Store = (*Store)(nil)

const endpointCols = `id, url, filter, secret, enabled, paused, failing_since_us, created_us, updated_us`

// CreateEndpoint stores a new endpoint.
func (s endpoints) CreateEndpoint(ctx context.Context, e webhook.Endpoint) error {
	f, _ := json.Marshal(e.Filter)
	_, err := s.db.ExecContext(ctx, `INSERT INTO webhook_endpoints (`+endpointCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.ID, e.URL, string(f), e.Secret.Reveal(), flag(e.Enabled), flag(e.Paused), micros(e.FailingSince),
		archive.Micros(e.CreatedAt), archive.Micros(e.UpdatedAt))
	if err != nil {
		return fmt.Errorf("webhooks: create endpoint: %w", err)
	}
	return nil
}

// Endpoints returns every endpoint, oldest first.
func (s endpoints) Endpoints(ctx context.Context) ([]webhook.Endpoint, error) {
	return listEndpoints(ctx, s.db)
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func listEndpoints(ctx context.Context, q querier) ([]webhook.Endpoint, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints ORDER BY created_us, id`)
	if err != nil {
		return nil, fmt.Errorf("webhooks: endpoints: %w", err)
	}
	defer rows.Close()
	var out []webhook.Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("webhooks: endpoints: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: endpoints: %w", err)
	}
	return out, nil
}

// Endpoint returns one endpoint (webhook.ErrNotFound).
func (s endpoints) Endpoint(ctx context.Context, id string) (webhook.Endpoint, error) {
	e, err := scanEndpoint(s.db.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return webhook.Endpoint{}, fmt.Errorf("%w: %q", webhook.ErrNotFound, clip(id))
	}
	if err != nil {
		return webhook.Endpoint{}, fmt.Errorf("webhooks: endpoint: %w", err)
	}
	return e, nil
}

// UpdateEndpoint stores e's URL, filter, flags and failure time.
func (s endpoints) UpdateEndpoint(ctx context.Context, e webhook.Endpoint) error {
	f, _ := json.Marshal(e.Filter)
	n, err := s.exec(ctx, `UPDATE webhook_endpoints SET url = $1, filter = $2, enabled = $3, paused = $4,
		failing_since_us = $5, updated_us = $6 WHERE id = $7`,
		e.URL, string(f), flag(e.Enabled), flag(e.Paused), micros(e.FailingSince), archive.Micros(e.UpdatedAt), e.ID)
	if err != nil {
		return fmt.Errorf("webhooks: update endpoint: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", webhook.ErrNotFound, clip(e.ID))
	}
	return nil
}

// DeleteEndpoint removes an endpoint and (cascading) its deliveries.
func (s endpoints) DeleteEndpoint(ctx context.Context, id string) error {
	// Deliveries first: SQLite cascades only with foreign keys on, which
	// a connection opened elsewhere may not have.
	if _, err := s.exec(ctx, `DELETE FROM webhook_deliveries WHERE endpoint_id = $1`, id); err != nil {
		return fmt.Errorf("webhooks: delete endpoint: %w", err)
	}
	n, err := s.exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("webhooks: delete endpoint: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", webhook.ErrNotFound, clip(id))
	}
	return nil
}

// Pause pauses an endpoint that has been failing since since, unless
// that run of failures ended meanwhile (a success, or ops enabling it
// again: a resume is never undone by an attempt that failed before it).
func (s endpoints) Pause(ctx context.Context, id string, since, now time.Time) error {
	if _, err := s.exec(ctx, `UPDATE webhook_endpoints SET paused = 1, updated_us = $1
		WHERE id = $2 AND failing_since_us = $3 AND enabled = 1`, archive.Micros(now), id, micros(since)); err != nil {
		return fmt.Errorf("webhooks: pause: %w", err)
	}
	return nil
}

// CountPaused counts the paused (and enabled) endpoints.
func (s endpoints) CountPaused(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_endpoints WHERE paused = 1 AND enabled = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("webhooks: count paused: %w", err)
	}
	return n, nil
}

// Lease takes or renews the lease called name for holder until ttl from
// now, and reports whether holder has it (as sqlstore.LeaseExport).
func (s endpoints) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := time.Now()
	n, err := s.exec(ctx, `INSERT INTO webhook_leases (name, holder, until_us) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_us = excluded.until_us
		WHERE webhook_leases.holder = excluded.holder OR webhook_leases.until_us < $4`,
		name, holder, archive.Micros(now.Add(ttl)), archive.Micros(now))
	if err != nil {
		return false, fmt.Errorf("webhooks: lease: %w", err)
	}
	return n == 1, nil
}

// Release gives the lease back if holder has it.
func (s endpoints) Release(ctx context.Context, name, holder string) error {
	if _, err := s.exec(ctx, `UPDATE webhook_leases SET until_us = 0 WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("webhooks: lease: %w", err)
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scanEndpoint(r scanner) (webhook.Endpoint, error) {
	var (
		e                   webhook.Endpoint
		filter, secret      string
		enabled, paused     int64
		failing, created, u int64
	)
	if err := r.Scan(&e.ID, &e.URL, &filter, &secret, &enabled, &paused, &failing, &created, &u); err != nil {
		return e, err
	}
	if err := json.Unmarshal([]byte(filter), &e.Filter); err != nil {
		return e, fmt.Errorf("endpoint %s: filter: %w", e.ID, err)
	}
	e.Secret, e.Enabled, e.Paused = webhook.Secret(secret), enabled != 0, paused != 0
	e.FailingSince, e.CreatedAt, e.UpdatedAt = timeOf(failing), archive.Time(created), archive.Time(u)
	return e, nil
}

// Queries number their parameters in the order they first appear: SQLite
// reads "$1" as a named parameter and numbers names by appearance.

func (s conn) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// micros is 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return archive.Micros(t)
}

func timeOf(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return archive.Time(us)
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

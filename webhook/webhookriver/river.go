package webhookriver

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
)

// jobs is the part of a river.Client (of either driver) the Runner uses.
type jobs interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// conn is River's own connection to the archive's database: a pgx pool on
// PostgreSQL (LISTEN/NOTIFY wakes workers), a one-connection database/sql
// pool on SQLite (riversqlite's advice: SQLite has one writer).
type conn struct {
	pool *pgxpool.Pool
	db   *sql.DB
}

func (c conn) close() {
	if c.pool != nil {
		c.pool.Close()
	}
	if c.db != nil {
		c.db.Close()
	}
}

func isPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// dial opens River's connection to url, read as sqlstore.Open reads it.
func dial(ctx context.Context, url string) (conn, error) {
	if isPostgres(url) {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return conn{}, fmt.Errorf("webhooks: river: %w", err)
		}
		return conn{pool: pool}, nil
	}
	path := strings.TrimPrefix(url, "sqlite:")
	if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" {
		return conn{}, fmt.Errorf("webhooks: river: %q is neither a postgres:// URL nor a SQLite file path", url)
	}
	db, err := sql.Open("sqlite3", path+"?_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=1&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		return conn{}, fmt.Errorf("webhooks: river: %w", err)
	}
	db.SetMaxOpenConns(1)
	return conn{db: db}, nil
}

// migrate applies River's own migrations (rivermigrate) and returns the
// versions applied.
func (c conn) migrate(ctx context.Context) ([]int, error) {
	var (
		res *rivermigrate.MigrateResult
		err error
	)
	if c.pool != nil {
		var m *rivermigrate.Migrator[pgx.Tx]
		if m, err = rivermigrate.New(riverpgxv5.New(c.pool), nil); err == nil {
			res, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		}
	} else {
		var m *rivermigrate.Migrator[*sql.Tx]
		if m, err = rivermigrate.New(riversqlite.New(c.db), nil); err == nil {
			res, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: river migrations: %w", err)
	}
	var vs []int
	for _, v := range res.Versions {
		vs = append(vs, v.Version)
	}
	return vs, nil
}

// client builds the River client of c's driver.
func (c conn) client(cfg *river.Config) (jobs, error) {
	if c.pool != nil {
		return river.NewClient(riverpgxv5.New(c.pool), cfg)
	}
	return river.NewClient(riversqlite.New(c.db), cfg)
}

// Migrate applies River's migrations to the archive at url (`hextrack
// migrate`; the archive's own are sqlstore.Migrate's) and returns the
// versions applied.
func Migrate(ctx context.Context, url string) ([]int, error) {
	c, err := dial(ctx, url)
	if err != nil {
		return nil, err
	}
	defer c.close()
	return c.migrate(ctx)
}

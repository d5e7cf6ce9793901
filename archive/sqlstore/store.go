package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers database/sql driver "pgx"
	_ "github.com/mattn/go-sqlite3"    // registers database/sql driver "sqlite3"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the archive in a SQL database: idempotent batch writes (writer)
// and the queries the history routes need (reader). It is safe for
// concurrent use; Close it when done.
type Store struct {
	writer
	reader
	db      *sql.DB
	dialect goose.Dialect
}

// Open connects to the archive at url and applies any pending migration.
//
// url is a PostgreSQL URL ("postgres://…" or "postgresql://…", through
// pgx; connection parameters such as search_path go in its query) or
// otherwise the path of a SQLite file, optionally prefixed "sqlite:"; the
// file is created if missing (its directory must exist) and opened in WAL
// mode with a busy timeout, foreign keys on and synchronous=NORMAL.
func Open(ctx context.Context, url string) (*Store, error) {
	db, d, err := open(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, err
	}
	w := writer{db: db}
	if d == goose.DialectSQLite3 {
		// SQLite has one writer at a time: queueing here is fairer and
		// cheaper than its busy-timeout polling.
		w.mu, w.anon = new(sync.Mutex), true
	}
	s := &Store{writer: w, reader: reader{db: db}, db: db, dialect: d}
	return s, nil
}

// Migrate applies the pending migrations of the archive at url (as Open
// does) and returns the versions it applied, oldest first (none: the
// schema was up to date). It is what `hextrack migrate` runs.
func Migrate(ctx context.Context, url string) ([]int64, error) {
	db, d, err := open(ctx, url)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return migrate(ctx, db, d)
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers (for a readiness check).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("archive: ping: %w", err)
	}
	return nil
}

// SchemaVersion returns the version of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	p, err := provider(s.db, s.dialect)
	if err != nil {
		return 0, err
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("archive: schema version: %w", err)
	}
	return v, nil
}

// DB returns the database handle, for an adapter that keeps tables of its
// own in the archive's schema (webhook/webhooksql, migration 00006).
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns "postgres" or "sqlite3".
func (s *Store) Dialect() string { return string(s.dialect) }

func open(ctx context.Context, url string) (*sql.DB, goose.Dialect, error) {
	driver, dsn, d := "pgx", url, goose.DialectPostgres
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		path := strings.TrimPrefix(url, "sqlite:")
		if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" {
			return nil, "", fmt.Errorf("archive: %q is neither a postgres:// URL nor a SQLite file path", url)
		}
		// mattn/go-sqlite3 options; _txlock=immediate takes the write lock
		// at BEGIN, so a write transaction never fails upgrading its lock.
		driver, d = "sqlite3", goose.DialectSQLite3
		dsn = path + "?_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=1&_synchronous=NORMAL&_txlock=immediate"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, "", fmt.Errorf("archive: open: %w", err)
	}
	if d == goose.DialectPostgres {
		// database/sql keeps 2 idle connections by default: under
		// concurrent use (the webhooks' drains, the archive's writers)
		// every other query opened a PostgreSQL connection (a backend
		// process) and closed it after.
		db.SetMaxIdleConns(32)
		db.SetConnMaxIdleTime(30 * time.Second)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, "", fmt.Errorf("archive: connect: %w", err)
	}
	return db, d, nil
}

func provider(db *sql.DB, d goose.Dialect) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var opts []goose.ProviderOption
	if d == goose.DialectPostgres {
		// Nodes starting together migrate one at a time (an advisory lock).
		l, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(l))
	}
	p, err := goose.NewProvider(d, db, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("archive: migrations: %w", err)
	}
	return p, nil
}

func migrate(ctx context.Context, db *sql.DB, d goose.Dialect) ([]int64, error) {
	p, err := provider(db, d)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	var perr *goose.PartialError
	if errors.As(err, &perr) {
		res = perr.Applied
		err = fmt.Errorf("archive: migration %d: %w", perr.Failed.Source.Version, perr.Err)
	} else if err != nil {
		err = fmt.Errorf("archive: migrate: %w", err)
	}
	var versions []int64
	for _, r := range res {
		versions = append(versions, r.Source.Version)
	}
	return versions, err
}

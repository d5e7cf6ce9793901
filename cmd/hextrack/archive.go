package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/history"
	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/archive/archiveredis"
	"github.com/hextrack/hextrack/archive/sqlstore"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/pod"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
	"github.com/hextrack/hextrack/webhook/webhookriver"
)

// archiveOpenTimeout bounds one attempt at opening the archive (connect
// and migrate).
const archiveOpenTimeout = 30 * time.Second

// isPostgres: the URL names a PostgreSQL database.
func isPostgres(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// archiveURL is where the node's archive is: DatabaseURL, else the SQLite
// file in DataDir; "" when neither is set (no archive).
func (c *Config) archiveURL() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	if c.DataDir != "" {
		return filepath.Join(c.DataDir, archiveFile)
	}
	return ""
}

// archiveName is the archive's URL for a log line or a message: a
// PostgreSQL URL without its password.
func archiveName(u string) string {
	if isPostgres(u) {
		return redactURL(u)
	}
	return strings.TrimPrefix(u, "sqlite:")
}

// makeArchiveDir creates the directory of a SQLite archive (0700).
func makeArchiveDir(u string) error {
	if isPostgres(u) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(strings.TrimPrefix(u, "sqlite:")), 0o700); err != nil {
		return fmt.Errorf("archive: data dir: %w", err)
	}
	return nil
}

// openStore opens (and migrates) the archive at u.
func openStore(ctx context.Context, u string) (*sqlstore.Store, error) {
	if err := makeArchiveDir(u); err != nil {
		return nil, err
	}
	return sqlstore.Open(ctx, u)
}

// nodeArchive is the node's archive. Nothing the node serves today needs
// it (ingest, streams and actions run on Redis), so a database that does
// not answer at start does not stop the node: it serves, /readyz says
// "degraded", and the archive is opened in the background once it
// answers. Once open, database/sql reconnects by itself; /readyz follows.
type nodeArchive struct {
	url string
	log *slog.Logger

	mu    sync.Mutex
	store *sqlstore.Store
	err   error // the last failed attempt, while store is nil

	cancel context.CancelFunc // ends the background attempts
	done   chan struct{}      // closed when they end
}

var _ api.Pinger = (*nodeArchive)(nil)

// errArchiveNotOpen: the archive has not been opened yet.
var errArchiveNotOpen = errors.New("archive: not open yet")

// openArchive opens the archive at u, or starts trying to in the
// background when that fails.
func openArchive(ctx context.Context, u string, log *slog.Logger) *nodeArchive {
	a := &nodeArchive{url: u, log: log, done: make(chan struct{})}
	if a.attempt(ctx) {
		close(a.done)
		return a
	}
	log.Error("archive: cannot open it; serving without it (/readyz: degraded) and retrying",
		"archive", archiveName(u), "err", a.err)
	bg, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go a.retry(bg)
	return a
}

// attempt opens the store once; it reports whether it is open.
func (a *nodeArchive) attempt(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, archiveOpenTimeout)
	defer cancel()
	s, err := openStore(ctx, a.url)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.err = err
		return false
	}
	a.store, a.err = s, nil
	v, _ := s.SchemaVersion(ctx)
	a.log.Info("archive: open", "archive", archiveName(a.url), "database", s.Dialect(), "schema_version", v)
	return true
}

// retry attempts to open the store, backing off from 1 s to 30 s, until it
// is open or ctx ends.
func (a *nodeArchive) retry(ctx context.Context) {
	defer close(a.done)
	wait := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if a.attempt(ctx) {
			return
		}
		if ctx.Err() == nil {
			a.log.Warn("archive: still cannot open it", "archive", archiveName(a.url), "err", a.Err(), "retry_in", wait)
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// Store is the open archive, nil until it is (or without an archive: a
// nil *nodeArchive).
func (a *nodeArchive) Store() *sqlstore.Store {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.store
}

// Err is why the archive is not open (nil once it is).
func (a *nodeArchive) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Ping is /readyz's check: the archive is open and its database answers.
func (a *nodeArchive) Ping(ctx context.Context) error {
	s := a.Store()
	if s == nil {
		return errArchiveNotOpen
	}
	return s.Ping(ctx)
}

// Close stops the background attempts and closes the store (nil: no
// archive, nothing to do).
func (a *nodeArchive) Close() error {
	if a == nil {
		return nil
	}
	if a.cancel != nil {
		a.cancel()
	}
	<-a.done
	if s := a.Store(); s != nil {
		return s.Close()
	}
	return nil
}

// runMigrate is `hextrack migrate`: apply the archive's pending migrations
// and say which.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := archiveFlags(fs, &c); err != nil {
		return err
	}
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: hextrack migrate [--database-url URL] [--data-dir DIR]\n\n"+
			"Migrate applies the archive's pending schema migrations (embedded in the\n"+
			"binary) and prints the versions it applied, then the schema's version.\n"+
			"The server applies them at start too; run this before a rollout to see\n"+
			"them applied once. The archive is PostgreSQL when --database-url is a\n"+
			"postgres:// URL, else the SQLite file archive.db in --data-dir. On\n"+
			"PostgreSQL, nodes migrating at once take turns (an advisory lock).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate: unexpected arguments %q", fs.Args())
	}
	if err := checkDatabaseURL(c.DatabaseURL); err != nil {
		return err
	}
	u := c.archiveURL()
	if u == "" {
		return errors.New("migrate: no archive: set --database-url or --data-dir")
	}
	if err := makeArchiveDir(u); err != nil {
		return err
	}
	applied, err := sqlstore.Migrate(ctx, u)
	for _, v := range applied {
		fmt.Fprintf(stdout, "applied migration %d\n", v)
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", archiveName(u), err)
	}
	riverApplied, err := webhookriver.Migrate(ctx, u)
	for _, v := range riverApplied {
		fmt.Fprintf(stdout, "applied river (webhook jobs) migration %d\n", v)
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", archiveName(u), err)
	}
	s, err := sqlstore.Open(ctx, u) // nothing left to apply: only reads the version
	if err != nil {
		return fmt.Errorf("migrate %s: %w", archiveName(u), err)
	}
	defer s.Close()
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprint(stdout, "nothing to apply: ")
	}
	fmt.Fprintf(stdout, "archive %s (%s) at schema version %d\n", archiveName(u), s.Dialect(), v)
	return nil
}

var (
	_ archiveredis.Archive = (*nodeArchive)(nil)
	_ archiveredis.Trips   = tripRecords{}
)

// AppendEvents writes to the open archive (errArchiveNotOpen until it is:
// the pipeline backs off and retries).
func (a *nodeArchive) AppendEvents(ctx context.Context, evs []archive.Event) (int64, error) {
	s := a.Store()
	if s == nil {
		return 0, errArchiveNotOpen
	}
	return s.AppendEvents(ctx, evs)
}

// UpsertTrips writes to the open archive (errArchiveNotOpen until it is).
func (a *nodeArchive) UpsertTrips(ctx context.Context, trips []archive.Trip) (int64, error) {
	s := a.Store()
	if s == nil {
		return 0, errArchiveNotOpen
	}
	return s.UpsertTrips(ctx, trips)
}

// AppendPoints writes to the open archive (errArchiveNotOpen until it is).
func (a *nodeArchive) AppendPoints(ctx context.Context, pts []archive.Point) (int64, error) {
	s := a.Store()
	if s == nil {
		return 0, errArchiveNotOpen
	}
	return s.AppendPoints(ctx, pts)
}

// AppendLedger writes to the open archive (errArchiveNotOpen until it is).
func (a *nodeArchive) AppendLedger(ctx context.Context, es []archive.Entry) (int64, error) {
	s := a.Store()
	if s == nil {
		return 0, errArchiveNotOpen
	}
	return s.AppendLedger(ctx, es)
}

// AppendStatuses writes to the open archive (errArchiveNotOpen until it is).
func (a *nodeArchive) AppendStatuses(ctx context.Context, cs []archive.StatusChange) (int64, error) {
	s := a.Store()
	if s == nil {
		return 0, errArchiveNotOpen
	}
	return s.AppendStatuses(ctx, cs)
}

// Prune prunes the open archive (errArchiveNotOpen until it is).
func (a *nodeArchive) Prune(ctx context.Context, before time.Time) (archive.PruneResult, error) {
	s := a.Store()
	if s == nil {
		return archive.PruneResult{}, errArchiveNotOpen
	}
	return s.Prune(ctx, before)
}

// runArchivePipeline runs the durable event pipeline from rdb into arch,
// and the retention job (keep: Config.ArchiveRetention), until ctx ends;
// the returned channel is closed when both have stopped.
func runArchivePipeline(ctx context.Context, rdb redis.UniversalClient, arch *nodeArchive, cfg archiveredis.Config,
	keep time.Duration) chan struct{} {
	p := archiveredis.New(rdb, arch, cfg)
	r := archiveredis.NewRetention(rdb, arch, archiveredis.RetentionConfig{Prefix: cfg.Prefix, NodeID: cfg.NodeID,
		Keep: keep, Registerer: cfg.Registerer, Logger: cfg.Logger})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	go func() { defer wg.Done(); _ = r.Run(ctx) }()
	go func() { wg.Wait(); close(done) }()
	return done
}

// statusLog records drivers' status changes for the archive
// (driverredis.StatusLog): the driver topic's status record stream,
// marked through the feed.
type statusLog struct {
	feed   *feedredis.Broker
	prefix string
}

var _ driverredis.StatusLog = statusLog{}

func (l statusLog) StatusStream(driverID string) string {
	return feedredis.RecordKey(l.prefix, "driver:"+driverID, feedredis.RecordStatus)
}

func (l statusLog) MarkStatus(ctx context.Context, driverID string) error {
	return l.feed.Mark(ctx, "driver:"+driverID)
}

// tripRecords reads a trip's archive record (its snapshot as ops sees it)
// from Redis for the pipeline.
type tripRecords struct{ store *tripredis.Store }

// TripRecord returns trip id's current record; archive.ErrNotFound once
// its Redis keys are gone.
func (r tripRecords) TripRecord(ctx context.Context, id string) (archive.Trip, error) {
	snap, err := r.store.Snapshot(ctx, id, trip.Actor{Role: trip.RoleSystem})
	if errors.Is(err, trip.ErrNotFound) {
		return archive.Trip{}, fmt.Errorf("trip %s: %w", id, archive.ErrNotFound)
	}
	if err != nil {
		return archive.Trip{}, err
	}
	b, err := json.Marshal(snap)
	if err != nil {
		return archive.Trip{}, fmt.Errorf("trip %s snapshot: %w", id, err)
	}
	t := snap.Trip
	rec := archive.Trip{ID: t.ID, Kind: t.Kind, RiderID: t.RiderID, DriverID: t.DriverID, Status: t.Status,
		Version: t.Version, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Snapshot: b}
	if trip.Terminal(t.Status) {
		rec.EndedAt = t.UpdatedAt
		// The distance driven: along the trip's breadcrumbs (a fix every
		// 5 s or 25 m while a driver had it), what the driver's km and
		// a trip without a trail in the archive are reckoned from.
		crumbs, err := r.store.Path(ctx, id, trip.Actor{Role: trip.RoleSystem}, 0)
		if err != nil {
			return archive.Trip{}, err
		}
		rec.DistanceM = crumbDistance(crumbs)
	}
	return rec, nil
}

// tripRecordChanges reports whether a trip event may change the trip's
// record: a chat message and a stop.proof (pod) are not transitions
// (the version stays).
func tripRecordChanges(eventType string) bool {
	return eventType != trip.EventMessage && eventType != pod.EventProof
}

// crumbDistance is the distance driven along crumbs, measured as the
// receipt measures the trail (geo.Travelled, history.JitterM).
func crumbDistance(crumbs []trip.Crumb) float64 {
	odo := geo.Travelled{Jitter: history.JitterM}
	for _, c := range crumbs {
		odo.Add(geo.Point{Lat: c.Lat, Lng: c.Lng})
	}
	m, _ := odo.M()
	return m
}

package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hextrack/hextrack/archive"
)

// writer holds the archive's batch writes. Every write is idempotent, so a
// consumer that crashed after writing but before acknowledging can simply
// write the same batch again: events, trail points, ledger entries and
// status changes are INSERT … ON CONFLICT DO NOTHING on their natural keys;
// trips are upserts that never lower a trip's version.
//
// A batch is one multi-row INSERT per maxRows records, in one transaction
// when there are several, so a batch is stored whole or not at all. Rows
// are written in key order whatever the order of the batch: on PostgreSQL
// two consumers writing overlapping batches then wait for each other
// instead of deadlocking (an INSERT … ON CONFLICT waits for the
// transaction that holds a conflicting uncommitted row). A batch
// holding an invalid record is refused whole (archive.ErrInvalid naming its
// index): callers check records with their Validate first.
type writer struct {
	db   *sql.DB
	mu   *sync.Mutex // serializes writes on SQLite; nil on PostgreSQL
	anon bool        // "?" placeholders in batch INSERTs (SQLite)
}

// maxRows bounds the rows of one INSERT: 500 rows of at most 13 columns
// stay far below both SQLite's (32766) and PostgreSQL's (65535) limits on
// bound parameters.
const maxRows = 500

// pruneBatch bounds the rows one DELETE of Prune removes, so retention
// never holds a long lock in front of the ingest path.
const pruneBatch = 5000

type table struct {
	name     string
	cols     []string
	conflict string // ON CONFLICT clause
}

var (
	eventsTable = table{"events",
		[]string{"topic", "id_ms", "id_seq", "type", "trip_id", "ts_us", "data"},
		"ON CONFLICT (topic, id_ms, id_seq) DO NOTHING"}
	tripsTable = table{"trips",
		[]string{"id", "kind", "rider_id", "driver_id", "status", "version", "created_us", "updated_us",
			"ended_us", "fare", "currency", "distance_m", "snapshot"},
		// created_us is not updated: it orders lists, cursors rely on it.
		`ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, rider_id = excluded.rider_id,
		driver_id = excluded.driver_id, status = excluded.status, version = excluded.version,
		updated_us = excluded.updated_us, ended_us = excluded.ended_us, fare = excluded.fare,
		currency = excluded.currency, distance_m = excluded.distance_m, snapshot = excluded.snapshot
		WHERE excluded.version >= trips.version`}
	pointsTable = table{"trail_points",
		[]string{"trip_id", "seq", "driver_id", "lat", "lng", "ts_us", "accuracy_m", "speed_mps", "heading"},
		"ON CONFLICT (trip_id, seq) DO NOTHING"}
	ledgerTable = table{"ledger",
		[]string{"id", "kind", "payment_id", "trip_id", "amount", "currency", "status", "outcome", "at_us", "body"},
		"ON CONFLICT (id) DO NOTHING"}
	statusTable = table{"driver_status",
		[]string{"driver_id", "at_us", "status", "trip_id"},
		"ON CONFLICT (driver_id, at_us, status) DO NOTHING"}
)

// AppendEvents archives durable events and returns how many were new (the
// others were archived before: a redelivery).
func (w writer) AppendEvents(ctx context.Context, evs []archive.Event) (int64, error) {
	type row struct {
		e  *archive.Event
		id archive.EventID
	}
	rows := make([]row, len(evs))
	for i := range evs {
		if err := evs[i].Validate(); err != nil {
			return 0, fmt.Errorf("archive: event %d: %w", i, err)
		}
		rows[i].e = &evs[i]
		rows[i].id, _ = archive.ParseEventID(evs[i].ID)
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(strings.Compare(a.e.Topic, b.e.Topic), cmp.Compare(a.id.Ms, b.id.Ms), cmp.Compare(a.id.Seq, b.id.Seq))
	})
	return w.insert(ctx, eventsTable, len(rows), func(args []any, i int) []any {
		e, id := rows[i].e, rows[i].id
		return append(args, e.Topic, id.Ms, id.Seq, e.Type, e.TripID, archive.Micros(e.TS), jsonText(e.Data))
	})
}

// UpsertTrips stores trip records and returns how many changed the archive
// (new trips, or copies at a version at least the stored one). Within one
// batch, the highest version of a trip wins.
func (w writer) UpsertTrips(ctx context.Context, trips []archive.Trip) (int64, error) {
	latest := make(map[string]int, len(trips))
	var keep []archive.Trip
	for i, t := range trips {
		if err := t.Validate(); err != nil {
			return 0, fmt.Errorf("archive: trip %d: %w", i, err)
		}
		// PostgreSQL refuses to upsert one row twice in a statement.
		if j, ok := latest[t.ID]; ok {
			if t.Version >= keep[j].Version {
				keep[j] = t
			}
			continue
		}
		latest[t.ID] = len(keep)
		keep = append(keep, t)
	}
	slices.SortFunc(keep, func(a, b archive.Trip) int { return strings.Compare(a.ID, b.ID) })
	return w.insert(ctx, tripsTable, len(keep), func(args []any, i int) []any {
		t := keep[i]
		var ended any
		if !t.EndedAt.IsZero() {
			ended = archive.Micros(t.EndedAt)
		}
		var snap any
		if t.Snapshot != nil {
			snap = string(t.Snapshot)
		}
		return append(args, t.ID, t.Kind, t.RiderID, t.DriverID, t.Status, t.Version, archive.Micros(t.CreatedAt),
			archive.Micros(t.UpdatedAt), ended, t.Fare, t.Currency, t.DistanceM, snap)
	})
}

// AppendPoints archives trail points and returns how many were new.
func (w writer) AppendPoints(ctx context.Context, pts []archive.Point) (int64, error) {
	for i, p := range pts {
		if err := p.Validate(); err != nil {
			return 0, fmt.Errorf("archive: point %d: %w", i, err)
		}
	}
	pts = slices.Clone(pts)
	slices.SortFunc(pts, func(a, b archive.Point) int {
		return cmp.Or(strings.Compare(a.TripID, b.TripID), cmp.Compare(a.Seq, b.Seq))
	})
	return w.insert(ctx, pointsTable, len(pts), func(args []any, i int) []any {
		p := pts[i]
		return append(args, p.TripID, p.Seq, p.DriverID, p.Lat, p.Lng, archive.Micros(p.TS),
			optional(p.Accuracy), optional(p.Speed), optional(p.Heading))
	})
}

// AppendLedger appends ledger entries and returns how many were new; an
// entry whose ID is in the ledger already is dropped, never rewritten.
func (w writer) AppendLedger(ctx context.Context, es []archive.Entry) (int64, error) {
	for i, e := range es {
		if err := e.Validate(); err != nil {
			return 0, fmt.Errorf("archive: ledger entry %d: %w", i, err)
		}
	}
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b archive.Entry) int { return strings.Compare(a.ID, b.ID) })
	return w.insert(ctx, ledgerTable, len(es), func(args []any, i int) []any {
		e := es[i]
		return append(args, e.ID, e.Kind, e.PaymentID, e.TripID, e.Amount, e.Currency, e.Status, e.Outcome,
			archive.Micros(e.At), jsonText(e.Body))
	})
}

// AppendStatuses archives driver status changes and returns how many were
// new.
func (w writer) AppendStatuses(ctx context.Context, cs []archive.StatusChange) (int64, error) {
	for i, c := range cs {
		if err := c.Validate(); err != nil {
			return 0, fmt.Errorf("archive: status change %d: %w", i, err)
		}
	}
	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b archive.StatusChange) int {
		return cmp.Or(strings.Compare(a.DriverID, b.DriverID), a.At.Compare(b.At), strings.Compare(a.Status, b.Status))
	})
	return w.insert(ctx, statusTable, len(cs), func(args []any, i int) []any {
		c := cs[i]
		return append(args, c.DriverID, archive.Micros(c.At), c.Status, c.TripID)
	})
}

// Prune enforces retention: it deletes the events, trail points and driver
// status changes older than before, a batch at a time. Trips and the
// ledger are the record (receipts, disputes, accounting) and are kept.
func (w writer) Prune(ctx context.Context, before time.Time) (archive.PruneResult, error) {
	us := archive.Micros(before)
	var res archive.PruneResult
	for _, p := range []struct {
		n            *int64
		table, query string
	}{
		{&res.Events, "events", `DELETE FROM events WHERE (topic, id_ms, id_seq) IN
			(SELECT topic, id_ms, id_seq FROM events WHERE ts_us < $1 LIMIT $2)`},
		{&res.Points, "trail_points", `DELETE FROM trail_points WHERE (trip_id, seq) IN
			(SELECT trip_id, seq FROM trail_points WHERE ts_us < $1 LIMIT $2)`},
		{&res.StatusChanges, "driver_status", `DELETE FROM driver_status WHERE (driver_id, at_us, status) IN
			(SELECT driver_id, at_us, status FROM driver_status WHERE at_us < $1 LIMIT $2)`},
	} {
		for {
			n, err := w.exec(ctx, p.query, us, pruneBatch)
			*p.n += n
			if err != nil {
				return res, fmt.Errorf("archive: prune %s: %w", p.table, err)
			}
			if n < pruneBatch {
				break
			}
		}
	}
	return res, nil
}

func (w writer) lock() func() {
	if w.mu == nil {
		return func() {}
	}
	w.mu.Lock()
	return w.mu.Unlock
}

func (w writer) exec(ctx context.Context, q string, args ...any) (int64, error) {
	defer w.lock()()
	r, err := w.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// insert writes n rows into t, maxRows per statement, all in one
// transaction when there are several statements; row appends row i's
// values to args. It returns the rows affected.
func (w writer) insert(ctx context.Context, t table, n int, row func(args []any, i int) []any) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	defer w.lock()()
	var ex interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	} = w.db
	var tx *sql.Tx
	if n > maxRows {
		var err error
		if tx, err = w.db.BeginTx(ctx, nil); err != nil {
			return 0, fmt.Errorf("archive: %s: begin: %w", t.name, err)
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		ex = tx
	}
	var total int64
	args := make([]any, 0, min(n, maxRows)*len(t.cols))
	for start := 0; start < n; start += maxRows {
		k := min(maxRows, n-start)
		args = args[:0]
		for i := start; i < start+k; i++ {
			args = row(args, i)
		}
		r, err := ex.ExecContext(ctx, t.insertSQL(k, w.anon), args...)
		if err != nil {
			return 0, fmt.Errorf("archive: insert into %s: %w", t.name, err)
		}
		m, err := r.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("archive: insert into %s: %w", t.name, err)
		}
		total += m
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("archive: %s: commit: %w", t.name, err)
		}
	}
	return total, nil
}

// insertSQL is "INSERT INTO t (cols) VALUES ($1,…),(…) <conflict>" for k
// rows; with anon, the placeholders are "?" instead. SQLite needs those:
// it takes "$1" as a name and looks each new name up in a list, which makes
// parsing a 500-row INSERT quadratic (310 ms instead of 12 ms).
func (t table) insertSQL(k int, anon bool) string {
	var b strings.Builder
	b.Grow(64 + k*len(t.cols)*7)
	b.WriteString("INSERT INTO ")
	b.WriteString(t.name)
	b.WriteString(" (")
	b.WriteString(strings.Join(t.cols, ", "))
	b.WriteString(") VALUES ")
	n := 0
	for r := 0; r < k; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range t.cols {
			if c > 0 {
				b.WriteByte(',')
			}
			n++
			if anon {
				b.WriteByte('?')
				continue
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		}
		b.WriteByte(')')
	}
	b.WriteByte(' ')
	b.WriteString(t.conflict)
	return b.String()
}

// jsonText is JSON as stored: text, "null" for none.
func jsonText(b []byte) string {
	if b == nil {
		return "null"
	}
	return string(b)
}

func optional(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

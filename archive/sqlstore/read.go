package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hextrack/hextrack/archive"
)

// reader holds the archive's queries. Each is one statement outside any
// transaction: on SQLite (WAL) and PostgreSQL alike it sees a consistent
// snapshot and never waits for a writer.
type reader struct {
	db *sql.DB
}

const tripColumns = "id, kind, rider_id, driver_id, status, version, created_us, updated_us, ended_us, fare, currency, distance_m, snapshot"

// ListTrips returns a page of trips, newest first (created time, then ID,
// both descending), filtered by q. The query is checked first
// (archive.TripQuery.Normalize): a bad cursor, range or limit is its
// sentinel error and reads nothing.
func (r reader) ListTrips(ctx context.Context, q archive.TripQuery) (archive.TripPage, error) {
	after, err := q.Normalize()
	if err != nil {
		return archive.TripPage{}, err
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	for _, f := range []struct{ col, v string }{{"rider_id", q.RiderID}, {"driver_id", q.DriverID}, {"status", q.Status}} {
		if f.v != "" {
			where = append(where, f.col+" = "+arg(f.v))
		}
	}
	if !q.From.IsZero() {
		where = append(where, "created_us >= "+arg(archive.Micros(q.From)))
	}
	if !q.To.IsZero() {
		where = append(where, "created_us < "+arg(archive.Micros(q.To)))
	}
	if !after.IsZero() {
		where = append(where, "(created_us, id) < ("+arg(archive.Micros(after.Time))+", "+arg(after.ID)+")")
	}
	query := "SELECT " + tripColumns + " FROM trips"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	// One more than a page tells whether there is a next page.
	query += " ORDER BY created_us DESC, id DESC LIMIT " + arg(q.Limit+1)
	trips, err := queryAll(ctx, r.db, "list trips", scanTrip, query, args...)
	if err != nil {
		return archive.TripPage{}, err
	}
	page := archive.TripPage{Trips: trips}
	if len(page.Trips) > q.Limit {
		page.Trips = page.Trips[:q.Limit]
		last := page.Trips[q.Limit-1]
		page.Next = archive.Cursor{Time: last.CreatedAt, ID: last.ID}.Encode()
	}
	return page, nil
}

// Trip returns a trip's record, or archive.ErrNotFound.
func (r reader) Trip(ctx context.Context, id string) (archive.Trip, error) {
	if !archive.ValidID(id) {
		return archive.Trip{}, fmt.Errorf("%w: trip id must be 1-64 of [A-Za-z0-9_-]", archive.ErrInvalid)
	}
	t, err := scanTrip(r.db.QueryRowContext(ctx, "SELECT "+tripColumns+" FROM trips WHERE id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return archive.Trip{}, fmt.Errorf("%w: trip %s", archive.ErrNotFound, id)
	}
	if err != nil {
		return archive.Trip{}, fmt.Errorf("archive: trip %s: %w", id, err)
	}
	return t, nil
}

// Events returns a topic's events after q.After, oldest first, at most
// q.Limit: the feed's order and IDs. An empty result means nothing newer
// is archived.
func (r reader) Events(ctx context.Context, q archive.EventQuery) ([]archive.Event, error) {
	after, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, r.db, "events of "+q.Topic, func(row scanner) (archive.Event, error) {
		var (
			id   archive.EventID
			ts   int64
			data string
			ev   = archive.Event{Topic: q.Topic}
		)
		err := row.Scan(&id.Ms, &id.Seq, &ev.Type, &ev.TripID, &ts, &data)
		ev.ID, ev.TS, ev.Data = id.String(), archive.Time(ts), []byte(data)
		return ev, err
	}, `SELECT id_ms, id_seq, type, trip_id, ts_us, data FROM events
		WHERE topic = $1 AND (id_ms, id_seq) > ($2, $3) ORDER BY id_ms, id_seq LIMIT $4`,
		q.Topic, after.Ms, after.Seq, q.Limit)
}

// Trail returns a trip's trail points after q.After, in sequence order, at
// most q.Limit.
func (r reader) Trail(ctx context.Context, q archive.TrailQuery) ([]archive.Point, error) {
	if err := q.Normalize(); err != nil {
		return nil, err
	}
	return queryAll(ctx, r.db, "trail of "+q.TripID, func(row scanner) (archive.Point, error) {
		var (
			p       = archive.Point{TripID: q.TripID}
			ts      int64
			a, s, h sql.NullFloat64
		)
		err := row.Scan(&p.Seq, &p.DriverID, &p.Lat, &p.Lng, &ts, &a, &s, &h)
		p.TS, p.Accuracy, p.Speed, p.Heading = archive.Time(ts), ptr(a), ptr(s), ptr(h)
		return p, err
	}, `SELECT seq, driver_id, lat, lng, ts_us, accuracy_m, speed_mps, heading
		FROM trail_points WHERE trip_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, q.TripID, q.After, q.Limit)
}

// Ledger returns the ledger entries of a trip in the order they were
// recorded (time, then ID), at most archive.MaxLedgerEntries.
func (r reader) Ledger(ctx context.Context, tripID string) ([]archive.Entry, error) {
	if !archive.ValidID(tripID) {
		return nil, fmt.Errorf("%w: trip id must be 1-64 of [A-Za-z0-9_-]", archive.ErrInvalid)
	}
	return queryAll(ctx, r.db, "ledger of "+tripID, func(row scanner) (archive.Entry, error) {
		var (
			e    = archive.Entry{TripID: tripID}
			at   int64
			body string
		)
		err := row.Scan(&e.ID, &e.Kind, &e.PaymentID, &e.Amount, &e.Currency, &e.Status, &e.Outcome, &at, &body)
		e.At, e.Body = archive.Time(at), []byte(body)
		return e, err
	}, `SELECT id, kind, payment_id, amount, currency, status, outcome, at_us, body
		FROM ledger WHERE trip_id = $1 ORDER BY at_us, id LIMIT $2`, tripID, archive.MaxLedgerEntries)
}

// DriverDays returns, per UTC day of [q.From, q.To) on which the driver had
// trips (by created time), newest first: how many trips the driver
// currently holds, how many completed and their archived distance.
func (r reader) DriverDays(ctx context.Context, q archive.DriverQuery) ([]archive.Day, error) {
	if err := q.Normalize(); err != nil {
		return nil, err
	}
	const day = int64(24 * time.Hour / time.Microsecond) // in the SQL below
	return queryAll(ctx, r.db, "days of "+q.DriverID, func(row scanner) (archive.Day, error) {
		var (
			d archive.Day
			n int64
		)
		err := row.Scan(&n, &d.Trips, &d.Completed, &d.DistanceM)
		d.Date = archive.Time(n * day)
		return d, err
	}, `SELECT created_us / 86400000000 AS day, COUNT(*), SUM(CASE WHEN status = $1 THEN 1 ELSE 0 END), SUM(distance_m)
		FROM trips WHERE driver_id = $2 AND created_us >= $3 AND created_us < $4
		GROUP BY created_us / 86400000000 ORDER BY day DESC`,
		archive.StatusCompleted, q.DriverID, archive.Micros(q.From), archive.Micros(q.To))
}

// Shifts returns the driver's shifts (online spans) that overlap [q.From,
// q.To), oldest first, derived from the status history: a shift starts at
// a change from offline (or no status) to any other status and ends at the
// next change to offline. A shift under way at q.From starts at q.From; one
// not ended by q.To has a zero End.
func (r reader) Shifts(ctx context.Context, q archive.DriverQuery) ([]archive.Shift, error) {
	if err := q.Normalize(); err != nil {
		return nil, err
	}
	from, to := archive.Micros(q.From), archive.Micros(q.To)
	var before string
	err := r.db.QueryRowContext(ctx, `SELECT status FROM driver_status WHERE driver_id = $1 AND at_us < $2
		ORDER BY at_us DESC LIMIT 1`, q.DriverID, from).Scan(&before)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("archive: shifts of %s: %w", q.DriverID, err)
	}
	type change struct {
		at     int64
		status string
	}
	changes, err := queryAll(ctx, r.db, "shifts of "+q.DriverID, func(row scanner) (change, error) {
		var c change
		return c, row.Scan(&c.at, &c.status)
	}, `SELECT at_us, status FROM driver_status WHERE driver_id = $1 AND at_us >= $2 AND at_us < $3
		ORDER BY at_us, status`, q.DriverID, from, to)
	if err != nil {
		return nil, err
	}
	var (
		shifts []archive.Shift
		online = archive.Online(before)
		start  = from
	)
	for _, c := range changes {
		switch now := archive.Online(c.status); {
		case now && !online:
			online, start = true, c.at
		case !now && online:
			online = false
			shifts = append(shifts, archive.Shift{DriverID: q.DriverID, Start: archive.Time(start), End: archive.Time(c.at)})
		}
	}
	if online {
		shifts = append(shifts, archive.Shift{DriverID: q.DriverID, Start: archive.Time(start)})
	}
	return shifts, nil
}

type scanner interface{ Scan(dest ...any) error }

// queryAll runs a query and scans every row; what names the query in
// errors.
func queryAll[T any](ctx context.Context, db *sql.DB, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("archive: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: %s: %w", what, err)
	}
	return out, nil
}

func scanTrip(s scanner) (archive.Trip, error) {
	var (
		t                archive.Trip
		created, updated int64
		ended            sql.NullInt64
		snapshot         sql.NullString
	)
	err := s.Scan(&t.ID, &t.Kind, &t.RiderID, &t.DriverID, &t.Status, &t.Version, &created, &updated, &ended,
		&t.Fare, &t.Currency, &t.DistanceM, &snapshot)
	if err != nil {
		return archive.Trip{}, err
	}
	t.CreatedAt, t.UpdatedAt = archive.Time(created), archive.Time(updated)
	if ended.Valid {
		t.EndedAt = archive.Time(ended.Int64)
	}
	if snapshot.Valid {
		t.Snapshot = []byte(snapshot.String)
	}
	return t, nil
}

func ptr(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	return &v.Float64
}

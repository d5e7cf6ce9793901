package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/hextrack/hextrack/archive"
)

// The NATS export's outbox (migration 00004, archive/natsexport's doc):
// every archived event is pending until MarkExported; the partial index
// events_nats_pending holds the pending ones in (id_ms, id_seq, topic)
// order. The query's "nats_exported = 0" must stay a literal: SQLite uses
// a partial index only when the query repeats its predicate.

// PendingExport returns up to limit archived events not yet marked
// exported, by event ID (time, then sequence) and topic: a topic's events
// come in the feed's order, and batch after batch, because the pipeline
// archives a topic's events in order.
func (s *Store) PendingExport(ctx context.Context, limit int) ([]archive.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit must be positive", archive.ErrInvalidLimit)
	}
	const q = `SELECT topic, id_ms, id_seq, type, trip_id, ts_us, data FROM events
		WHERE nats_exported = 0 ORDER BY id_ms, id_seq, topic LIMIT $1`
	if s.dialect != goose.DialectPostgres {
		return queryAll(ctx, s.db, "pending export", scanPending, q, limit)
	}
	// PostgreSQL, with no statistics on the flag yet (a new or just
	// migrated table) or stale ones (a backlog grown during a NATS
	// outage), may read every pending row and sort them for each batch.
	// Walking the partial index in order reads only the batch.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("archive: pending export: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to undo
	for _, set := range []string{"SET LOCAL enable_bitmapscan = off", "SET LOCAL enable_sort = off"} {
		if _, err := tx.ExecContext(ctx, set); err != nil {
			return nil, fmt.Errorf("archive: pending export: %w", err)
		}
	}
	rows, err := tx.QueryContext(ctx, q, limit)
	if err != nil {
		return nil, fmt.Errorf("archive: pending export: %w", err)
	}
	defer rows.Close()
	var evs []archive.Event
	for rows.Next() {
		ev, err := scanPending(rows)
		if err != nil {
			return nil, fmt.Errorf("archive: pending export: %w", err)
		}
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive: pending export: %w", err)
	}
	return evs, nil
}

func scanPending(row scanner) (archive.Event, error) {
	var (
		ev   archive.Event
		id   archive.EventID
		ts   int64
		data string
	)
	err := row.Scan(&ev.Topic, &id.Ms, &id.Seq, &ev.Type, &ev.TripID, &ts, &data)
	ev.ID, ev.TS, ev.Data = id.String(), archive.Time(ts), []byte(data)
	return ev, err
}

// markBatch bounds the events of one UPDATE on SQLite (3 parameters each).
const markBatch = 300

// MarkExported marks events (by topic and ID) exported; events no longer
// archived (pruned) are skipped. Marking twice is harmless.
func (s *Store) MarkExported(ctx context.Context, evs []archive.Event) error {
	keys := make([]archive.EventID, len(evs))
	for i, ev := range evs {
		id, err := archive.ParseEventID(ev.ID)
		if err != nil {
			return fmt.Errorf("archive: mark exported: %w", err)
		}
		keys[i] = id
	}
	if s.dialect == goose.DialectPostgres {
		// One statement: the keys as arrays, each looked up in the
		// primary key.
		topics, ms, seqs := make([]string, len(evs)), make([]int64, len(evs)), make([]int64, len(evs))
		for i, ev := range evs {
			topics[i], ms[i], seqs[i] = ev.Topic, keys[i].Ms, keys[i].Seq
		}
		_, err := s.exec(ctx, `UPDATE events SET nats_exported = 1
			FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS k(topic, ms, seq)
			WHERE events.topic = k.topic AND events.id_ms = k.ms AND events.id_seq = k.seq`, topics, ms, seqs)
		if err != nil {
			return fmt.Errorf("archive: mark exported: %w", err)
		}
		return nil
	}
	// SQLite: an OR of key equalities, each looked up in the primary key
	// (a row-value IN list would scan the whole table).
	args := make([]any, 0, 3*min(len(evs), markBatch))
	for start := 0; start < len(evs); start += markBatch {
		end := min(len(evs), start+markBatch)
		var b strings.Builder
		b.WriteString("UPDATE events SET nats_exported = 1 WHERE ")
		args = args[:0]
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(" OR ")
			}
			b.WriteString("(topic = ? AND id_ms = ? AND id_seq = ?)")
			args = append(args, evs[i].Topic, keys[i].Ms, keys[i].Seq)
		}
		if _, err := s.exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("archive: mark exported: %w", err)
		}
	}
	return nil
}

// LeaseExport takes or renews the export lease called name for holder
// until ttl from now, and reports whether holder has it: it is free, or
// already holder's, or its last holder let it expire. Nodes' clocks are
// compared: a clock ahead by d takes an expired lease d early.
func (s *Store) LeaseExport(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := time.Now()
	n, err := s.exec(ctx, `INSERT INTO nats_export (name, holder, until_us) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_us = excluded.until_us
		WHERE nats_export.holder = excluded.holder OR nats_export.until_us < $4`,
		name, holder, archive.Micros(now.Add(ttl)), archive.Micros(now))
	if err != nil {
		return false, fmt.Errorf("archive: export lease: %w", err)
	}
	return n == 1, nil
}

// ReleaseExport gives the lease back if holder has it, so another node
// takes it at once.
func (s *Store) ReleaseExport(ctx context.Context, name, holder string) error {
	if _, err := s.exec(ctx, `UPDATE nats_export SET until_us = 0 WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("archive: export lease: %w", err)
	}
	return nil
}

package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	return queryAll(ctx, s.db, "pending export", func(row scanner) (archive.Event, error) {
		var (
			ev   archive.Event
			id   archive.EventID
			ts   int64
			data string
		)
		err := row.Scan(&ev.Topic, &id.Ms, &id.Seq, &ev.Type, &ev.TripID, &ts, &data)
		ev.ID, ev.TS, ev.Data = id.String(), archive.Time(ts), []byte(data)
		return ev, err
	}, `SELECT topic, id_ms, id_seq, type, trip_id, ts_us, data FROM events
		WHERE nats_exported = 0 ORDER BY id_ms, id_seq, topic LIMIT $1`, limit)
}

// markBatch bounds the events of one UPDATE (3 parameters each).
const markBatch = 300

// MarkExported marks events (by topic and ID) exported; events no longer
// archived (pruned) are skipped. Marking twice is harmless.
func (s *Store) MarkExported(ctx context.Context, evs []archive.Event) error {
	args := make([]any, 0, 3*min(len(evs), markBatch))
	for start := 0; start < len(evs); start += markBatch {
		part := evs[start:min(len(evs), start+markBatch)]
		var b strings.Builder
		b.WriteString("UPDATE events SET nats_exported = 1 WHERE (topic, id_ms, id_seq) IN (")
		args = args[:0]
		for i, ev := range part {
			id, err := archive.ParseEventID(ev.ID)
			if err != nil {
				return fmt.Errorf("archive: mark exported: %w", err)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			if n := len(args); s.anon { // see insertSQL
				b.WriteString("(?,?,?)")
			} else {
				b.WriteString("($" + strconv.Itoa(n+1) + ",$" + strconv.Itoa(n+2) + ",$" + strconv.Itoa(n+3) + ")")
			}
			args = append(args, ev.Topic, id.Ms, id.Seq)
		}
		b.WriteByte(')')
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

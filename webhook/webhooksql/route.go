package webhooksql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/hextrack/hextrack/archive"
)

// router copies archived events into the delivery queues (the events
// table's webhook_routed flag is the outbox).
type router struct{ conn }

// tripTopic is the prefix of the topics whose events are delivered.
const tripTopic = "trip:"

// Route takes up to limit archived events not yet routed (oldest ID
// first), queues each trip event for every enabled endpoint whose filter
// matches and that existed when the event happened, and marks them
// routed, in one transaction. It returns how many events it read and the
// endpoints it queued deliveries for. Routing an event twice queues nothing
// more (unique per endpoint and event).
func (s router) Route(ctx context.Context, limit int) (int, []string, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("webhooks: route: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: nothing to undo
	if s.pg {
		// As sqlstore.PendingExport: walk the partial index in order.
		for _, set := range []string{"SET LOCAL enable_bitmapscan = off", "SET LOCAL enable_sort = off"} {
			if _, err := tx.ExecContext(ctx, set); err != nil {
				return 0, nil, fmt.Errorf("webhooks: route: %w", err)
			}
		}
	}
	// "webhook_routed = 0" stays a literal: SQLite uses a partial index
	// only when the query repeats its predicate.
	rows, err := tx.QueryContext(ctx, `SELECT topic, id_ms, id_seq, type, trip_id, ts_us, data FROM events
		WHERE webhook_routed = 0 ORDER BY id_ms, id_seq, topic LIMIT $1`, limit)
	if err != nil {
		return 0, nil, fmt.Errorf("webhooks: route: %w", err)
	}
	evs, err := scanEvents(rows)
	if err != nil {
		return 0, nil, fmt.Errorf("webhooks: route: %w", err)
	}
	if len(evs) == 0 {
		return 0, nil, nil
	}
	// The endpoints are read after the events, in the same transaction:
	// an endpoint created before these events were archived is seen. Read
	// before them (as it once was), an endpoint created while this step
	// waited for SQLite's write lock missed events stamped after its
	// creation, for good.
	eps, err := listEndpoints(ctx, tx)
	if err != nil {
		return 0, nil, err
	}
	var ds []row
	seen := map[string]bool{}
	var queued []string
	for _, ev := range evs {
		if !strings.HasPrefix(ev.Topic, tripTopic) {
			continue
		}
		for _, e := range eps {
			if !e.Enabled || !e.Filter.Match(ev.Type) || ev.TS.Before(e.CreatedAt) {
				continue
			}
			ds = append(ds, row{endpoint: e.ID, ev: ev})
			if !seen[e.ID] {
				seen[e.ID] = true
				queued = append(queued, e.ID)
			}
		}
	}
	if err := insertDeliveries(ctx, tx, ds, false); err != nil {
		return 0, nil, err
	}
	if err := s.markRouted(ctx, tx, evs); err != nil {
		return 0, nil, err
	}
	if err := tx.Commit(); err != nil {
		return 0, nil, fmt.Errorf("webhooks: route: %w", err)
	}
	return len(evs), queued, nil
}

// row is one event to queue for one endpoint.
type row struct {
	endpoint string
	ev       archiveEvent
}

type archiveEvent struct {
	archive.Event
	id archive.EventID
}

func scanEvents(rows *sql.Rows) ([]archiveEvent, error) {
	defer rows.Close()
	var out []archiveEvent
	for rows.Next() {
		var (
			ev   archiveEvent
			ts   int64
			data string
		)
		if err := rows.Scan(&ev.Topic, &ev.id.Ms, &ev.id.Seq, &ev.Type, &ev.TripID, &ts, &data); err != nil {
			return nil, err
		}
		ev.ID, ev.TS, ev.Data = ev.id.String(), archive.Time(ts), []byte(data)
		out = append(out, ev)
	}
	return out, rows.Err()
}

// insertBatch bounds the rows of one INSERT (8 parameters each).
const insertBatch = 400

// insertDeliveries queues ds; replay=true queues an event delivered or
// dead-lettered before again (pending, attempts reset, gen+1).
func insertDeliveries(ctx context.Context, tx *sql.Tx, ds []row, replay bool) error {
	conflict := ` ON CONFLICT (endpoint_id, topic, id_ms, id_seq) DO NOTHING`
	if replay {
		conflict = ` ON CONFLICT (endpoint_id, topic, id_ms, id_seq) DO UPDATE SET state = 'pending',
			gen = webhook_deliveries.gen + 1, attempts = 0, first_attempt_us = 0, done_us = 0, next_attempt_us = 0`
	}
	for start := 0; start < len(ds); start += insertBatch {
		end := min(len(ds), start+insertBatch)
		var b strings.Builder
		b.WriteString(`INSERT INTO webhook_deliveries (endpoint_id, topic, id_ms, id_seq, type, trip_id, ts_us, data) VALUES `)
		args := make([]any, 0, 8*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			n := len(args)
			fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8)
			ev := ds[i].ev
			args = append(args, ds[i].endpoint, ev.Topic, ev.id.Ms, ev.id.Seq, ev.Type, ev.TripID, archive.Micros(ev.TS), string(ev.Data))
		}
		b.WriteString(conflict)
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("webhooks: queue deliveries: %w", err)
		}
	}
	return nil
}

// markBatch bounds the events of one UPDATE on SQLite (3 parameters each).
const markBatch = 300

func (s router) markRouted(ctx context.Context, tx *sql.Tx, evs []archiveEvent) error {
	if s.pg {
		topics, ms, seqs := make([]string, len(evs)), make([]int64, len(evs)), make([]int64, len(evs))
		for i, ev := range evs {
			topics[i], ms[i], seqs[i] = ev.Topic, ev.id.Ms, ev.id.Seq
		}
		if _, err := tx.ExecContext(ctx, `UPDATE events SET webhook_routed = 1
			FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS k(topic, ms, seq)
			WHERE events.topic = k.topic AND events.id_ms = k.ms AND events.id_seq = k.seq`, topics, ms, seqs); err != nil {
			return fmt.Errorf("webhooks: mark routed: %w", err)
		}
		return nil
	}
	for start := 0; start < len(evs); start += markBatch {
		end := min(len(evs), start+markBatch)
		var b strings.Builder
		b.WriteString("UPDATE events SET webhook_routed = 1 WHERE ")
		args := make([]any, 0, 3*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(" OR ")
			}
			b.WriteString("(topic = ? AND id_ms = ? AND id_seq = ?)")
			args = append(args, evs[i].Topic, evs[i].id.Ms, evs[i].id.Seq)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("webhooks: mark routed: %w", err)
		}
	}
	return nil
}

package webhooksql

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/webhook"
)

// deliveryLog is the delivery log read back, and replays.
type deliveryLog struct{ conn }

// Deliveries pages an endpoint's delivery log, newest event first, by a
// keyset cursor (the last row's event ID and topic).
func (s deliveryLog) Deliveries(ctx context.Context, q webhook.LogQuery) (webhook.LogPage, error) {
	limit := q.Limit
	switch {
	case limit == 0:
		limit = 50
	case limit < 0 || limit > 200:
		return webhook.LogPage{}, fmt.Errorf("%w: limit must be 1-200", webhook.ErrInvalid)
	}
	args := []any{q.EndpointID}
	where := "endpoint_id = $1"
	if q.Cursor != "" {
		id, topic, err := parseCursor(q.Cursor)
		if err != nil {
			return webhook.LogPage{}, err
		}
		args = append(args, id.Ms, id.Seq, topic)
		where += " AND (id_ms, id_seq, topic) < ($2, $3, $4)"
	}
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries WHERE `+where+ //nolint:gosec // fixed SQL fragments; values are placeholders
		fmt.Sprintf(` ORDER BY id_ms DESC, id_seq DESC, topic DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return webhook.LogPage{}, fmt.Errorf("webhooks: deliveries: %w", err)
	}
	defer rows.Close()
	var page webhook.LogPage
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return webhook.LogPage{}, fmt.Errorf("webhooks: deliveries: %w", err)
		}
		page.Deliveries = append(page.Deliveries, d)
	}
	if err := rows.Err(); err != nil {
		return webhook.LogPage{}, fmt.Errorf("webhooks: deliveries: %w", err)
	}
	if len(page.Deliveries) > limit {
		page.Deliveries = page.Deliveries[:limit]
		last := page.Deliveries[limit-1].Event
		page.Next = base64.RawURLEncoding.EncodeToString([]byte(last.ID + "|" + last.Topic))
	}
	return page, nil
}

func parseCursor(c string) (archive.EventID, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	idText, topic, ok := strings.Cut(string(b), "|")
	id, perr := archive.ParseEventID(idText)
	if err != nil || !ok || perr != nil || topic == "" {
		return archive.EventID{}, "", fmt.Errorf("%w: malformed cursor", webhook.ErrInvalid)
	}
	return id, topic, nil
}

// replayBatch is how many archived events one step of a replay reads.
const replayBatch = 1000

// Replay queues again, for endpoint e, every archived trip event its
// filter matches from the starting point on (an event ID: that event and
// the later ones by time and sequence; a time: events at or after it),
// resetting deliveries made before (pending again, gen+1), in batches of
// one transaction each. It returns how many it queued.
func (s deliveryLog) Replay(ctx context.Context, e webhook.Endpoint, from webhook.ReplayFrom) (int64, error) {
	var pos archive.EventID
	if from.EventID != "" {
		id, err := archive.ParseEventID(from.EventID)
		if err != nil {
			return 0, fmt.Errorf("%w: from_event %q is not an event id (<ms>-<seq>)", webhook.ErrInvalid, clip(from.EventID))
		}
		pos = id
	}
	var (
		total int64
		after struct {
			id    archive.EventID
			topic string
			set   bool
		}
	)
	for {
		args := []any{tripTopic + "%"}
		where := "topic LIKE $1"
		switch {
		case after.set:
			args = append(args, after.id.Ms, after.id.Seq, after.topic)
			where += " AND (id_ms, id_seq, topic) > ($2, $3, $4)"
		case from.EventID != "":
			args = append(args, pos.Ms, pos.Seq)
			where += " AND (id_ms, id_seq) >= ($2, $3)"
		default:
			args = append(args, archive.Micros(from.Time))
			where += " AND ts_us >= $2"
		}
		if !from.Time.IsZero() && after.set {
			args = append(args, archive.Micros(from.Time))
			where += fmt.Sprintf(" AND ts_us >= $%d", len(args))
		}
		args = append(args, replayBatch)
		rows, err := s.db.QueryContext(ctx, `SELECT topic, id_ms, id_seq, type, trip_id, ts_us, data FROM events WHERE `+ //nolint:gosec // fixed SQL fragments; values are placeholders
			where+fmt.Sprintf(` ORDER BY id_ms, id_seq, topic LIMIT $%d`, len(args)), args...)
		if err != nil {
			return total, fmt.Errorf("webhooks: replay: %w", err)
		}
		evs, err := scanEvents(rows)
		if err != nil {
			return total, fmt.Errorf("webhooks: replay: %w", err)
		}
		var ds []row
		for _, ev := range evs {
			if e.Filter.Match(ev.Type) {
				ds = append(ds, row{endpoint: e.ID, ev: ev})
			}
		}
		if err := s.inTx(ctx, func(tx *sql.Tx) error { return insertDeliveries(ctx, tx, ds, true) }); err != nil {
			return total, err
		}
		total += int64(len(ds))
		if len(evs) < replayBatch {
			return total, nil
		}
		last := evs[len(evs)-1]
		after.id, after.topic, after.set = last.id, last.Topic, true
	}
}

func (s conn) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: nothing to undo
	if err := f(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	return nil
}

// pruneBatch bounds the rows one DELETE of PruneLog removes.
const pruneBatch = 5000

// PruneLog deletes deliveries delivered or dead-lettered before before
// (the log's retention), a batch at a time; pending ones are kept.
func (s deliveryLog) PruneLog(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.exec(ctx, `DELETE FROM webhook_deliveries WHERE (endpoint_id, topic, id_ms, id_seq) IN
			(SELECT endpoint_id, topic, id_ms, id_seq FROM webhook_deliveries
			WHERE state <> 'pending' AND done_us > 0 AND done_us < $1 LIMIT $2)`, archive.Micros(before), pruneBatch)
		if err != nil {
			return total, fmt.Errorf("webhooks: prune log: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

package webhooksql

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/webhook"
)

// queues are the delivery queues: heads, claims, attempts.
type queues struct{ conn }

// Heads returns the head (oldest pending delivery) of every queue with
// pending deliveries: of one endpoint when endpointID is not "", of the
// given topics when topics is not empty, of all otherwise.
func (s queues) Heads(ctx context.Context, endpointID string, topics []string) ([]webhook.Head, error) {
	var (
		where strings.Builder
		args  []any
	)
	where.WriteString("state = 'pending'")
	if endpointID != "" {
		args = append(args, endpointID)
		fmt.Fprintf(&where, " AND endpoint_id = $%d", len(args))
	}
	if len(topics) > 0 {
		where.WriteString(" AND topic IN (")
		for i, t := range topics {
			if i > 0 {
				where.WriteString(", ")
			}
			args = append(args, t)
			fmt.Fprintf(&where, "$%d", len(args))
		}
		where.WriteString(")")
	}
	//nolint:gosec // fixed SQL fragments; values are placeholders
	rows, err := s.db.QueryContext(ctx, `SELECT endpoint_id, topic, id_ms, id_seq, gen FROM (
		SELECT endpoint_id, topic, id_ms, id_seq, gen,
			ROW_NUMBER() OVER (PARTITION BY endpoint_id, topic ORDER BY id_ms, id_seq) AS rn
		FROM webhook_deliveries WHERE `+where.String()+`) h WHERE rn = 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("webhooks: heads: %w", err)
	}
	defer rows.Close()
	var out []webhook.Head
	for rows.Next() {
		var (
			h  webhook.Head
			id archive.EventID
		)
		if err := rows.Scan(&h.EndpointID, &h.Topic, &id.Ms, &id.Seq, &h.Gen); err != nil {
			return nil, fmt.Errorf("webhooks: heads: %w", err)
		}
		h.EventID = id.String()
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: heads: %w", err)
	}
	return out, nil
}

// Head returns the head of one queue (ok false: nothing pending).
func (s queues) Head(ctx context.Context, endpointID, topic string) (webhook.Head, bool, error) {
	var id archive.EventID
	h := webhook.Head{EndpointID: endpointID, Topic: topic}
	err := s.db.QueryRowContext(ctx, `SELECT id_ms, id_seq, gen FROM webhook_deliveries
		WHERE state = 'pending' AND endpoint_id = $1 AND topic = $2 ORDER BY id_ms, id_seq LIMIT 1`,
		endpointID, topic).Scan(&id.Ms, &id.Seq, &h.Gen)
	if errors.Is(err, sql.ErrNoRows) {
		return h, false, nil
	}
	if err != nil {
		return h, false, fmt.Errorf("webhooks: head: %w", err)
	}
	h.EventID = id.String()
	return h, true, nil
}

const deliveryCols = `endpoint_id, topic, id_ms, id_seq, type, trip_id, ts_us, data, state, gen, attempts,
	first_attempt_us, last_attempt_us, status_code, latency_us, error, response, done_us`

// Delivery returns one delivery (webhook.ErrNotFound).
func (s queues) Delivery(ctx context.Context, endpointID, topic, eventID string) (webhook.Delivery, error) {
	id, err := archive.ParseEventID(eventID)
	if err != nil {
		return webhook.Delivery{}, fmt.Errorf("%w: event id: %w", webhook.ErrInvalid, err)
	}
	d, err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries
		WHERE endpoint_id = $1 AND topic = $2 AND id_ms = $3 AND id_seq = $4`, endpointID, topic, id.Ms, id.Seq))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("%w: no delivery %s of %s", webhook.ErrNotFound, eventID, endpointID)
	}
	if err != nil {
		return d, fmt.Errorf("webhooks: delivery: %w", err)
	}
	return d, nil
}

func scanDelivery(r scanner) (webhook.Delivery, error) {
	var (
		d                                webhook.Delivery
		id                               archive.EventID
		ts, first, last, lat, done, code int64
		data                             string
	)
	err := r.Scan(&d.EndpointID, &d.Event.Topic, &id.Ms, &id.Seq, &d.Event.Type, &d.TripID, &ts, &data, &d.State,
		&d.Gen, &d.Attempts, &first, &last, &code, &lat, &d.Error, &d.Response, &done)
	d.Event.ID, d.Event.TS, d.Event.Data = id.String(), archive.Time(ts), []byte(data)
	d.FirstAttempt, d.LastAttempt, d.Done = timeOf(first), timeOf(last), timeOf(done)
	d.StatusCode, d.Latency = int(code), time.Duration(lat)*time.Microsecond
	return d, err
}

// Claim takes up to limit heads of an endpoint's queues that are due (a
// next attempt at or before now), oldest event first, if the endpoint
// is enabled and not paused, and holds them
// until until: no other Claim returns them before (a node that died
// holding one leaves it due again then). A queue's later delivery is
// never returned while an earlier one is pending.
func (s queues) Claim(ctx context.Context, endpointID string, now, until time.Time, limit int) ([]webhook.Delivery, error) {
	// The oldest due rows first (index webhook_deliveries_due, whose
	// predicate the literal "next_attempt_us >= 0" repeats), each only if
	// it is its queue's head: a correlated subquery (LIMIT keeps
	// PostgreSQL from making it a join), so the outer row's topic is a
	// parameter of a probe of webhook_deliveries_pending, whatever the
	// statistics say. No scan of the whole backlog.
	rows, err := s.db.QueryContext(ctx, `UPDATE webhook_deliveries SET next_attempt_us = $1
		WHERE (endpoint_id, topic, id_ms, id_seq) IN (SELECT d.endpoint_id, d.topic, d.id_ms, d.id_seq
			FROM webhook_deliveries d
			WHERE d.endpoint_id = $2 AND d.state = 'pending' AND d.next_attempt_us >= 0 AND d.next_attempt_us <= $3
			AND (d.id_ms, d.id_seq) = (SELECT p.id_ms, p.id_seq FROM webhook_deliveries p
				WHERE p.endpoint_id = $2 AND p.topic = d.topic AND p.state = 'pending'
				ORDER BY p.id_ms, p.id_seq LIMIT 1)
			AND EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $2 AND enabled = 1 AND paused = 0)
			ORDER BY d.id_ms, d.id_seq LIMIT $4)
		AND state = 'pending' AND next_attempt_us <= $3
		RETURNING `+deliveryCols, archive.Micros(until), endpointID, archive.Micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: claim: %w", err)
	}
	defer rows.Close()
	var out []webhook.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("webhooks: claim: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: claim: %w", err)
	}
	slices.SortFunc(out, func(a, b webhook.Delivery) int { return compareIDs(a.Event.ID, b.Event.ID) })
	return out, nil
}

// compareIDs orders event IDs by time, then sequence.
func compareIDs(a, b string) int {
	x, _ := archive.ParseEventID(a)
	y, _ := archive.ParseEventID(b)
	if c := cmp.Compare(x.Ms, y.Ms); c != 0 {
		return c
	}
	return cmp.Compare(x.Seq, y.Seq)
}

// NextDue returns when the earliest head of an endpoint's queues is due
// (ok false: nothing is pending). A claimed head is due when its claim
// ends.
func (s queues) NextDue(ctx context.Context, endpointID string) (time.Time, bool, error) {
	var next sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(d.next_attempt_us) FROM webhook_deliveries d
		WHERE d.endpoint_id = $1 AND d.state = 'pending'
		AND (d.id_ms, d.id_seq) = (SELECT p.id_ms, p.id_seq FROM webhook_deliveries p
			WHERE p.endpoint_id = $1 AND p.topic = d.topic AND p.state = 'pending'
			ORDER BY p.id_ms, p.id_seq LIMIT 1)`, endpointID).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("webhooks: next due: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return archive.Time(next.Int64), true, nil
}

// PendingEndpoints returns the endpoints with pending deliveries.
func (s queues) PendingEndpoints(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT endpoint_id FROM webhook_deliveries WHERE state = 'pending'`)
	if err != nil {
		return nil, fmt.Errorf("webhooks: pending endpoints: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("webhooks: pending endpoints: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: pending endpoints: %w", err)
	}
	return out, nil
}

// Record stores an attempt of delivery d (at generation d.Gen; a replay
// since then makes it a no-op, reported false) and its endpoint's failure
// run: cleared by a success, started by a failure. It returns the
// endpoint's FailingSince after it.
func (s queues) Record(ctx context.Context, d webhook.Delivery, o webhook.Outcome) (bool, time.Time, error) {
	ok, since, err := s.RecordAll(ctx, []webhook.Delivery{d}, []webhook.Outcome{o})
	if err != nil {
		return false, time.Time{}, err
	}
	return ok[0], since, nil
}

// RecordAll stores the attempts of deliveries ds of one endpoint (each at
// its generation; a replay since makes it a no-op, reported false) and
// the endpoint's failure run, at once: its outcomes, in time order, clear
// the run (a success) or start it (a failure). It returns which were
// recorded and the endpoint's FailingSince after them.
func (s queues) RecordAll(ctx context.Context, ds []webhook.Delivery, os []webhook.Outcome) ([]bool, time.Time, error) {
	if len(ds) != len(os) {
		return nil, time.Time{}, fmt.Errorf("webhooks: record: %d deliveries, %d outcomes", len(ds), len(os))
	}
	if len(ds) == 0 {
		return nil, time.Time{}, nil
	}
	rs := make([]recordRow, len(ds))
	for i, d := range ds {
		if d.EndpointID != ds[0].EndpointID {
			return nil, time.Time{}, fmt.Errorf("%w: deliveries of several endpoints recorded at once", webhook.ErrInvalid)
		}
		r, err := newRecordRow(d, os[i])
		if err != nil {
			return nil, time.Time{}, err
		}
		rs[i] = r
	}
	// The failure run after these attempts: each one tells the endpoint's
	// health, recorded or not.
	order := make([]int, len(os))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return os[a].At.Compare(os[b].At) })
	run := failureRun{}
	for _, i := range order {
		switch {
		case os[i].Result.OK():
			run.succeeded, run.since = true, 0
		case run.since == 0:
			run.since = archive.Micros(os[i].At)
		}
	}
	var (
		recorded []bool
		since    int64
		err      error
	)
	if s.pg {
		recorded, since, err = recordPG(ctx, s.db, ds[0].EndpointID, rs, run)
	} else {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			recorded, since, err = recordEach(ctx, tx, ds[0].EndpointID, rs, run)
			return err
		})
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("webhooks: record: %w", err)
	}
	return recorded, timeOf(since), nil
}

// failureRun is what a batch of attempts does to an endpoint's failure
// run: with a success, the run is since (0: none, the last attempt
// succeeded); without, a run starts at since unless one is on.
type failureRun struct {
	succeeded bool
	since     int64
}

// recordRow is one attempt's values, as stored.
type recordRow struct {
	state, err, resp         string
	at, code, lat, done, nxt int64
	topic                    string
	id                       archive.EventID
	gen                      int64
}

func newRecordRow(d webhook.Delivery, o webhook.Outcome) (recordRow, error) {
	id, err := archive.ParseEventID(d.Event.ID)
	if err != nil {
		return recordRow{}, fmt.Errorf("%w: event id: %w", webhook.ErrInvalid, err)
	}
	r := recordRow{state: o.State, resp: o.Result.Response, at: archive.Micros(o.At), code: int64(o.Result.StatusCode),
		lat: o.Result.Latency.Microseconds(), nxt: micros(o.NextAttempt), topic: d.Event.Topic, id: id, gen: d.Gen}
	if o.State != webhook.StatePending {
		r.done = r.at
	}
	if o.Result.Err != nil {
		r.err = clipErr(o.Result.Err.Error())
	}
	return r, nil
}

// recordEach updates the rows one statement each, then the endpoint's
// failure run, in tx (SQLite: in process, one writer).
func recordEach(ctx context.Context, tx *sql.Tx, endpointID string, rs []recordRow, run failureRun) ([]bool, int64, error) {
	st, err := tx.PrepareContext(ctx, `UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1,
		first_attempt_us = CASE WHEN first_attempt_us = 0 THEN $2 ELSE first_attempt_us END,
		last_attempt_us = $2, status_code = $3, latency_us = $4, error = $5, response = $6, done_us = $7,
		next_attempt_us = $8
		WHERE endpoint_id = $9 AND topic = $10 AND id_ms = $11 AND id_seq = $12 AND gen = $13 AND state = 'pending'`)
	if err != nil {
		return nil, 0, err
	}
	defer st.Close()
	out := make([]bool, len(rs))
	for i, r := range rs {
		res, err := st.ExecContext(ctx, r.state, r.at, r.code, r.lat, r.err, r.resp, r.done, r.nxt,
			endpointID, r.topic, r.id.Ms, r.id.Seq, r.gen)
		if err != nil {
			return nil, 0, err
		}
		n, _ := res.RowsAffected()
		out[i] = n > 0
	}
	if run.succeeded {
		_, err = tx.ExecContext(ctx, `UPDATE webhook_endpoints SET failing_since_us = $1 WHERE id = $2 AND failing_since_us <> $1`, run.since, endpointID)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE webhook_endpoints SET failing_since_us = $1 WHERE id = $2 AND failing_since_us = 0`, run.since, endpointID)
	}
	if err != nil {
		return nil, 0, err
	}
	var since int64
	if err := tx.QueryRowContext(ctx, `SELECT failing_since_us FROM webhook_endpoints WHERE id = $1`, endpointID).Scan(&since); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, 0, err
	}
	return out, since, nil
}

// recordPG updates the rows and the endpoint's failure run in one
// statement (PostgreSQL: one round trip, atomic without a transaction).
func recordPG(ctx context.Context, db *sql.DB, endpointID string, rs []recordRow, run failureRun) ([]bool, int64, error) {
	n := len(rs)
	var (
		states, errs, resps, topics = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		at, code, lat, done, nxt    = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		ms, seq, gen                = make([]int64, n), make([]int64, n), make([]int64, n)
	)
	eps := make([]string, n)
	for i, r := range rs {
		eps[i] = endpointID
		states[i], errs[i], resps[i], topics[i] = r.state, r.err, r.resp, r.topic
		at[i], code[i], lat[i], done[i], nxt[i] = r.at, r.code, r.lat, r.done, r.nxt
		ms[i], seq[i], gen[i] = r.id.Ms, r.id.Seq, r.gen
	}
	// The last row is the endpoint's failing_since_us after the statement
	// (id_ms -1). The rows are joined on every key column from the array
	// (the endpoint too, not a constant): the planner then looks each up
	// by the primary key, even with statistics of a much smaller table
	// (with the endpoint a constant it once scanned the endpoint's whole
	// backlog per row).
	rows, err := db.QueryContext(ctx, `WITH u AS (UPDATE webhook_deliveries AS d SET state = k.state,
		attempts = d.attempts + 1,
		first_attempt_us = CASE WHEN d.first_attempt_us = 0 THEN k.at ELSE d.first_attempt_us END,
		last_attempt_us = k.at, status_code = k.code, latency_us = k.lat, error = k.err, response = k.resp,
		done_us = k.done, next_attempt_us = k.nxt
		FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::bigint[],
			$8::bigint[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $16::text[])
			AS k(state, at, code, lat, err, resp, done, nxt, topic, ms, seq, gen, ep)
		WHERE d.endpoint_id = k.ep AND d.topic = k.topic AND d.id_ms = k.ms AND d.id_seq = k.seq AND d.gen = k.gen
			AND d.state = 'pending'
		RETURNING d.topic, d.id_ms, d.id_seq),
	e AS (UPDATE webhook_endpoints SET failing_since_us = $14::bigint
		WHERE id = $13 AND CASE WHEN $15::boolean THEN failing_since_us <> $14::bigint ELSE failing_since_us = 0 END
		RETURNING failing_since_us)
	SELECT topic, id_ms, id_seq FROM u
	UNION ALL SELECT '', -1, COALESCE((SELECT failing_since_us FROM e),
		(SELECT failing_since_us FROM webhook_endpoints WHERE id = $13), 0)`,
		states, at, code, lat, errs, resps, done, nxt, topics, ms, seq, gen, endpointID, run.since, run.succeeded, eps)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	type key struct {
		topic   string
		ms, seq int64
	}
	got := map[key]bool{}
	var since int64
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.topic, &k.ms, &k.seq); err != nil {
			return nil, 0, err
		}
		if k.ms == -1 {
			since = k.seq
			continue
		}
		got[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	out := make([]bool, n)
	for i, r := range rs {
		out[i] = got[key{r.topic, r.id.Ms, r.id.Seq}]
	}
	return out, since, nil
}

// clipErr bounds an error kept in the log.
func clipErr(s string) string {
	if len(s) > 500 {
		return s[:500] + "…"
	}
	return s
}

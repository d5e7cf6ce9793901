package faults

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
)

// DefaultPostgres is the machine's PostgreSQL (trust auth, database test),
// the one the archive's own tests use.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Archive is one scenario's archive: a schema of its own (hx_faults_<random>)
// in a PostgreSQL database, dropped by Close. The nodes get URL (the schema
// as their search_path, optionally through a Proxy); the suite reads the
// events table directly, never through the proxy, so it can look while the
// nodes are cut off.
type Archive struct {
	Schema string
	base   *url.URL
	db     *sql.DB
}

// OpenArchive connects to the PostgreSQL at base and creates the schema.
// The nodes create the tables (they migrate at start).
func OpenArchive(ctx context.Context, base string) (*Archive, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("archive url: %w", err)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres %s: %w", u.Host, err)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	a := &Archive{Schema: "hx_faults_" + hex.EncodeToString(r[:]), base: u, db: db}
	if _, err := db.ExecContext(pctx, "CREATE SCHEMA "+a.Schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create schema: %w", err)
	}
	return a, nil
}

// Addr is the database's host:port (a Proxy's target).
func (a *Archive) Addr() string { return a.base.Host }

// URL is the nodes' HEXTRACK_DATABASE_URL: the schema as search_path, and
// the host replaced by hostport unless it is "" (a Proxy's address).
func (a *Archive) URL(hostport string) string {
	u := *a.base
	if hostport != "" {
		u.Host = hostport
	}
	q := u.Query()
	q.Set("search_path", a.Schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Close drops the schema and disconnects.
func (a *Archive) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := a.db.ExecContext(ctx, "DROP SCHEMA "+a.Schema+" CASCADE")
	return errors.Join(err, a.db.Close())
}

// Count is the number of rows in the events table.
func (a *Archive) Count(ctx context.Context) (int, error) {
	var n int
	err := a.db.QueryRowContext(ctx, "SELECT count(*) FROM "+a.Schema+".events").Scan(&n)
	return n, err
}

// Events returns, for each of topics, how many rows the archive holds of
// each event ID. The table's key is (topic, event ID), so a count above 1
// would mean that key was lost; it is counted rather than assumed.
func (a *Archive) Events(ctx context.Context, topics []string) (map[string]map[ID]int, error) {
	rows, err := a.db.QueryContext(ctx, "SELECT topic, id_ms, id_seq, count(*) FROM "+a.Schema+
		".events WHERE topic = ANY($1) GROUP BY topic, id_ms, id_seq", topics)
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	defer rows.Close()
	out := make(map[string]map[ID]int, len(topics))
	for rows.Next() {
		var topic string
		var ms, seq int64
		var n int
		if err := rows.Scan(&topic, &ms, &seq, &n); err != nil {
			return nil, err
		}
		if out[topic] == nil {
			out[topic] = map[ID]int{}
		}
		out[topic][ID{uint64(ms), uint64(seq)}] += n
	}
	return out, rows.Err()
}

// StreamIDs reads the IDs of every entry of each topic's stream (under the
// nodes' key prefix): the durable events the archive must hold.
func StreamIDs(ctx context.Context, rdb redis.UniversalClient, prefix string, topics []string) (map[string][]string, error) {
	out := make(map[string][]string, len(topics))
	for _, t := range topics {
		msgs, err := rdb.XRange(ctx, feed.StreamKey(prefix, t), "-", "+").Result()
		if err != nil {
			return nil, fmt.Errorf("xrange %s: %w", t, err)
		}
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ID
		}
		out[t] = ids
	}
	return out, nil
}

// ArchiveResult compares the archive with the streams, summed over topics.
type ArchiveResult struct {
	Topics     int
	InStreams  int // stream entries looked at (up to the bound)
	Archived   int // of those, archived
	Missing    int // in a stream, not in the archive
	Duplicated int // extra rows of an archived event
	// Unknown counts archived events that are not in their stream although
	// they lie between its first and last entry (not trimmed away, not
	// published after the read): events the archive invented.
	Unknown  int
	Examples []string
}

// Complete: every stream entry looked at is archived exactly once and
// nothing else is.
func (r ArchiveResult) Complete() bool {
	return r.Missing == 0 && r.Duplicated == 0 && r.Unknown == 0
}

func (r ArchiveResult) String() string {
	return fmt.Sprintf("topics=%d in_streams=%d archived=%d missing=%d dup=%d unknown=%d %v",
		r.Topics, r.InStreams, r.Archived, r.Missing, r.Duplicated, r.Unknown, r.Examples)
}

// CompareArchive checks each topic's stream entries up to upTo (the zero
// ID: all of them) against the archived IDs.
func CompareArchive(streams map[string][]string, archived map[string]map[ID]int, upTo ID) ArchiveResult {
	var r ArchiveResult
	example := func(format string, a ...any) {
		if len(r.Examples) < 5 {
			r.Examples = append(r.Examples, fmt.Sprintf(format, a...))
		}
	}
	topics := make([]string, 0, len(streams))
	for t := range streams {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		r.Topics++
		arch := archived[t]
		inStream := make(map[ID]bool, len(streams[t]))
		var first, last ID
		for i, s := range streams[t] {
			id, ok := ParseID(s)
			if !ok {
				continue
			}
			if i == 0 {
				first = id
			}
			last = id
			inStream[id] = true
			if upTo != (ID{}) && upTo.Less(id) {
				continue
			}
			r.InStreams++
			switch n := arch[id]; {
			case n == 0:
				r.Missing++
				example("missing %s %s", t, s)
			default:
				r.Archived++
				if n > 1 {
					r.Duplicated += n - 1
					example("dup %s %s x%d", t, s, n)
				}
			}
		}
		for id := range arch {
			// Only between the stream's first and last entry as read: older
			// ones were trimmed, newer ones published after the read.
			if !inStream[id] && first.Less(id) && !last.Less(id) {
				r.Unknown++
				example("archived, not in the stream %s %s", t, id)
			}
		}
	}
	return r
}

// CheckArchive compares the archive with the streams of topics now.
func (a *Archive) CheckArchive(ctx context.Context, rdb redis.UniversalClient, prefix string, topics []string, upTo ID) (ArchiveResult, error) {
	streams, err := StreamIDs(ctx, rdb, prefix, topics)
	if err != nil {
		return ArchiveResult{}, err
	}
	archived, err := a.Events(ctx, topics)
	if err != nil {
		return ArchiveResult{}, err
	}
	return CompareArchive(streams, archived, upTo), nil
}

// WaitArchived checks the archive against the streams every 100ms until
// every entry up to upTo (zero: all, as read at each check) is archived,
// or timeout. It returns when the check first passed, and the last result;
// an error after the timeout says what is missing.
func (a *Archive) WaitArchived(ctx context.Context, rdb redis.UniversalClient, prefix string, topics []string, upTo ID, timeout time.Duration) (time.Time, ArchiveResult, error) {
	deadline := time.Now().Add(timeout)
	for {
		r, err := a.CheckArchive(ctx, rdb, prefix, topics, upTo)
		if err == nil && r.Complete() {
			return time.Now(), r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err == nil {
				err = fmt.Errorf("archive incomplete after %s: %s", timeout, r)
			}
			return time.Now(), r, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// IDAt is the stream ID of the last event published by time t (every
// entry up to it was added at or before t by the Redis clock, which is the
// machine's on loopback).
func IDAt(t time.Time) ID { return ID{MS: uint64(t.UnixMilli()), Seq: 1<<64 - 1} }

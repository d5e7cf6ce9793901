package archiveredis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
)

// roundTopics is how many topics one round reads and writes together
// (one pipelined read, one archive write of up to roundTopics*Batch
// records per kind, one pipelined cursor advance).
const roundTopics = 256

// dirtyTopic is a topic read from the dirty index with its mark's score.
type dirtyTopic struct {
	topic    string
	scoreStr string
	score    float64
}

// drainShard archives every dirty topic of shard and drops from the index
// the topics that are archived to their end and whose mark's deadline had
// passed before their streams were read.
func (p *Pipeline) drainShard(ctx context.Context, shard int) error {
	key := feedredis.DirtyKey(p.cfg.Prefix, shard)
	res, err := dirtyScript.Run(ctx, p.rdb, []string{key}, p.cfg.Topics).Slice()
	if err != nil {
		return fmt.Errorf("read dirty topics: %w", err)
	}
	if len(res) != 2 {
		return errReply
	}
	nowStr, _ := res[0].(string)
	now, _ := strconv.ParseFloat(nowStr, 64)
	pairs, _ := res[1].([]any)
	var dirty []dirtyTopic
	var pending []string
	for i := 0; i+1 < len(pairs); i += 2 {
		d := dirtyTopic{}
		d.topic, _ = pairs[i].(string)
		d.scoreStr, _ = pairs[i+1].(string)
		if d.score, err = strconv.ParseFloat(d.scoreStr, 64); err != nil {
			return errReply
		}
		dirty = append(dirty, d)
		if _, _, err := feed.ParseTopic(d.topic); err != nil {
			p.cfg.Logger.Warn("archive: dropping an invalid topic from the dirty index", "topic", d.topic)
			continue
		}
		pending = append(pending, d.topic)
	}
	for len(pending) > 0 {
		k := min(len(pending), roundTopics)
		more, err := p.drainRound(ctx, p.decs[shard], pending[:k])
		if err != nil {
			return err
		}
		pending = append(more, pending[k:]...)
	}
	return p.clean(ctx, key, dirty, now)
}

// clean removes the drained topics whose mark's deadline was before now
// (a publish marked then may still land otherwise: they are looked at
// again next pass), each only if its score is unchanged.
func (p *Pipeline) clean(ctx context.Context, key string, dirty []dirtyTopic, now float64) error {
	_, err := p.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, d := range dirty {
			if d.score < now {
				cleanScript.Eval(ctx, pl, []string{key}, d.topic, d.scoreStr)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("clean dirty topics: %w", err)
	}
	return nil
}

// stream is one stream drained for a topic: its feed stream (kind "") or
// one of its record streams (feedredis.RecordKey), with its archived
// cursor.
type stream struct {
	kind        string
	key, cursor string
}

// streams are the streams drained for topic: the feed stream, and the
// record streams of its kind (a trip's trail and webhooks, a driver's
// status changes). All are in the topic's slot.
func (p *Pipeline) streams(topic, kind string) []stream {
	out := []stream{{kind: "", key: feed.StreamKey(p.cfg.Prefix, topic), cursor: feedredis.ArchivedKey(p.cfg.Prefix, topic)}}
	var recs []string
	switch kind {
	case "trip":
		recs = []string{feedredis.RecordTrail, feedredis.RecordWebhooks}
	case "driver":
		recs = []string{feedredis.RecordStatus}
	}
	for _, r := range recs {
		out = append(out, stream{kind: r, key: feedredis.RecordKey(p.cfg.Prefix, topic, r),
			cursor: feedredis.ArchivedKey(p.cfg.Prefix, topic) + ":" + r})
	}
	return out
}

// batch is what one round writes to the archive.
type batch struct {
	events   []archive.Event
	points   []archive.Point
	ledger   []archive.Entry
	statuses []archive.StatusChange
	trips    []string
	// advance: cursor moves after the writes (stream, cursor, last ID).
	advance []advance
}

type advance struct {
	s    stream
	last string
}

func (b *batch) empty() bool {
	return len(b.events)+len(b.points)+len(b.ledger)+len(b.statuses) == 0 && len(b.advance) == 0
}

// drainRound archives the next Batch entries after the cursor of each
// stream of each of topics: one pipelined read, the archive writes (then
// the records of the trips read to their end), then the cursors advanced in
// one pipeline. So a crash between the writes and the advance re-reads a
// batch the archive absorbs by its keys. It returns the topics that may
// have more.
func (p *Pipeline) drainRound(ctx context.Context, d *decoder, topics []string) (more []string, err error) {
	reads := make([]*redis.Cmd, len(topics))
	sets := make([][]stream, len(topics))
	err = p.pipelined(ctx, func(pl redis.Pipeliner) {
		for i, topic := range topics {
			kind, _, _ := feed.ParseTopic(topic)
			sets[i] = p.streams(topic, kind)
			keys := make([]string, 0, 2*len(sets[i]))
			for _, s := range sets[i] {
				keys = append(keys, s.key, s.cursor)
			}
			reads[i] = readScript.EvalSha(ctx, pl, keys, p.cfg.Batch)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read streams: %w", err)
	}
	var b batch
	for i, topic := range topics {
		res, err := reads[i].Slice()
		if err != nil || len(res) != 2*len(sets[i]) {
			return nil, fmt.Errorf("read %s: %w", topic, errors.Join(errReply, err))
		}
		full, err := d.decodeTopic(topic, sets[i], res, &b)
		if err != nil {
			return nil, err
		}
		if full {
			more = append(more, topic)
		}
	}
	if b.empty() {
		return more, nil
	}
	if err := p.write(ctx, d, &b); err != nil {
		return nil, err
	}
	if p.afterAppend != nil {
		p.afterAppend()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ttl := strconv.FormatInt(p.cfg.CursorTTL.Milliseconds(), 10)
	err = p.pipelined(ctx, func(pl redis.Pipeliner) {
		for _, a := range b.advance {
			trim := "0"
			if a.s.kind != "" {
				trim = "1" // a record stream's archived entries are dropped
			}
			advanceScript.EvalSha(ctx, pl, []string{a.s.cursor, a.s.key}, a.last, ttl, trim)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("advance cursors: %w", err)
	}
	now := time.Now()
	for _, e := range b.events {
		if id, err := feed.ParseID(e.ID); err == nil {
			p.m.lag.Observe(max(now.Sub(time.UnixMilli(int64(id.Ms))).Seconds(), 0))
		}
	}
	return more, nil
}

// write stores a round's records: events first, then trail points, ledger
// entries and status changes, then the records of the trips read to their
// end. Every write is idempotent.
func (p *Pipeline) write(ctx context.Context, d *decoder, b *batch) error {
	if len(b.events) > 0 {
		n, err := p.arch.AppendEvents(ctx, b.events)
		if err != nil {
			return fmt.Errorf("append events: %w", err)
		}
		p.m.events.Add(float64(n))
	}
	if len(b.points) > 0 {
		n, err := p.arch.AppendPoints(ctx, b.points)
		if err != nil {
			return fmt.Errorf("append trail points: %w", err)
		}
		p.m.records.WithLabelValues("trail_points").Add(float64(n))
	}
	if len(b.ledger) > 0 {
		n, err := p.arch.AppendLedger(ctx, b.ledger)
		if err != nil {
			return fmt.Errorf("append ledger: %w", err)
		}
		p.m.records.WithLabelValues("ledger").Add(float64(n))
	}
	if len(b.statuses) > 0 {
		n, err := p.arch.AppendStatuses(ctx, b.statuses)
		if err != nil {
			return fmt.Errorf("append driver statuses: %w", err)
		}
		p.m.records.WithLabelValues("driver_status").Add(float64(n))
	}
	return p.recorder.upsert(ctx, d, b.trips)
}

// pipelined runs fn's commands in one pipeline. A pipelined EVALSHA cannot
// fall back to EVAL by itself: on NOSCRIPT (a restarted or new Redis) the
// scripts are loaded (on every master under Cluster) and the pipeline run
// once more; the scripts are idempotent, so a partial first run is safe.
func (p *Pipeline) pipelined(ctx context.Context, fn func(redis.Pipeliner)) error {
	run := func() error {
		_, err := p.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error { fn(pl); return nil })
		return err
	}
	err := run()
	if err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return err
	}
	for _, s := range []*redis.Script{readScript, advanceScript} {
		if err := s.Load(ctx, p.rdb).Err(); err != nil {
			return fmt.Errorf("load scripts: %w", err)
		}
	}
	return run()
}

// tripRecorder stores trips' current records after their events.
type tripRecorder struct {
	trips   Trips // nil: no records
	arch    Archive
	readers int // records read at once
}

// upsert stores the current records of trips (the archive ignores a
// record older than the one it has); a trip no longer in Redis is skipped.
// d learns which were stored.
func (r tripRecorder) upsert(ctx context.Context, d *decoder, ids []string) error {
	if r.trips == nil || len(ids) == 0 {
		return nil
	}
	// One record read is a few Redis round trips: read them side by side.
	got := make([]archive.Trip, len(ids))
	found := make([]bool, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.readers)
	for i, id := range ids {
		g.Go(func() error {
			rec, err := r.trips.TripRecord(gctx, id)
			if errors.Is(err, archive.ErrNotFound) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("trip record %s: %w", id, err)
			}
			got[i], found[i] = rec, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	recs := make([]archive.Trip, 0, len(ids))
	for i := range got {
		if found[i] {
			recs = append(recs, got[i])
		}
	}
	if len(recs) == 0 {
		return nil
	}
	if _, err := r.arch.UpsertTrips(ctx, recs); err != nil {
		return fmt.Errorf("upsert trips: %w", err)
	}
	d.recorded(ids)
	return nil
}

package archiveredis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
)

// roundTopics is how many topics one round reads and writes together
// (one pipelined read, one archive write of up to roundTopics*Batch events,
// one pipelined cursor advance).
const roundTopics = 32

// dirtyTopic is a topic read from the dirty index with its mark's score.
type dirtyTopic struct {
	topic    string
	scoreStr string
	score    float64
}

// drainShard archives every dirty topic of shard and drops from the index
// the topics that are archived to their end and whose mark's deadline had
// passed before their stream was read.
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
		more, err := p.drainRound(ctx, pending[:k])
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

// drainRound archives the next Batch events after the cursor of each of
// topics: one pipelined read, one archive write (then the records of the
// trips read to their end), then the cursors advanced in one pipeline. So a
// crash between the write and the advance re-reads a batch the archive
// absorbs by event ID. It returns the topics that may have more.
func (p *Pipeline) drainRound(ctx context.Context, topics []string) (more []string, err error) {
	reads := make([]*redis.Cmd, len(topics))
	err = p.pipelined(ctx, func(pl redis.Pipeliner) {
		for i, topic := range topics {
			reads[i] = readScript.EvalSha(ctx, pl, []string{feed.StreamKey(p.cfg.Prefix, topic), feedredis.ArchivedKey(p.cfg.Prefix, topic)}, p.cfg.Batch)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read streams: %w", err)
	}
	var all []archive.Event
	var trips []string
	lasts := make(map[string]string, len(topics))
	for i, topic := range topics {
		res, err := reads[i].Slice()
		if err != nil || len(res) != 2 {
			return nil, fmt.Errorf("read %s: %w", topic, errors.Join(errReply, err))
		}
		kind, tripID, _ := feed.ParseTopic(topic)
		if kind != "trip" {
			tripID = ""
		}
		cursor, _ := res[0].(string)
		evs, prev, err := events(topic, tripID, res[1])
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			continue
		}
		if prev != cursor {
			// The stream no longer holds the event after the cursor (trimmed
			// or expired before it was archived, or the cursor expired):
			// continuity can't be proven.
			p.m.gaps.Inc()
			p.cfg.Logger.Warn("archive: gap: events may be missing from the archive", "topic", topic,
				"archived_to", cursor, "next_kept", evs[0].ID, "its_prev", prev)
		}
		if id, err := feed.ParseID(evs[0].ID); err == nil && (p.oldest == 0 || id.Ms < p.oldest) {
			p.oldest = id.Ms
		}
		all = append(all, evs...)
		lasts[topic] = evs[len(evs)-1].ID
		if len(evs) == p.cfg.Batch {
			more = append(more, topic)
		} else if tripID != "" {
			trips = append(trips, tripID)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	n, err := p.arch.AppendEvents(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("append events: %w", err)
	}
	if err := p.upsertTrips(ctx, trips); err != nil {
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
		for topic, last := range lasts {
			advanceScript.EvalSha(ctx, pl, []string{feedredis.ArchivedKey(p.cfg.Prefix, topic)}, last, ttl)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("advance cursors: %w", err)
	}
	p.m.events.Add(float64(n))
	now := time.Now()
	for _, e := range all {
		if id, err := feed.ParseID(e.ID); err == nil {
			p.m.lag.Observe(max(now.Sub(time.UnixMilli(int64(id.Ms))).Seconds(), 0))
		}
	}
	return more, nil
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

// upsertTrips stores the current records of trips (the archive ignores a
// record older than the one it has); a trip no longer in Redis is skipped.
func (p *Pipeline) upsertTrips(ctx context.Context, ids []string) error {
	if p.cfg.Trips == nil || len(ids) == 0 {
		return nil
	}
	recs := make([]archive.Trip, 0, len(ids))
	for _, id := range ids {
		rec, err := p.cfg.Trips.TripRecord(ctx, id)
		if errors.Is(err, archive.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("trip record %s: %w", id, err)
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil
	}
	if _, err := p.arch.UpsertTrips(ctx, recs); err != nil {
		return fmt.Errorf("upsert trips: %w", err)
	}
	return nil
}

// events decodes XRANGE entries ({id, {field, value, …}}) into archive
// events; prev is the first entry's "prev" field.
func events(topic, tripID string, reply any) (evs []archive.Event, prev string, err error) {
	entries, _ := reply.([]any)
	evs = make([]archive.Event, 0, len(entries))
	for i, raw := range entries {
		entry, _ := raw.([]any)
		if len(entry) != 2 {
			return nil, "", errReply
		}
		id, _ := entry[0].(string)
		fields, _ := entry[1].([]any)
		ev := archive.Event{Topic: topic, ID: id, TripID: tripID}
		var ts string
		for j := 0; j+1 < len(fields); j += 2 {
			k, _ := fields[j].(string)
			v, _ := fields[j+1].(string)
			switch k {
			case "type":
				ev.Type = v
			case "ts":
				ts = v
			case "data":
				ev.Data = []byte(v)
			case "prev":
				if i == 0 {
					prev = v
				}
			}
		}
		if ev.TS, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			fid, perr := feed.ParseID(id)
			if perr != nil {
				return nil, "", fmt.Errorf("%w: entry id %q", errReply, id)
			}
			ev.TS = time.UnixMilli(int64(fid.Ms)).UTC()
		}
		evs = append(evs, ev)
	}
	return evs, prev, nil
}

package archiveredis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
)

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
	for i := 0; i+1 < len(pairs); i += 2 {
		topic, _ := pairs[i].(string)
		scoreStr, _ := pairs[i+1].(string)
		score, err := strconv.ParseFloat(scoreStr, 64)
		if err != nil {
			return errReply
		}
		if _, _, err := feed.ParseTopic(topic); err != nil {
			p.cfg.Logger.Warn("archive: dropping an invalid topic from the dirty index", "topic", topic)
		} else if err := p.drainTopic(ctx, topic); err != nil {
			return fmt.Errorf("topic %s: %w", topic, err)
		}
		if score >= now {
			continue // a publish marked then may still land: look again later
		}
		if err := cleanScript.Run(ctx, p.rdb, []string{key}, topic, scoreStr).Err(); err != nil {
			return fmt.Errorf("clean dirty topic: %w", err)
		}
	}
	return nil
}

// drainTopic archives topic's events after its cursor, Batch at a time:
// write, then advance the cursor, so a crash between the two re-archives a
// batch the archive absorbs by event ID.
func (p *Pipeline) drainTopic(ctx context.Context, topic string) error {
	stream, cursorKey := feed.StreamKey(topic), feedredis.ArchivedKey(topic)
	kind, tripID, _ := feed.ParseTopic(topic)
	if kind != "trip" {
		tripID = ""
	}
	ttl := strconv.FormatInt(p.cfg.CursorTTL.Milliseconds(), 10)
	for first := true; ; first = false {
		res, err := readScript.Run(ctx, p.rdb, []string{stream, cursorKey}, p.cfg.Batch).Slice()
		if err != nil {
			return fmt.Errorf("read stream: %w", err)
		}
		if len(res) != 2 {
			return errReply
		}
		cursor, _ := res[0].(string)
		evs, prev, err := events(topic, tripID, res[1])
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		if first && prev != cursor {
			// The stream no longer holds the event after the cursor (trimmed
			// or expired before it was archived, or the cursor expired):
			// continuity can't be proven.
			p.m.gaps.Inc()
			p.cfg.Logger.Warn("archive: gap: events may be missing from the archive", "topic", topic,
				"archived_to", cursor, "next_kept", evs[0].ID, "its_prev", prev)
		}
		n, err := p.arch.AppendEvents(ctx, evs)
		if err != nil {
			return fmt.Errorf("append events: %w", err)
		}
		last := len(evs) < p.cfg.Batch
		if last && tripID != "" && p.cfg.Trips != nil {
			if err := p.upsertTrip(ctx, tripID); err != nil {
				return err
			}
		}
		if p.afterAppend != nil {
			p.afterAppend()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := advanceScript.Run(ctx, p.rdb, []string{cursorKey}, evs[len(evs)-1].ID, ttl).Err(); err != nil {
			return fmt.Errorf("advance cursor: %w", err)
		}
		p.m.events.Add(float64(n))
		now := time.Now()
		for _, e := range evs {
			if id, err := feed.ParseID(e.ID); err == nil {
				p.m.lag.Observe(max(now.Sub(time.UnixMilli(int64(id.Ms))).Seconds(), 0))
			}
		}
		if last {
			return nil
		}
	}
}

// upsertTrip stores trip id's current record (the archive ignores it if
// it has a later version).
func (p *Pipeline) upsertTrip(ctx context.Context, id string) error {
	rec, err := p.cfg.Trips.TripRecord(ctx, id)
	if errors.Is(err, archive.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trip record %s: %w", id, err)
	}
	if _, err := p.arch.UpsertTrips(ctx, []archive.Trip{rec}); err != nil {
		return fmt.Errorf("upsert trip %s: %w", id, err)
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

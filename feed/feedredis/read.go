package feedredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
)

// Reader is a Broker's reads of a topic's stream: its position (Position),
// a chunk of history after an ID (Read), and the continuity proof that a
// subscription's catch-up and Read share (readAfter). It uses only rdb.
// All methods are safe for concurrent use.
type Reader struct {
	rdb redis.UniversalClient
	cfg Config
}

// Position returns topic's current stream position: the ID of the last event
// ever appended, or "0-0" if the topic has no stream. A snapshot taken after
// reading it plus the events after it is the complete state.
func (b *Reader) Position(ctx context.Context, topic string) (string, error) {
	if _, _, err := feed.ParseTopic(topic); err != nil {
		return "", err
	}
	info, err := b.rdb.XInfoStream(ctx, feed.StreamKey(b.cfg.Prefix, topic)).Result()
	if isNoSuchKey(err) {
		return "0-0", nil
	}
	if err != nil {
		return "", fmt.Errorf("feed: position %s: %w", topic, err)
	}
	return info.LastGeneratedID, nil
}

// Read returns up to limit durable events of topic after afterID, in order,
// and next, the cursor to pass to the following Read (the last returned ID,
// or afterID when nothing is newer). afterID "" means from the oldest event
// retained (next is then the current position when the stream is empty);
// "0-0" means from the very first event ever (ErrTrimmed if any were
// trimmed). Errors: ErrInvalidID (malformed), ErrTrimmed (events after
// afterID were trimmed), ErrUnknownID (not an event of this topic, or in the
// future). limit <= 0 means Config.ReadChunk.
func (b *Reader) Read(ctx context.Context, topic, afterID string, limit int) ([]feed.Event, string, error) {
	if _, _, err := feed.ParseTopic(topic); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = b.cfg.ReadChunk
	}
	evs, pos, err := b.readAfter(ctx, topic, afterID, limit)
	if err != nil {
		return nil, "", err
	}
	next := afterID
	if len(evs) > 0 {
		next = evs[len(evs)-1].ID
	} else if afterID == "" {
		next = pos
	}
	return evs, next, nil
}

func isNoSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
}

// readAfter reads up to n events after `after` and proves continuity: the
// returned events directly follow `after` in the stream, with nothing
// trimmed in between. pos is the stream's last generated ID ("0-0" when
// there is no stream), returned with every error except Redis failures so a
// Reset can carry it.
//
// The proof: every entry stores its predecessor's ID ("prev", "" for the
// first entry of a stream). `after` is continuous if it is the last
// generated ID, or still in the stream, or the predecessor of the first
// entry after it ("0-0" counts as the predecessor of a first entry). Else,
// if the first entry after it is the oldest retained, it was trimmed
// (ErrTrimmed); otherwise it was never an ID of this stream (ErrUnknownID).
func (b *Reader) readAfter(ctx context.Context, topic, after string, n int) ([]feed.Event, string, error) {
	stream := feed.StreamKey(b.cfg.Prefix, topic)
	fromOldest := after == ""
	var aid feed.ID
	var perr error
	start := "-"
	if !fromOldest {
		if aid, perr = feed.ParseID(after); perr == nil {
			start = aid.String()
		}
	}
	var info *redis.XInfoStreamCmd
	var rng *redis.XMessageSliceCmd
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		info = p.XInfoStream(ctx, stream)
		if perr == nil {
			rng = p.XRangeN(ctx, stream, start, "+", int64(n+1))
		}
		return nil
	})
	exists := true
	if ierr := info.Err(); isNoSuchKey(ierr) {
		exists = false
	} else if ierr != nil {
		return nil, "", fmt.Errorf("feed: read %s: %w", topic, ierr)
	} else if err != nil && rng != nil && rng.Err() != nil {
		return nil, "", fmt.Errorf("feed: read %s: %w", topic, rng.Err())
	}
	if !exists {
		switch {
		case perr != nil:
			return nil, "0-0", perr
		case fromOldest || aid.IsZero():
			return nil, "0-0", nil
		}
		return nil, "0-0", fmt.Errorf("%w: %s (no stream)", feed.ErrUnknownID, after)
	}
	st := info.Val()
	pos := st.LastGeneratedID
	if perr != nil {
		return nil, pos, perr
	}
	last, err := feed.ParseID(pos)
	if err != nil {
		return nil, "", fmt.Errorf("feed: read %s: bad last id %q", topic, pos)
	}
	msgs := rng.Val()
	if fromOldest {
		return toEvents(topic, msgs, n), pos, nil
	}
	switch c := aid.Compare(last); {
	case c > 0:
		return nil, pos, fmt.Errorf("%w: %s is after the stream's last id", feed.ErrUnknownID, after)
	case c == 0:
		return nil, pos, nil // nothing after the last ID, so nothing can be missing
	}
	if len(msgs) > 0 && msgs[0].ID == start {
		return toEvents(topic, msgs[1:], n), pos, nil
	}
	if len(msgs) == 0 {
		// Everything after `after` (up to pos) was trimmed away.
		return nil, pos, fmt.Errorf("%w: %s", feed.ErrTrimmed, after)
	}
	prev, _ := msgs[0].Values["prev"].(string)
	if prev == start || (prev == "" && aid.IsZero()) {
		return toEvents(topic, msgs, n), pos, nil
	}
	first := st.RecordedFirstEntryID
	if first == "" {
		first = st.FirstEntry.ID
	}
	if first == "" { // the embedded miniredis reports neither
		f, err := b.rdb.XRangeN(ctx, stream, "-", "+", 1).Result()
		if err != nil {
			return nil, "", fmt.Errorf("feed: read %s: %w", topic, err)
		}
		if len(f) > 0 {
			first = f[0].ID
		}
	}
	if msgs[0].ID == first {
		return nil, pos, fmt.Errorf("%w: %s", feed.ErrTrimmed, after)
	}
	return nil, pos, fmt.Errorf("%w: %s", feed.ErrUnknownID, after)
}

func toEvents(topic string, msgs []redis.XMessage, n int) []feed.Event {
	if len(msgs) > n {
		msgs = msgs[:n]
	}
	evs := make([]feed.Event, 0, len(msgs))
	for _, m := range msgs {
		ev := feed.Event{ID: m.ID, Topic: topic}
		ev.Type, _ = m.Values["type"].(string)
		if ts, ok := m.Values["ts"].(string); ok {
			ev.TS, _ = time.Parse(time.RFC3339Nano, ts)
		}
		if d, ok := m.Values["data"].(string); ok {
			ev.Data = json.RawMessage(d)
		}
		evs = append(evs, ev)
	}
	return evs
}

// errIsReset reports whether err from readAfter means "continuity cannot be
// proven" (as opposed to a Redis failure).
func errIsReset(err error) bool {
	return errors.Is(err, feed.ErrTrimmed) || errors.Is(err, feed.ErrUnknownID) || errors.Is(err, feed.ErrInvalidID)
}

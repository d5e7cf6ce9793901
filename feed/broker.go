package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Broker publishes events to per-topic Redis Streams and fans them out to
// local subscribers through one Redis (S)SUBSCRIBE per topic per node.
// All methods are safe for concurrent use.
type Broker struct {
	rdb     redis.UniversalClient
	cfg     Config
	sharded bool // *redis.ClusterClient: SPUBLISH/SSUBSCRIBE
	m       *metrics
	hub     *hub

	ctx    context.Context // cancelled by Close; parent of background work
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New returns a Broker using rdb (standalone, Sentinel-backed, Cluster or the
// embedded miniredis). It starts no goroutines until the first subscription;
// Publish and Read work right away. Call Close (or Run) to release it.
func New(rdb redis.UniversalClient, cfg Config) *Broker {
	_, sharded := rdb.(*redis.ClusterClient)
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{rdb: rdb, cfg: cfg.withDefaults(), sharded: sharded, ctx: ctx, cancel: cancel}
	b.m = newMetrics(b.cfg.Registerer)
	b.hub = newHub(b)
	return b
}

// Run blocks until ctx is done or Close is called, then closes the broker.
// It lets cmd tie the broker's lifetime to the server's.
func (b *Broker) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-b.ctx.Done():
	}
	b.Close()
	return nil
}

// Close stops the hub: pub/sub connections are closed and every open
// subscription ends with ErrClosed (clients resume by ID on another node).
// Publish and Read keep working (they only use rdb). Close does not close
// rdb, which the caller owns. It is idempotent.
func (b *Broker) Close() error {
	b.once.Do(func() {
		b.cancel()
		b.hub.close()
		b.wg.Wait()
	})
	return nil
}

// Publish appends a durable event to p.Topic's stream and publishes it to
// live subscribers, atomically (one Lua script). It returns the event ID.
// With p.Key set, a repeated publish returns the first ID and publishes
// nothing.
func (b *Broker) Publish(ctx context.Context, p Publication) (string, error) {
	keys, args, err := b.PublishParams(p)
	if err != nil {
		return "", err
	}
	res, err := publishScript.Run(ctx, b.rdb, keys, args...).Slice()
	if err != nil {
		return "", fmt.Errorf("feed: publish %s: %w", p.Topic, err)
	}
	if len(res) != 2 {
		return "", fmt.Errorf("feed: publish %s: unexpected reply %v", p.Topic, res)
	}
	id, _ := res[0].(string)
	if fresh, _ := res[1].(int64); fresh == 1 {
		b.m.published.Inc()
	}
	return id, nil
}

// PublishLive sends a live-only message (e.g. trip.location, latest-wins) to
// the topic's current subscribers on every node. It is not stored, has no ID
// and is not replayed on resume; a subscriber that is catching up or
// reconnecting may miss it.
func (b *Broker) PublishLive(ctx context.Context, topic, typ string, data json.RawMessage) error {
	return b.publishLive(ctx, topic, typ, "", data)
}

// Position returns topic's current stream position: the ID of the last event
// ever appended, or "0-0" if the topic has no stream. A snapshot taken after
// reading it plus the events after it is the complete state.
func (b *Broker) Position(ctx context.Context, topic string) (string, error) {
	if _, _, err := ParseTopic(topic); err != nil {
		return "", err
	}
	info, err := b.rdb.XInfoStream(ctx, StreamKey(topic)).Result()
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
func (b *Broker) Read(ctx context.Context, topic, afterID string, limit int) ([]Event, string, error) {
	if _, _, err := ParseTopic(topic); err != nil {
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
func (b *Broker) readAfter(ctx context.Context, topic, after string, n int) ([]Event, string, error) {
	stream := StreamKey(topic)
	fromOldest := after == ""
	var aid ID
	var perr error
	start := "-"
	if !fromOldest {
		if aid, perr = ParseID(after); perr == nil {
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
		return nil, "0-0", fmt.Errorf("%w: %s (no stream)", ErrUnknownID, after)
	}
	st := info.Val()
	pos := st.LastGeneratedID
	if perr != nil {
		return nil, pos, perr
	}
	last, err := ParseID(pos)
	if err != nil {
		return nil, "", fmt.Errorf("feed: read %s: bad last id %q", topic, pos)
	}
	msgs := rng.Val()
	if fromOldest {
		return toEvents(topic, msgs, n), pos, nil
	}
	switch c := aid.Compare(last); {
	case c > 0:
		return nil, pos, fmt.Errorf("%w: %s is after the stream's last id", ErrUnknownID, after)
	case c == 0:
		return nil, pos, nil // nothing after the last ID, so nothing can be missing
	}
	if len(msgs) > 0 && msgs[0].ID == start {
		return toEvents(topic, msgs[1:], n), pos, nil
	}
	if len(msgs) == 0 {
		// Everything after `after` (up to pos) was trimmed away.
		return nil, pos, fmt.Errorf("%w: %s", ErrTrimmed, after)
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
		return nil, pos, fmt.Errorf("%w: %s", ErrTrimmed, after)
	}
	return nil, pos, fmt.Errorf("%w: %s", ErrUnknownID, after)
}

func toEvents(topic string, msgs []redis.XMessage, n int) []Event {
	if len(msgs) > n {
		msgs = msgs[:n]
	}
	evs := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		ev := Event{ID: m.ID, Topic: topic}
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
	return errors.Is(err, ErrTrimmed) || errors.Is(err, ErrUnknownID) || errors.Is(err, ErrInvalidID)
}

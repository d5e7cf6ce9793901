package feedredis

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
)

// Publisher is a Broker's publishing: durable events (Publish, or
// PublishParams for a domain script made with Script) and live-only
// messages (PublishLive, PublishSeq, or LiveParams for a script). It uses
// only rdb, so it works before any subscription and after Close. All
// methods are safe for concurrent use.
type Publisher struct {
	rdb     redis.UniversalClient
	cfg     Config
	sharded bool // *redis.ClusterClient: SPUBLISH
	m       *metrics
}

// Publish appends a durable event to p.Topic's stream and publishes it to
// live subscribers, atomically (one Lua script). It returns the event ID.
// With p.Key set, a repeated publish returns the first ID and publishes
// nothing.
func (b *Publisher) Publish(ctx context.Context, p feed.Publication) (string, error) {
	keys, args, err := b.publishParams(p)
	if err != nil {
		return "", err
	}
	if err := b.mark(ctx, p.Topic); err != nil {
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
func (b *Publisher) PublishLive(ctx context.Context, topic, typ string, data json.RawMessage) error {
	return b.publishLive(ctx, topic, typ, "", data)
}

package feedredis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
)

// markScript adds ARGV[1] (a topic) to KEYS[1] (its DirtyKey) with score
// Redis time + ARGV[2] ms, only ever raising the score (GT): a consumer
// that read an older score sees it changed and keeps the topic.
var markScript = redis.NewScript(`
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'GT', string.format('%.0f', ms), ARGV[1])
return 1
`)

// Record streams: besides its feed stream, a topic may have record streams
// in its slot that the archive pipeline drains with the feed (records that
// are not feed events). Their writers mark the topic (Mark) before
// appending, as a durable publish does.
const (
	// RecordTrail (trip topics): every accepted fix of the trip's driver
	// (trip/tripredis's location script).
	RecordTrail = "trail"
	// RecordWebhooks (trip topics): every payment webhook event stored
	// (payment/paymentredis's webhook script).
	RecordWebhooks = "webhooks"
	// RecordStatus (driver topics): every status change of the driver
	// (driver/driverredis's claims scripts).
	RecordStatus = "status"
)

// RecordKey is the record stream kind of topic: in the topic's slot, so a
// domain script on that slot can append to it and the archive reads it
// with the topic's stream in one script. Its archived cursor is
// ArchivedKey(prefix, topic)+":"+kind. prefix is Config.Prefix.
func RecordKey(prefix, topic, kind string) string {
	return feed.StreamKey(prefix, topic) + ":rec:" + kind
}

// Mark records topic in the archive's dirty-topic index, like a durable
// publish does, for a writer about to append to one of its record streams
// (RecordKey) or its stream; the append must run within
// Config.ArchiveGrace. Without Config.ArchiveMarks it does nothing.
func (b *Publisher) Mark(ctx context.Context, topic string) error {
	if _, _, err := feed.ParseTopic(topic); err != nil {
		return err
	}
	return b.mark(ctx, topic)
}

// mark records topic in the archive's dirty-topic index when the broker
// is configured to (Config.ArchiveMarks). It is written before the
// publish: a node dying between the two leaves a mark and no event, which
// the consumer finds empty and drops.
func (b *Publisher) mark(ctx context.Context, topic string) error {
	if !b.cfg.ArchiveMarks {
		return nil
	}
	key := DirtyKey(b.cfg.Prefix, DirtyShard(topic))
	grace := strconv.FormatInt(b.cfg.ArchiveGrace.Milliseconds(), 10)
	if err := markScript.Run(ctx, b.rdb, []string{key}, topic, grace).Err(); err != nil {
		return fmt.Errorf("feed: mark %s for the archive: %w", topic, err)
	}
	return nil
}

// ArchiveGrace is Config.ArchiveGrace when the broker marks topics for the
// archive (Config.ArchiveMarks), else 0: writers of record streams append
// only when it is positive, within it of their Mark.
func (b *Publisher) ArchiveGrace() time.Duration {
	if !b.cfg.ArchiveMarks {
		return 0
	}
	return b.cfg.ArchiveGrace
}

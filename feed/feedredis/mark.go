package feedredis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// markTimeout bounds the mark written by PublishParams, which has no
// context of its own.
const markTimeout = 5 * time.Second

// markScript adds ARGV[1] (a topic) to KEYS[1] (its DirtyKey) with score
// Redis time + ARGV[2] ms, only ever raising the score (GT): a consumer
// that read an older score sees it changed and keeps the topic.
var markScript = redis.NewScript(`
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'GT', string.format('%.0f', ms), ARGV[1])
return 1
`)

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

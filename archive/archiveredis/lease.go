package archiveredis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// leases are the node's leases on the dirty index's shards: a shard is
// drained only by the node holding its lease.
type leases struct {
	rdb    redis.UniversalClient
	prefix string
	node   string
	ttl    time.Duration
	shards prometheus.Gauge

	held map[int]time.Time // shard → when our lease ends (by our clock)
	next time.Time         // when to take/renew leases next
}

func (l *leases) key(shard int) string {
	return l.prefix + "archive:lease:{s" + strconv.Itoa(shard) + "}"
}

// holds: the node's lease on shard is still valid by its own clock.
func (l *leases) holds(shard int) bool {
	until, ok := l.held[shard]
	return ok && time.Now().Before(until)
}

// renew takes free shards and renews held ones, in one pipeline, every
// LeaseTTL/3 (EVAL: a pipelined EVALSHA cannot fall back on NOSCRIPT). A lease is counted from before the request, so the node
// stops using it no later than Redis expires it.
func (l *leases) renew(ctx context.Context) error {
	now := time.Now()
	if now.Before(l.next) {
		return nil
	}
	ttl := strconv.FormatInt(l.ttl.Milliseconds(), 10)
	cmds := make([]*redis.Cmd, feedredis.ArchiveShards)
	_, err := l.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for s := range cmds {
			cmds[s] = leaseScript.Eval(ctx, pl, []string{l.key(s)}, l.node, ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive: leases: %w", err)
	}
	for s, c := range cmds {
		if ok, _ := c.Int(); ok == 1 {
			l.held[s] = now.Add(l.ttl)
		} else {
			delete(l.held, s)
		}
	}
	l.shards.Set(float64(len(l.held)))
	l.next = now.Add(l.ttl / 3)
	return nil
}

// releaseAll gives up every held lease (best effort) so another node can
// take the shards at once.
func (l *leases) releaseAll() {
	if len(l.held) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = l.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for s := range l.held {
			releaseScript.Eval(ctx, pl, []string{l.key(s)}, l.node)
		}
		return nil
	})
	clear(l.held)
	l.shards.Set(0)
	l.next = time.Time{}
}

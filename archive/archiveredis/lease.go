package archiveredis

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// leases are the node's leases on the dirty index's shards: a shard is
// drained only by the node holding its lease. Nodes share the shards: each
// registers in the node registry (a heartbeat every LeaseTTL/3, dropped
// after LeaseTTL without one) and holds at most ceil(shards / live nodes),
// releasing the excess when nodes join and taking free shards (a dead
// node's, once its leases expired) up to that share.
type leases struct {
	rdb    redis.UniversalClient
	prefix string
	node   string
	ttl    time.Duration
	shards prometheus.Gauge
	nodes  prometheus.Gauge

	held map[int]time.Time // shard → when our lease ends (by our clock)
	next time.Time         // when to take/renew leases next
}

func (l *leases) key(shard int) string {
	return l.prefix + "archive:lease:{s" + strconv.Itoa(shard) + "}"
}

// registryKey is the node registry: a sorted set of node IDs scored by the
// Redis time (ms) their registration ends.
func (l *leases) registryKey() string { return l.prefix + "archive:nodes" }

// holds: the node's lease on shard is still valid by its own clock.
func (l *leases) holds(shard int) bool {
	until, ok := l.held[shard]
	return ok && time.Now().Before(until)
}

// share is how many shards one of n live nodes holds at most.
func share(n int64) int {
	n = max(n, 1)
	return int((int64(feedredis.ArchiveShards) + n - 1) / n)
}

// renew, every LeaseTTL/3: registers the node, renews its leases up to its
// share and releases the rest, then takes free shards up to its share
// (EVAL: a pipelined EVALSHA cannot fall back on NOSCRIPT). A lease is
// counted from before the request, so the node stops using it no later
// than Redis expires it.
func (l *leases) renew(ctx context.Context) error {
	now := time.Now()
	if now.Before(l.next) {
		return nil
	}
	ttl := strconv.FormatInt(l.ttl.Milliseconds(), 10)
	n, err := registerScript.Run(ctx, l.rdb, []string{l.registryKey()}, l.node, ttl).Int64()
	if err != nil {
		return fmt.Errorf("archive: node registry: %w", err)
	}
	l.nodes.Set(float64(n))
	want := share(n)
	// Shards in this node's order (from an offset of its own, so nodes
	// starting together try different shards first).
	h := fnv.New32a()
	_, _ = h.Write([]byte(l.node))
	off := int(h.Sum32() % feedredis.ArchiveShards)
	order := make([]int, feedredis.ArchiveShards)
	for i := range order {
		order[i] = (off + i) % feedredis.ArchiveShards
	}
	keep := map[int]bool{}
	for _, s := range order {
		if _, ok := l.held[s]; ok && len(keep) < want {
			keep[s] = true
		}
	}
	renews := map[int]*redis.Cmd{}
	frees := map[int]*redis.StringCmd{}
	_, err = l.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for s := range l.held {
			if keep[s] {
				renews[s] = leaseScript.Eval(ctx, pl, []string{l.key(s)}, l.node, ttl)
			} else {
				releaseScript.Eval(ctx, pl, []string{l.key(s)}, l.node)
			}
		}
		for _, s := range order {
			if _, ok := l.held[s]; !ok {
				frees[s] = pl.Get(ctx, l.key(s))
			}
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return fmt.Errorf("archive: leases: %w", err)
	}
	clear(l.held)
	for s, c := range renews {
		if ok, _ := c.Int(); ok == 1 {
			l.held[s] = now.Add(l.ttl)
		}
	}
	var takes []int
	for _, s := range order {
		if c, ok := frees[s]; ok && c.Err() == redis.Nil && len(l.held)+len(takes) < want {
			takes = append(takes, s)
		}
	}
	if len(takes) > 0 {
		cmds := make([]*redis.Cmd, len(takes))
		_, err = l.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, s := range takes {
				cmds[i] = leaseScript.Eval(ctx, pl, []string{l.key(s)}, l.node, ttl)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("archive: leases: %w", err)
		}
		for i, c := range cmds {
			if ok, _ := c.Int(); ok == 1 {
				l.held[takes[i]] = now.Add(l.ttl)
			}
		}
	}
	l.shards.Set(float64(len(l.held)))
	l.next = now.Add(l.ttl / 3)
	return nil
}

// releaseAll gives up every held lease and the node's registration (best
// effort) so the other nodes take the shards at once: on a failed pass
// (this node cannot reach the archive or Redis) and when it stops.
func (l *leases) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = l.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.ZRem(ctx, l.registryKey(), l.node)
		for s := range l.held {
			releaseScript.Eval(ctx, pl, []string{l.key(s)}, l.node)
		}
		return nil
	})
	clear(l.held)
	l.shards.Set(0)
	l.next = time.Time{}
}

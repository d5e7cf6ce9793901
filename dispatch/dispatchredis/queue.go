package dispatchredis

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys (the trip's hash tag, except the queue and the driver's offer lock).
func queueKey(prefix string) string           { return prefix + "dispatch:queue" }
func dispatchKey(prefix, id string) string    { return prefix + "trip:{" + id + "}:dispatch" }
func leaseKey(prefix, id string) string       { return prefix + "trip:{" + id + "}:lease" }
func offerLockKey(prefix, drv string) string  { return prefix + "drv:{" + drv + "}:offer" }
func arrivalKey(prefix, tripID string) string { return prefix + "trip:{" + tripID + "}:arrival" }

// queue is the dispatch queue and its leases in Redis: a trip to dispatch
// is a member of a sorted set scored by when it is due; the node holding
// a trip's lease ("<prefix>trip:{<id>}:lease", SET NX PX LeaseTTL) owns
// its dispatch and pushes its score past the lease's end while it renews,
// so no other node finds it due meanwhile.
type queue struct {
	rdb    redis.UniversalClient
	prefix string
	node   string
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger
}

func (q *queue) key() string { return queueKey(q.prefix) }

// Lease scripts touch only the lease key (the queue is in another slot
// under Cluster); the queue score is moved by a separate ZADD XX.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`)

var releaseLeaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// due returns up to 200 trips due at now (ms).
func (q *queue) due(ctx context.Context, now int64) ([]string, error) {
	return q.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: q.key(), ByScore: true,
		Start: "-inf", Stop: strconv.FormatInt(now, 10), Count: 200}).Result()
}

// take acquires trip id's lease; on success the trip is not due elsewhere
// while the lease lives (renewals push it further).
func (q *queue) take(ctx context.Context, id string, now int64) bool {
	ok, err := q.rdb.SetNX(ctx, leaseKey(q.prefix, id), q.node, q.ttl).Result()
	if err != nil || !ok {
		return false
	}
	q.rdb.ZAddXX(ctx, q.key(), redis.Z{Score: float64(now + q.ttl.Milliseconds()), Member: id})
	return true
}

// renew renews the leases of ids in one pipeline (EVAL, not EVALSHA: a
// pipeline cannot fall back on NOSCRIPT) and returns those that were lost.
func (q *queue) renew(ctx context.Context, ids []string) (lost []string) {
	due := float64(q.now().Add(q.ttl).UnixMilli())
	cmds := make([]*redis.Cmd, len(ids))
	// Script.Run cannot fall back from EVALSHA to EVAL inside a pipeline:
	// load the script first (a fresh or restarted Redis has none).
	if err := renewScript.Load(ctx, q.rdb).Err(); err != nil && ctx.Err() == nil {
		q.log.Warn("dispatch: load renew script", "err", err)
	}
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = renewScript.Eval(ctx, p, []string{leaseKey(q.prefix, id)}, q.node, q.ttl.Milliseconds())
			p.ZAddXX(ctx, q.key(), redis.Z{Score: due, Member: id})
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		q.log.Warn("dispatch: renew leases", "err", err)
	}
	for i, id := range ids {
		if n, err := cmds[i].Int(); err == nil && n == 0 {
			lost = append(lost, id)
		}
	}
	return lost
}

// add makes a trip due now, with a fresh round (its dispatch hash gone).
func (q *queue) add(ctx context.Context, id string) error {
	if err := q.rdb.Del(ctx, dispatchKey(q.prefix, id)).Err(); err != nil {
		return err
	}
	return q.rdb.ZAdd(ctx, q.key(), redis.Z{Score: float64(q.now().UnixMilli()), Member: id}).Err()
}

// finish takes a dispatched trip off the queue and reports whether it is
// done: if it is back in requested meanwhile (stillRequested), it is
// queued again, due now, and its round is kept.
func (q *queue) finish(ctx context.Context, id string, stillRequested func() bool) bool {
	q.rdb.ZRem(ctx, q.key(), id)
	// Back in requested meanwhile (accepted, then cancelled by the
	// driver)? The hook queued it before our ZREM: queue again.
	if stillRequested() {
		q.rdb.ZAdd(ctx, q.key(), redis.Z{Score: float64(q.now().UnixMilli()), Member: id})
		return false
	}
	q.rdb.Del(ctx, dispatchKey(q.prefix, id))
	return true
}

// handBack makes a queued trip due at once, for whoever takes it next.
func (q *queue) handBack(ctx context.Context, id string) {
	q.rdb.ZAddXX(ctx, q.key(), redis.Z{Score: float64(q.now().UnixMilli()), Member: id})
}

// release gives up trip id's lease if this node still holds it.
func (q *queue) release(ctx context.Context, id string) {
	releaseLeaseScript.Run(ctx, q.rdb, []string{leaseKey(q.prefix, id)}, q.node)
}

// offeredTo returns the driver trip id is offered to now ("" if none).
func (q *queue) offeredTo(ctx context.Context, id string) (string, error) {
	o, err := q.rdb.HGet(ctx, dispatchKey(q.prefix, id), "offer").Result()
	if err == redis.Nil {
		return "", nil
	}
	return o, err
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed/feedredis"
)

// poolSize is the default number of Redis connections per node. go-redis's
// own default (10 per CPU: 20 here) starved a node holding thousands of
// WebSockets and SSE streams: handlers queued for a connection until
// "connection pool timeout" while the CPU and Redis were half idle
// (make bench, ingest and fan-out). Round trips are latency-bound, so more
// connections in flight is more throughput; a pool_size in the URL wins.
const poolSize = 256

// openRedis builds a go-redis UniversalClient from a URL:
//
//	redis://[user:pass@]host:port[/db]       standalone (rediss:// for TLS)
//	redis+sentinel://[:pass@]h1:26379,h2:26379/mastername[?db=N]
//	redis+cluster://[:pass@]h1:7000,h2:7001
func openRedis(raw string) (redis.UniversalClient, error) {
	switch {
	case strings.HasPrefix(raw, "redis://"), strings.HasPrefix(raw, "rediss://"):
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		if !strings.Contains(raw, "pool_size=") {
			opt.PoolSize = poolSize
		}
		return redis.NewClient(opt), nil
	case strings.HasPrefix(raw, "redis+cluster://"), strings.HasPrefix(raw, "redis+sentinel://"):
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		addrs := strings.Split(u.Host, ",")
		pass, _ := u.User.Password()
		user := u.User.Username()
		if u.Scheme == "redis+cluster" {
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Username: user, Password: pass, PoolSize: poolSize}), nil
		}
		master := strings.Trim(u.Path, "/")
		if master == "" {
			return nil, fmt.Errorf("redis url: sentinel URL needs the master name as its path")
		}
		return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: addrs,
			Username: user, Password: pass, SentinelPassword: pass, PoolSize: poolSize}), nil
	}
	return nil, fmt.Errorf("redis url: scheme must be redis, rediss, redis+sentinel or redis+cluster")
}

// connectRedis opens the node's Redis: the one at url, or, when url is
// empty, an embedded miniredis (dev mode; returned so the caller runs its
// expiry and closes it, also when the ping failed). Redis being unreachable
// reaches the api as feed.ErrUnavailable (503) through the client's hook.
func connectRedis(ctx context.Context, url string, log *slog.Logger) (redis.UniversalClient, *miniredis.Miniredis, error) {
	var (
		rdb redis.UniversalClient
		mr  *miniredis.Miniredis
		err error
	)
	if url == "" {
		if mr, err = miniredis.Run(); err != nil {
			return nil, nil, fmt.Errorf("embedded redis: %w", err)
		}
		rdb = redis.NewClient(&redis.Options{Addr: mr.Addr()})
		log.Info("redis: embedded, single node, in-memory (set HEXTRACK_REDIS_URL for a real Redis)")
	} else {
		if rdb, err = openRedis(url); err != nil {
			return nil, nil, err
		}
		log.Info("redis: connecting", "url", redactURL(url))
	}
	rdb.AddHook(feedredis.UnavailableHook{})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		return rdb, mr, fmt.Errorf("redis ping: %w", err)
	}
	return rdb, mr, nil
}

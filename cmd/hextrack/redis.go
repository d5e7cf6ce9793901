package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
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

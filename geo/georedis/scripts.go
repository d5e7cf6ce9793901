package georedis

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// indexScripts are loaded into Redis when a pipeline meets NOSCRIPT.
var indexScripts = []*redis.Script{moveScript, leaveScript, statusScript, trimScript, nearbyScript}

// runScripts builds a pipeline of EvalSha calls with build and runs it. When
// Redis does not know a script yet (a fresh, restarted or flushed server) it
// loads them all and runs the pipeline once more: every index script compares
// timestamps, so running one twice is harmless.
func runScripts(ctx context.Context, rdb redis.UniversalClient, build func(redis.Pipeliner) error) error {
	for attempt := 0; ; attempt++ {
		pipe := rdb.Pipeline()
		if err := build(pipe); err != nil {
			return err
		}
		_, err := pipe.Exec(ctx)
		if err == nil || attempt > 0 || !IsNoScript(err) {
			return err
		}
		for _, s := range indexScripts {
			if err := s.Load(ctx, rdb).Err(); err != nil {
				return err
			}
		}
	}
}

// IsNoScript reports whether err is Redis' NOSCRIPT reply.
func IsNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

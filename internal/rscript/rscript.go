// Package rscript runs a Lua script and reads its array reply as strings:
// the one shape every script of the trip and payment packages answers in
// ({'ok', id, ...}). It imports only go-redis.
package rscript

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Reply is a script's array answer as strings (integers formatted, other
// values "").
func Reply(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, len(arr))
	for i, x := range arr {
		switch t := x.(type) {
		case string:
			out[i] = t
		case int64:
			out[i] = strconv.FormatInt(t, 10)
		}
	}
	return out
}

// Run runs a script (go-redis sends EVALSHA, then EVAL on NOSCRIPT) and
// returns its reply; an empty reply is an error.
func Run(ctx context.Context, rdb redis.Scripter, s *redis.Script, keys []string, args ...any) ([]string, error) {
	v, err := s.Run(ctx, rdb, keys, args...).Result()
	if err != nil {
		return nil, err
	}
	r := Reply(v)
	if len(r) == 0 {
		return nil, fmt.Errorf("empty script reply %v", v)
	}
	return r, nil
}

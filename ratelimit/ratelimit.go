package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lua defines hx_take, for scripts that charge a bucket as one step of
// their own work. Prepend it to the script's source.
//
//	local wait = hx_take(key, now_ms, rate, burst, cost)
//
// It returns 0 when the bucket paid cost tokens (they are taken), else the
// whole milliseconds until it could pay (nothing taken). rate must be > 0
// (callers skip the call to turn a limit off); a cost above burst is always
// refused.
const Lua = `
local function hx_take(key, now, rate, burst, cost)
  local b = redis.call('HMGET', key, 't', 'ts')
  local t, last = tonumber(b[1]), tonumber(b[2])
  if not t or not last then t, last = burst, now end
  if now > last then
    t = math.min(burst, t + (now - last) * rate / 1000)
    last = now
  end
  if t < cost then return math.ceil((cost - t) * 1000 / rate) end
  redis.call('HSET', key, 't', tostring(t - cost), 'ts', tostring(last))
  redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
  return 0
end
`

// takeScript is hx_take by itself. KEYS: the bucket. ARGV: now ms, rate,
// burst, cost.
var takeScript = redis.NewScript(Lua + `
return hx_take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
`)

// Bucket charges per-key token buckets kept in Redis.
type Bucket struct {
	rdb    redis.Scripter
	prefix string
	now    func() time.Time
}

// New returns buckets kept in rdb under keys prefix+key.
func New(rdb redis.Scripter, prefix string) *Bucket {
	return &Bucket{rdb: rdb, prefix: prefix, now: time.Now}
}

// Take charges cost tokens to key's bucket, which refills at rate tokens
// per second up to burst. It returns 0 when they were taken, else how long
// until the bucket could pay them (nothing taken). A rate <= 0 is no limit:
// Take returns 0 without Redis. An error is Redis failing; the caller
// decides whether to let the request through.
func (b *Bucket) Take(ctx context.Context, key string, rate float64, burst, cost int) (time.Duration, error) {
	if rate <= 0 {
		return 0, nil
	}
	ms, err := takeScript.Run(ctx, b.rdb, []string{b.prefix + key},
		b.now().UnixMilli(), rate, max(burst, 1), cost).Int64()
	if err != nil {
		return 0, fmt.Errorf("ratelimit: take %s: %w", key, err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

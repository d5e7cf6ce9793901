package georedis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
)

// trimmer removes stale entries: the index's maintenance.
type trimmer struct{ *store }

// trimScript drops a region's stale records and their GEO set members.
// KEYS: where, GEO set. ARGV: cutoff ms, ids...
var trimScript = redis.NewScript(`
local n = 0
for i = 2, #ARGV do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur then
    local m = string.match(cur, '^[^|]*|([^|]*)')
    if tonumber(m) < tonumber(ARGV[1]) then
      redis.call('HDEL', KEYS[1], ARGV[i])
      redis.call('ZREM', KEYS[2], ARGV[i])
      n = n + 1
    end
  end
end
return n
`)

// Trim removes index entries older than olderThan: sorted-set members by
// score, then region records (conditionally, so a concurrent update wins).
// It returns the number of records removed.
func (x *trimmer) Trim(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := x.now().Add(-olderThan).UnixMilli()
	regions, err := x.rdb.SMembers(ctx, x.prefix+"geo:regions").Result()
	if err != nil {
		return 0, fmt.Errorf("georedis: trim: %w", err)
	}
	removed := 0
	for _, rs := range regions {
		r, err := geo.ParseCell(rs)
		if err != nil {
			continue
		}
		rp := x.regionPrefix(r)
		cells, err := x.rdb.SMembers(ctx, rp+"cells").Result()
		if err != nil {
			return removed, fmt.Errorf("georedis: trim: %w", err)
		}
		for _, c := range cells {
			key := rp + "c:" + c
			if err := x.rdb.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(cutoff, 10)).Err(); err != nil {
				return removed, fmt.Errorf("georedis: trim: %w", err)
			}
			if n, err := x.rdb.ZCard(ctx, key).Result(); err == nil && n == 0 {
				x.rdb.SRem(ctx, rp+"cells", c)
			}
		}
		var cursor uint64
		for {
			kv, next, err := x.rdb.HScan(ctx, rp+"w", cursor, "", 500).Result()
			if err != nil {
				return removed, fmt.Errorf("georedis: trim: %w", err)
			}
			args := []any{cutoff}
			for i := 0; i+1 < len(kv); i += 2 {
				parts := strings.SplitN(kv[i+1], "|", 3)
				if len(parts) < 2 {
					args = append(args, kv[i])
					continue
				}
				if ms, err := strconv.ParseInt(parts[1], 10, 64); err != nil || ms < cutoff {
					args = append(args, kv[i])
				}
			}
			if len(args) > 1 {
				n, err := trimScript.Run(ctx, x.rdb, []string{rp + "w", rp + "g"}, args...).Int()
				if err != nil {
					return removed, fmt.Errorf("georedis: trim: %w", err)
				}
				removed += n
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return removed, nil
}

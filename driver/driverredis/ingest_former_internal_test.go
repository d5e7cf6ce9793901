package driverredis

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/redistest"
)

// TestIngestScriptMatchesFormer runs ingestScript and the script it
// replaced (one ZSCORE and ZADD per ping, every value as text) side by side
// on random ts-ordered batches (replayed and repeated seqs, late fixes,
// jumps, a window of 16 seqs that fills) and requires the same replies and
// the same stored state and seqs after every batch.
func TestIngestScriptMatchesFormer(t *testing.T) {
	rdb, prefix := redistest.MustOpen(t)
	ctx := context.Background()
	former := redis.NewScript(formerIngestLua)
	cfg := driver.Config{Prefix: prefix + "new:", SeqWindow: 16, PingRate: -1}
	s := NewService(rdb, nil, cfg)
	r := rand.New(rand.NewPCG(3, 4))
	now := time.UnixMilli(1795608000000)
	base := geo.Point{Lat: 41.15, Lng: -8.61}
	for d := 0; d < 40; d++ {
		id := fmt.Sprintf("d%d", d)
		top := int64(0)
		for b := 0; b < 30; b++ {
			n := 1 + r.IntN(12)
			ps := make([]driver.Ping, n)
			for i := range ps {
				seq := top + 1 + int64(i)
				switch r.IntN(6) {
				case 0: // a replay or a late one
					seq = 1 + r.Int64N(top+1)
				case 1: // a gap
					seq += r.Int64N(5)
				}
				ts := now.Add(time.Duration(int(seq)*1000+r.IntN(3000)-1500) * time.Millisecond)
				pos := geo.Offset(base, float64(d*37%360), float64(seq)*10+r.Float64()*5)
				if r.IntN(15) == 0 {
					pos = geo.Offset(pos, r.Float64()*360, 3000) // a jump
				}
				acc, spd, hdg := math.NaN(), math.NaN(), math.NaN()
				if r.IntN(2) == 0 {
					acc, spd, hdg = r.Float64()*30, r.Float64()*20, r.Float64()*359
				}
				ps[i] = driver.Ping{Pos: pos, TS: ts, Seq: seq, Accuracy: acc, Speed: spd, Heading: hdg}
			}
			for _, p := range ps {
				top = max(top, p.Seq)
			}
			slices.SortStableFunc(ps, func(a, b driver.Ping) int {
				if c := a.TS.Compare(b.TS); c != 0 {
					return c
				}
				return int(a.Seq - b.Seq)
			})
			c := s.newIngestCall(id, now, n, n)
			args := []any{cfg.Limits.WithDefaults().MaxJumpSpeed, 16, int64(7 * 24 * 3600), driver.StatusAvailable, now.UnixMilli(), -1.0, 1000, n}
			for _, p := range ps {
				cell := geo.CellOf(p.Pos, geo.ResIndex)
				c.ping(p, cell)
				opt := func(f float64) string {
					if math.IsNaN(f) {
						return ""
					}
					return strconv.FormatFloat(f, 'f', 2, 64)
				}
				args = append(args, p.Seq, p.TS.UnixMilli(), strconv.FormatFloat(p.Pos.Lat, 'f', 7, 64), strconv.FormatFloat(p.Pos.Lng, 'f', 7, 64),
					opt(p.Accuracy), opt(p.Speed), opt(p.Heading), cell.String())
			}
			got, err := s.pipes.run(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			op := prefix + "old:"
			want, err := former.Run(ctx, rdb, []string{stateKey(op, id), seqsKey(op, id), op + "drv:{" + id + "}:rl"}, args...).Result()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("driver %d batch %d: reply %v, the former script's %v", d, b, got, want)
			}
			for _, k := range []func(string, string) string{stateKey, seqsKey} {
				var gs, ws any
				if k(op, id) == seqsKey(op, id) {
					gs, _ = rdb.ZRangeWithScores(ctx, k(cfg.Prefix, id), 0, -1).Result()
					ws, _ = rdb.ZRangeWithScores(ctx, k(op, id), 0, -1).Result()
				} else {
					gs, _ = rdb.HGetAll(ctx, k(cfg.Prefix, id)).Result()
					ws, _ = rdb.HGetAll(ctx, k(op, id)).Result()
				}
				if !reflect.DeepEqual(gs, ws) {
					t.Fatalf("driver %d batch %d: stored %v, the former script stored %v", d, b, gs, ws)
				}
			}
		}
	}
}

const formerIngestLua = `
local h, s = KEYS[1], KEYS[2]
local maxv, window, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now, rate, burst, cost = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if rate > 0 then
  local bk = redis.call('HMGET', KEYS[3], 't', 'ts')
  local tokens, last = tonumber(bk[1]), tonumber(bk[2])
  if not tokens or not last then tokens, last = burst, now end
  if now > last then
    tokens = math.min(burst, tokens + (now - last) * rate / 1000)
    last = now
  end
  if tokens < cost then
    return redis.error_reply('RATELIMIT ' .. math.ceil((cost - tokens) * 1000 / rate))
  end
  redis.call('HSET', KEYS[3], 't', tostring(tokens - cost), 'ts', tostring(last))
  redis.call('PEXPIRE', KEYS[3], math.ceil(burst * 1000 / rate) + 1000)
end
local n = (#ARGV - 8) / 8
if n == 0 then return 0 end
local st = redis.call('HMGET', h, 'lat', 'lng', 'ts', 'seq', 'cell', 'status', 'trip')
local lat, lng, ts = tonumber(st[1]), tonumber(st[2]), tonumber(st[3])
local maxseq = tonumber(st[4]) or 0
local prevCell = st[5] or ''
local status = st[6] or ARGV[4]
local trip = st[7] or ''
local floor = -1
if redis.call('ZCARD', s) >= window then
  local m = redis.call('ZRANGE', s, 0, 0, 'WITHSCORES')
  floor = tonumber(m[2])
end
local function dist(a1, o1, a2, o2)
  local r = math.pi / 180
  local dlat, dlng = (a2 - a1) * r, (o2 - o1) * r
  local x = math.sin(dlat/2)^2 + math.cos(a1*r) * math.cos(a2*r) * math.sin(dlng/2)^2
  return 2 * 6371008.8 * math.asin(math.min(1, math.sqrt(x)))
end
local codes = {}
local applied = 0
local cur = {}
for i = 0, n - 1 do
  local b = 8 + i * 8
  local seq, pts = tonumber(ARGV[b+1]), tonumber(ARGV[b+2])
  local plat, plng = tonumber(ARGV[b+3]), tonumber(ARGV[b+4])
  if seq <= floor or redis.call('ZSCORE', s, ARGV[b+1]) then
    codes[#codes+1] = 2
  else
    local ok = true
    if ts and lat then
      local dt = math.abs(pts - ts) / 1000
      if dist(lat, lng, plat, plng) > maxv * dt + 50 then ok = false end
    end
    if not ok then
      codes[#codes+1] = 3
    else
      redis.call('ZADD', s, seq, ARGV[b+1])
      if seq > maxseq then maxseq = seq end
      if (not ts) or pts > ts then
        lat, lng, ts = plat, plng, pts
        cur = {ARGV[b+3], ARGV[b+4], ARGV[b+2], ARGV[b+5], ARGV[b+6], ARGV[b+7], ARGV[b+8]}
        applied = 1
        codes[#codes+1] = 0
      else
        codes[#codes+1] = 1
      end
    end
  end
end
local card = redis.call('ZCARD', s)
if card > window then redis.call('ZREMRANGEBYRANK', s, 0, card - window - 1) end
if applied == 1 then
  redis.call('HSET', h, 'lat', cur[1], 'lng', cur[2], 'ts', cur[3], 'acc', cur[4],
    'spd', cur[5], 'hdg', cur[6], 'cell', cur[7], 'status', status)
end
redis.call('HSET', h, 'seq', maxseq, 'status', status)
redis.call('EXPIRE', h, ttl)
redis.call('EXPIRE', s, ttl)
local cell = redis.call('HGET', h, 'cell') or ''
return {maxseq, applied, prevCell, cell, tostring(ts or 0), tostring(lat or ''), tostring(lng or ''), status, trip, codes}
`

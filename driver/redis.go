package driver

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
)

// Ping outcome codes returned by ingestScript, one per ping.
const (
	codeApplied   = 0 // accepted and now the driver's position
	codeOlder     = 1 // accepted, older than the current position: not applied
	codeDuplicate = 2 // seq seen before
	codeJump      = 3 // implausible jump from the current position
)

// ingestScript applies a ts-ordered batch of pings to one driver atomically.
//
// First it charges the driver's ping bucket (KEYS[3]: tokens t, refilled at
// rate/s up to burst since ts): a batch costs its size; when the bucket
// cannot pay, nothing is applied and the reply is the error
// "RATELIMIT <ms until it can>". Rate <= 0 disables the bucket.
//
// KEYS: drv hash, seqs zset, bucket hash.
// ARGV: max jump speed (m/s), seq window, state ttl (s), default status, now
// ms, rate (pings/s), burst, cost, then per ping: seq, ts ms, lat, lng,
// accuracy, speed, heading, r9 cell.
// Returns: {max seq, applied 0|1, prev cell, cell, ts, lat, lng, status, trip,
// codes}, or 0 when there are no pings (only the bucket was charged).
var ingestScript = redis.NewScript(ingestLua)

const ingestLua = `
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

// ingestCall is one ingestScript call (EVALSHA, keys, ARGV) with every
// argument encoded into one buffer: a batch of n pings is 8n+14 arguments,
// and building them as strings in interfaces cost an allocation or two
// each. Calls are pooled (ingestCalls); go-redis writes the arguments
// before the call returns and keeps none of them.
type ingestCall struct {
	buf  []byte
	args []any // "evalsha", then *ingestArg each
	arg  []ingestArg
}

// ingestArg is one argument of an ingestCall: its buf[start:end].
type ingestArg struct {
	c          *ingestCall
	start, end int32
}

// MarshalBinary makes an ingestArg a go-redis argument, sent as is.
func (a *ingestArg) MarshalBinary() ([]byte, error) { return a.c.buf[a.start:a.end], nil }

// String is the argument's text (go-redis reads keys with fmt.Sprint to
// route a command in a Cluster).
func (a *ingestArg) String() string { return string(a.c.buf[a.start:a.end]) }

var ingestCalls = sync.Pool{New: func() any { return new(ingestCall) }}

// newIngestCall starts a call to ingestScript for driver id with the
// script's fixed ARGV (see ingestScript; cost is the batch size as sent,
// invalid pings included) and room for n pings.
func (s *Service) newIngestCall(id string, now time.Time, cost, n int) *ingestCall {
	c := ingestCalls.Get().(*ingestCall)
	nargs := 6 + ingestFixedArgs + 8*n
	c.buf = slices.Grow(c.buf[:0], 3*len(id)+64+90*n)
	c.args = slices.Grow(c.args[:0], nargs)
	// Room for every ingestArg up front: args point into arg, which must
	// not move while it is filled.
	c.arg = slices.Grow(c.arg[:0], nargs)
	c.args = append(c.args, "evalsha")
	c.str(ingestScript.Hash())
	c.str("3")
	p := s.cfg.Prefix
	c.key(p, id, "")
	c.key(p, id, ":seqs")
	c.key(p, id, ":rl")
	// As go-redis writes a float64 and ints.
	c.float(s.cfg.Limits.MaxJumpSpeed, -1)
	c.int(int64(s.cfg.SeqWindow))
	c.int(int64(s.cfg.StateTTL / time.Second))
	c.str(StatusAvailable)
	c.int(now.UnixMilli())
	c.float(s.cfg.PingRate, -1)
	c.int(int64(s.cfg.PingBurst))
	c.int(int64(cost))
	return c
}

// ping adds one ping's ARGV: seq, ts ms, lat, lng, accuracy, speed,
// heading (the optional ones empty when unknown), r9 cell (the ping's).
func (c *ingestCall) ping(p Ping, cell geo.Cell) {
	c.int(p.Seq)
	c.int(p.TS.UnixMilli())
	c.float(p.Pos.Lat, 7)
	c.float(p.Pos.Lng, 7)
	c.opt(p.Accuracy)
	c.opt(p.Speed)
	c.opt(p.Heading)
	start := len(c.buf)
	c.buf = strconv.AppendUint(c.buf, uint64(cell), 16) // Cell.String's form
	c.mark(start)
}

func (c *ingestCall) mark(start int) {
	c.arg = append(c.arg, ingestArg{c: c, start: int32(start), end: int32(len(c.buf))})
	c.args = append(c.args, &c.arg[len(c.arg)-1])
}

func (c *ingestCall) str(v string) {
	start := len(c.buf)
	c.buf = append(c.buf, v...)
	c.mark(start)
}

// key adds the key stateKey (suffix "") or seqsKey (":seqs") would give.
func (c *ingestCall) key(prefix, id, suffix string) {
	start := len(c.buf)
	c.buf = append(append(append(append(append(c.buf, prefix...), "drv:{"...), id...), '}'), suffix...)
	c.mark(start)
}

func (c *ingestCall) int(n int64) {
	start := len(c.buf)
	c.buf = strconv.AppendInt(c.buf, n, 10)
	c.mark(start)
}

func (c *ingestCall) float(f float64, prec int) {
	start := len(c.buf)
	c.buf = strconv.AppendFloat(c.buf, f, 'f', prec, 64)
	c.mark(start)
}

// opt adds an optional value with 2 decimals, or "" for NaN (not sent).
func (c *ingestCall) opt(f float64) {
	if math.IsNaN(f) {
		c.mark(len(c.buf))
		return
	}
	c.float(f, 2)
}

// run sends the call (EVALSHA, then EVAL when Redis does not know the
// script, as redis.Script.Run), at most Config.MaxInflight at once, and puts
// it back in the pool.
func (s *Service) run(ctx context.Context, c *ingestCall) (any, error) {
	defer func() {
		if cap(c.buf) <= 64<<10 {
			clear(c.args) // drop the pointers into this call
			ingestCalls.Put(c)
		}
	}()
	select {
	case s.inflight <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.inflight }()
	v, err := s.rdb.Do(ctx, c.args...).Result()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		args := slices.Clone(c.args)
		args[0], args[1] = "eval", ingestLua
		v, err = s.rdb.Do(ctx, args...).Result()
	}
	return v, err
}

// statusScript sets a driver's status unless it is busy on a trip.
// KEYS: drv hash. ARGV: status, ttl. Returns {status, trip, cell} or an error reply.
var statusScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'status', 'trip', 'cell')
if st[2] and st[2] ~= '' then
  return redis.error_reply('BUSY driver is on trip ' .. st[2])
end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {ARGV[1], '', st[3] or ''}
`)

// claimScript gives a driver to a trip if the driver is free.
// KEYS: drv hash. ARGV: trip id. Returns {ok 0|1, current trip or status, cell}.
var claimScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'status', 'trip', 'cell')
if st[2] == ARGV[1] then return {1, ARGV[1], st[3] or ''} end
if st[1] ~= 'available' or (st[2] and st[2] ~= '') then
  return {0, (st[2] and st[2] ~= '') and st[2] or (st[1] or 'unknown'), st[3] or ''}
end
redis.call('HSET', KEYS[1], 'status', 'on_trip', 'trip', ARGV[1])
return {1, ARGV[1], st[3] or ''}
`)

// releaseScript frees a driver held by the given trip.
// KEYS: drv hash. ARGV: trip id, status after. Returns {released 0|1, cell}.
var releaseScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'trip', 'cell')
if st[1] ~= ARGV[1] then return {0, st[2] or ''} end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'trip', '')
return {1, st[2] or ''}
`)

func stateKey(prefix, id string) string { return prefix + "drv:{" + id + "}" }
func seqsKey(prefix, id string) string  { return prefix + "drv:{" + id + "}:seqs" }

// ingestReply is ingestScript's answer.
type ingestReply struct {
	maxSeq  int64
	applied bool
	prev    geo.Cell
	cell    geo.Cell
	ts      time.Time
	pos     geo.Point
	status  string
	trip    string
	codes   []int64
}

func parseIngestReply(v any) (ingestReply, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) != 10 {
		return ingestReply{}, fmt.Errorf("driver: unexpected ingest reply %T", v)
	}
	var r ingestReply
	r.maxSeq, _ = arr[0].(int64)
	ap, _ := arr[1].(int64)
	r.applied = ap == 1
	r.prev, _ = geo.ParseCell(str(arr[2]))
	r.cell, _ = geo.ParseCell(str(arr[3]))
	if ms, err := strconv.ParseFloat(str(arr[4]), 64); err == nil && ms > 0 {
		r.ts = time.UnixMilli(int64(ms))
	}
	r.pos.Lat, _ = strconv.ParseFloat(str(arr[5]), 64)
	r.pos.Lng, _ = strconv.ParseFloat(str(arr[6]), 64)
	r.status = str(arr[7])
	r.trip = str(arr[8])
	codes, _ := arr[9].([]any)
	r.codes = make([]int64, 0, len(codes))
	for _, c := range codes {
		n, _ := c.(int64)
		r.codes = append(r.codes, n)
	}
	return r, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// runScript runs s, loading it on NOSCRIPT (go-redis Script.Run does this).
func runScript(ctx context.Context, rdb redis.Scripter, s *redis.Script, keys []string, args ...any) (any, error) {
	v, err := s.Run(ctx, rdb, keys, args...).Result()
	if err != nil && strings.HasPrefix(err.Error(), "BUSY ") {
		return nil, fmt.Errorf("%w: %s", ErrConflict, strings.TrimPrefix(err.Error(), "BUSY "))
	}
	return v, err
}

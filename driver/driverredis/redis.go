package driverredis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/autopipe"
	"github.com/hextrack/hextrack/ratelimit"
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
// First it charges the driver's ping bucket (KEYS[3], ratelimit's hx_take:
// refilled at rate/s up to burst): a batch costs its size; when the bucket
// cannot pay, nothing is applied and the reply is the error
// "RATELIMIT <ms until it can>". Rate <= 0 disables the bucket.
//
// KEYS: drv hash, seqs zset, bucket hash, suspension hash (read only when
// the drv hash has no status: a driver whose state expired while
// suspended comes back suspended, not available).
// ARGV: max jump speed (m/s), seq window, state ttl (s), default status, now
// ms, rate (pings/s), burst, cost, then the pings' numbers packed (nums:
// little-endian doubles, every ping's seq, then every ping's ts ms, lat,
// lng), then per ping: its seq as text (the seqs member) and its record
// "lat|lng|ts|accuracy|speed|heading|r9 cell" (the state fields it sets when
// it becomes the position; the optional ones empty when unknown).
// Returns: {max seq, applied 0|1, prev cell, cell, ts, lat, lng, status, trip,
// codes}, or 0 when there are no pings (only the bucket was charged).
//
// Its cost is Redis' (the server runs every batch of every driver): the
// numbers come as one binary argument (two struct.unpack calls instead of
// four ARGV strings and tonumber per ping), only seqs that may be known are
// looked up (one ZMSCORE; a seq above the set's highest is new), the new
// ones are added with one ZADD, and the state with one HSET.
var ingestScript = redis.NewScript(ingestLua)

const ingestLua = ratelimit.Lua + `
local h, s = KEYS[1], KEYS[2]
local maxv, window, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now, rate, burst, cost = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if rate > 0 then
  local wait = hx_take(KEYS[3], now, rate, burst, cost)
  if wait > 0 then return redis.error_reply('RATELIMIT ' .. wait) end
end
local n = (#ARGV - 9) / 2
if n == 0 then return 0 end
local sq, pv
local struct = rawget(_G, 'struct')
if struct then
  sq = {struct.unpack('<' .. string.rep('d', n), ARGV[9])}
  pv = {struct.unpack('<' .. string.rep('d', 3 * n), ARGV[9], 8 * n + 1)}
else
  -- A Lua without Redis' struct library (the embedded miniredis): the
  -- same little-endian doubles, decoded by hand.
  local byte, ldexp, floor = string.byte, math.ldexp, math.floor
  local function doubles(s, count, at)
    local out = {}
    for i = 1, count do
      local b1, b2, b3, b4, b5, b6, b7, b8 = byte(s, at, at + 7)
      at = at + 8
      local e = (b8 % 128) * 16 + floor(b7 / 16)
      local m = (((((b7 % 16) * 256 + b6) * 256 + b5) * 256 + b4) * 256 + b3) * 65536 + b2 * 256 + b1
      local v
      if e == 0 then v = ldexp(m, -1074)
      elseif e == 2047 then v = (m == 0) and math.huge or 0/0
      else v = ldexp(m + 4503599627370496, e - 1075) end
      if b8 >= 128 then v = -v end
      out[i] = v
    end
    return out
  end
  sq = doubles(ARGV[9], n, 1)
  pv = doubles(ARGV[9], 3 * n, 8 * n + 1)
end
local st = redis.call('HMGET', h, 'lat', 'lng', 'ts', 'seq', 'cell', 'status', 'trip')
local lat, lng, ts = tonumber(st[1]), tonumber(st[2]), tonumber(st[3])
local maxseq = tonumber(st[4]) or 0
local prevCell = st[5] or ''
local status = st[6]
if not status then
  -- A new (or expired) state: a suspension outlives it (KEYS[4]).
  status = (redis.call('EXISTS', KEYS[4]) == 1) and 'suspended' or ARGV[4]
end
local trip = st[7] or ''
local card = redis.call('ZCARD', s)
local floor = -1
local known = {}
if card > 0 then
  if card >= window then
    floor = tonumber(redis.call('ZRANGE', s, 0, 0, 'WITHSCORES')[2])
  end
  -- Members score their own seq: one above the highest score is unknown.
  local top = tonumber(redis.call('ZRANGE', s, -1, -1, 'WITHSCORES')[2])
  local ask = {}
  for i = 1, n do
    if sq[i] > floor and sq[i] <= top then ask[#ask+1] = ARGV[8 + 2 * i] end
  end
  if #ask > 0 then
    local sc = redis.call('ZMSCORE', s, unpack(ask))
    for i = 1, #ask do
      if sc[i] then known[ask[i]] = true end
    end
  end
end
local sin, cos, asin, sqrt, min, abs = math.sin, math.cos, math.asin, math.sqrt, math.min, math.abs
local rad = math.pi / 180
local function dist(a1, o1, a2, o2)
  local dlat, dlng = (a2 - a1) * rad, (o2 - o1) * rad
  local x = sin(dlat/2)^2 + cos(a1*rad) * cos(a2*rad) * sin(dlng/2)^2
  return 2 * 6371008.8 * asin(min(1, sqrt(x)))
end
local codes = {}
local applied = 0
local cur
local zadd = {}
for i = 1, n do
  local seq, m = sq[i], ARGV[8 + 2 * i]
  if seq <= floor or known[m] then
    codes[i] = 2
  else
    local b = 3 * i - 2
    local pts, plat, plng = pv[b], pv[b+1], pv[b+2]
    if ts and lat and dist(lat, lng, plat, plng) > maxv * (abs(pts - ts) / 1000) + 50 then
      codes[i] = 3
    else
      known[m] = true
      zadd[#zadd+1] = seq
      zadd[#zadd+1] = m
      if seq > maxseq then maxseq = seq end
      if (not ts) or pts > ts then
        lat, lng, ts = plat, plng, pts
        cur = i
        applied = 1
        codes[i] = 0
      else
        codes[i] = 1
      end
    end
  end
end
if #zadd > 0 then
  card = card + redis.call('ZADD', s, unpack(zadd))
  if card > window then redis.call('ZREMRANGEBYRANK', s, 0, card - window - 1) end
end
local cell = prevCell
if cur then
  local rlat, rlng, rts, racc, rspd, rhdg, rcell = string.match(ARGV[9 + 2 * cur], '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  cell = rcell
  redis.call('HSET', h, 'lat', rlat, 'lng', rlng, 'ts', rts, 'acc', racc,
    'spd', rspd, 'hdg', rhdg, 'cell', cell, 'seq', maxseq, 'status', status)
else
  redis.call('HSET', h, 'seq', maxseq, 'status', status)
end
redis.call('EXPIRE', h, ttl)
redis.call('EXPIRE', s, ttl)
return {maxseq, applied, prevCell, cell, tostring(ts or 0), tostring(lat or ''), tostring(lng or ''), status, trip, codes}
`

// ingestCall is one ingestScript call (EVALSHA, keys, ARGV) with every
// argument encoded into two buffers (text and the packed numbers): a batch
// of n pings is 2n+15 arguments, and building them as strings in
// interfaces cost an allocation or two each. Calls are pooled
// (ingestCalls); go-redis writes the arguments before the call returns and
// keeps none of them.
type ingestCall struct {
	buf  []byte
	nums []byte // ARGV nums: n seqs, then n × (ts, lat, lng)
	n, k int    // pings announced, added
	args []any  // "evalsha", then *ingestArg each
	arg  []ingestArg
}

// ingestArg is one argument of an ingestCall: its buf[start:end], or its
// nums when start < 0.
type ingestArg struct {
	c          *ingestCall
	start, end int32
}

func (a *ingestArg) bytes() []byte {
	if a.start < 0 {
		return a.c.nums
	}
	return a.c.buf[a.start:a.end]
}

// MarshalBinary makes an ingestArg a go-redis argument, sent as is.
func (a *ingestArg) MarshalBinary() ([]byte, error) { return a.bytes(), nil }

// String is the argument's text (go-redis reads keys with fmt.Sprint to
// route a command in a Cluster).
func (a *ingestArg) String() string { return string(a.bytes()) }

var ingestCalls = sync.Pool{New: func() any { return new(ingestCall) }}

// newIngestCall starts a call to ingestScript for driver id with the
// script's fixed ARGV (see ingestScript; cost is the batch size as sent,
// invalid pings included) and room for n pings, which must all be added
// with ping.
func (s *Ingester) newIngestCall(id string, now time.Time, cost, n int) *ingestCall {
	c := ingestCalls.Get().(*ingestCall)
	nargs := 8 + ingestFixedArgs + 2*n
	c.buf = slices.Grow(c.buf[:0], 3*len(id)+64+80*n)
	c.nums = slices.Grow(c.nums[:0], 32*n)[:32*n]
	c.n, c.k = n, 0
	c.args = slices.Grow(c.args[:0], nargs)
	// Room for every ingestArg up front: args point into arg, which must
	// not move while it is filled.
	c.arg = slices.Grow(c.arg[:0], nargs)
	c.args = append(c.args, "evalsha")
	c.str(ingestScript.Hash())
	c.str("4")
	p := s.cfg.Prefix
	c.key(p, id, "")
	c.key(p, id, ":seqs")
	c.key(p, id, ":rl")
	c.key(p, id, ":susp")
	// As go-redis writes a float64 and ints.
	c.float(s.cfg.Limits.MaxJumpSpeed, -1)
	c.int(int64(s.cfg.SeqWindow))
	c.int(int64(s.cfg.StateTTL / time.Second))
	c.str(driver.StatusAvailable)
	c.int(now.UnixMilli())
	c.float(s.cfg.PingRate, -1)
	c.int(int64(s.cfg.PingBurst))
	c.int(int64(cost))
	c.arg = append(c.arg, ingestArg{c: c, start: -1})
	c.args = append(c.args, &c.arg[len(c.arg)-1])
	return c
}

// ping adds the next ping: its numbers to nums (seq; ts ms, lat, lng: the
// values the script's tonumber gave for the text it was sent before), its
// seq as text, and its record: lat and lng with 7 decimals, ts ms, accuracy,
// speed, heading with 2 (empty when unknown) and the r9 cell (the ping's).
func (c *ingestCall) ping(p driver.Ping, cell geo.Cell) {
	k := c.k
	c.k++
	ms := p.TS.UnixMilli()
	binary.LittleEndian.PutUint64(c.nums[8*k:], math.Float64bits(float64(p.Seq)))
	c.int(p.Seq)
	start := len(c.buf)
	c.buf = strconv.AppendFloat(c.buf, p.Pos.Lat, 'f', 7, 64)
	lat := fixed7(c.buf[start:])
	c.buf = append(c.buf, '|')
	i := len(c.buf)
	c.buf = strconv.AppendFloat(c.buf, p.Pos.Lng, 'f', 7, 64)
	lng := fixed7(c.buf[i:])
	c.buf = append(c.buf, '|')
	c.buf = strconv.AppendInt(c.buf, ms, 10)
	c.buf = appendOpt(append(c.buf, '|'), p.Accuracy)
	c.buf = appendOpt(append(c.buf, '|'), p.Speed)
	c.buf = appendOpt(append(c.buf, '|'), p.Heading)
	c.buf = append(c.buf, '|')
	c.buf = strconv.AppendUint(c.buf, uint64(cell), 16) // Cell.String's form
	c.mark(start)
	v := c.nums[8*c.n+24*k:]
	binary.LittleEndian.PutUint64(v, math.Float64bits(float64(ms)))
	binary.LittleEndian.PutUint64(v[8:], math.Float64bits(lat))
	binary.LittleEndian.PutUint64(v[16:], math.Float64bits(lng))
}

// fixed7 is the double nearest to b, a number strconv wrote with 7
// decimals ([-]d+.ddddddd): the value tonumber (strtod) gives for it. The
// digits without the point are an integer m below 2^53 and 1e7 is exact,
// so the correctly rounded m/1e7 is that nearest double.
func fixed7(b []byte) float64 {
	neg := len(b) > 0 && b[0] == '-'
	var m int64
	for _, ch := range b {
		if '0' <= ch && ch <= '9' {
			m = m*10 + int64(ch-'0')
		}
	}
	f := float64(m) / 1e7
	if neg {
		f = -f
	}
	return f
}

// appendOpt appends an optional value with 2 decimals, nothing for NaN.
func appendOpt(b []byte, f float64) []byte {
	if math.IsNaN(f) {
		return b
	}
	return strconv.AppendFloat(b, f, 'f', 2, 64)
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

// pipes send the ingest scripts and the index updates of concurrent
// batches as pipelines (internal/autopipe), at most Config.MaxInflight of
// each in flight.
type pipes struct {
	rdb     redis.UniversalClient
	idx     *georedis.Index
	scripts *autopipe.Pipe[*scriptJob]
	puts    *autopipe.Pipe[*putJob]
}

// scriptJob is one ingest script call and its outcome (pipe).
type scriptJob struct {
	c   *ingestCall
	v   any
	err error
}

// run sends the call (EVALSHA, then EVAL when Redis does not know the
// script, as redis.Script.Run) in the next pipeline of ingest scripts (at
// most Config.MaxInflight in flight), and puts it back in the pool.
func (s *pipes) run(ctx context.Context, c *ingestCall) (any, error) {
	defer func() {
		if cap(c.buf) <= 64<<10 && cap(c.nums) <= 64<<10 {
			clear(c.args) // drop the pointers into this call
			ingestCalls.Put(c)
		}
	}()
	j := &scriptJob{c: c}
	if err := s.scripts.Do(ctx, j); err != nil {
		return nil, err
	}
	return j.v, j.err
}

// sendScripts is the scripts pipe's send: one call as a command, more as
// one pipeline; a call Redis answered NOSCRIPT goes again as EVAL.
func (s *pipes) sendScripts(ctx context.Context, jobs []*scriptJob) {
	if len(jobs) == 1 {
		j := jobs[0]
		j.v, j.err = s.rdb.Do(ctx, j.c.args...).Result()
	} else {
		p := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(jobs))
		for i, j := range jobs {
			cmds[i] = p.Do(ctx, j.c.args...)
		}
		_, _ = p.Exec(ctx) // each command carries its own error
		for i, j := range jobs {
			j.v, j.err = cmds[i].Result()
		}
	}
	for _, j := range jobs {
		if j.err != nil && redis.HasErrorPrefix(j.err, "NOSCRIPT") {
			args := slices.Clone(j.c.args)
			args[0], args[1] = "eval", ingestLua
			j.v, j.err = s.rdb.Do(ctx, args...).Result()
		}
	}
}

// putJob is one index update and its outcome (pipe).
type putJob struct {
	u   geo.Update
	err error
}

// put records a driver's new position in the index, in the next pipeline
// of index updates.
func (s *pipes) put(ctx context.Context, u geo.Update) error {
	j := &putJob{u: u}
	if err := s.puts.Do(ctx, j); err != nil {
		return err
	}
	return j.err
}

// sendPuts is the puts pipe's send: georedis.Index.UpdateMany of every update.
func (s *pipes) sendPuts(ctx context.Context, jobs []*putJob) {
	us := make([]geo.Update, len(jobs))
	for i, j := range jobs {
		us[i] = j.u
	}
	err := s.idx.UpdateMany(ctx, us)
	for _, j := range jobs {
		j.err = err
	}
}

// The claims scripts record a change of the driver's status: with ARGV
// rec = "1" they append it (fields status, trip) to KEYS[2], the driver's
// status stream (StatusLog), kept ARGV logttl s; with "0" KEYS[2] is not
// touched.

// statusScript sets a driver's status unless it is busy on a trip or
// suspended.
// KEYS: drv hash, status stream, suspension hash. ARGV: status, ttl, rec,
// logttl. Returns {status, trip, cell} or an error reply.
var statusScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then
  return redis.error_reply('SUSPENDED driver is suspended; ops must reinstate it first')
end
local st = redis.call('HMGET', KEYS[1], 'status', 'trip', 'cell')
if st[2] and st[2] ~= '' then
  return redis.error_reply('ONTRIP driver is on trip ' .. st[2])
end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if ARGV[3] == '1' and st[1] ~= ARGV[1] then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'status', ARGV[1], 'trip', '')
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return {ARGV[1], '', st[3] or ''}
`)

// claimScript gives a driver to a trip if the driver is free and not
// suspended.
// KEYS: drv hash, status stream, suspension hash. ARGV: trip id, rec,
// logttl. Returns {ok 0|1, current trip or status, cell} or an error reply.
var claimScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then
  return redis.error_reply('SUSPENDED driver is suspended and may not accept trips')
end
local st = redis.call('HMGET', KEYS[1], 'status', 'trip', 'cell')
if st[2] == ARGV[1] then return {1, ARGV[1], st[3] or ''} end
if st[1] ~= 'available' or (st[2] and st[2] ~= '') then
  return {0, (st[2] and st[2] ~= '') and st[2] or (st[1] or 'unknown'), st[3] or ''}
end
redis.call('HSET', KEYS[1], 'status', 'on_trip', 'trip', ARGV[1])
if ARGV[2] == '1' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'status', 'on_trip', 'trip', ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return {1, ARGV[1], st[3] or ''}
`)

// releaseScript frees a driver held by the given trip.
// KEYS: drv hash, status stream. ARGV: trip id, status after, rec, logttl.
// Returns {released 0|1, cell}.
var releaseScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'trip', 'cell')
if st[1] ~= ARGV[1] then return {0, st[2] or ''} end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'trip', '')
if ARGV[3] == '1' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'status', ARGV[2], 'trip', '')
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return {1, st[2] or ''}
`)

func stateKey(prefix, id string) string { return prefix + "drv:{" + id + "}" }
func seqsKey(prefix, id string) string  { return prefix + "drv:{" + id + "}:seqs" }
func suspKey(prefix, id string) string  { return prefix + "drv:{" + id + "}:susp" }

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

// scriptRefusals are the error replies of the scripts that are refusals,
// by prefix, and the sentinel each one is.
var scriptRefusals = map[string]error{
	"ONTRIP ":    driver.ErrConflict,
	"SUSPENDED ": driver.ErrSuspended,
	"NOTFOUND ":  driver.ErrNotFound,
}

// runScript runs s, loading it on NOSCRIPT (go-redis Script.Run does this).
func runScript(ctx context.Context, rdb redis.Scripter, s *redis.Script, keys []string, args ...any) (any, error) {
	v, err := s.Run(ctx, rdb, keys, args...).Result()
	// ONTRIP, SUSPENDED and NOTFOUND are the scripts' refusals. (Not
	// Redis' own BUSY, which feedredis.UnavailableHook turns into
	// ErrUnavailable: a 503.)
	var re redis.Error
	if errors.As(err, &re) {
		for prefix, sentinel := range scriptRefusals {
			if rest, ok := strings.CutPrefix(re.Error(), prefix); ok {
				return nil, fmt.Errorf("%w: %s", sentinel, rest)
			}
		}
	}
	return v, err
}

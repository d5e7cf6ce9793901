package archiveredis

import "github.com/redis/go-redis/v9"

// Every script touches the keys of one slot only: a shard's (its hash tag
// "{s<N>}") or a topic's (the topic's hash tag), so they run on Redis
// Cluster.

// leaseScript takes or renews KEYS[1] (a shard's lease) for ARGV[1] (the
// node) for ARGV[2] ms. 1: held by the node; 0: held by another.
var leaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// registerScript registers node ARGV[1] in the node registry KEYS[1] until
// the Redis time + ARGV[2] ms, drops the registrations that ended, and
// returns how many nodes are live.
var registerScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%.0f', now))
redis.call('PEXPIRE', KEYS[1], ARGV[2] * 2)
return redis.call('ZCARD', KEYS[1])
`)

// releaseScript deletes KEYS[1] if ARGV[1] holds it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

// dirtyScript reads the Redis time (ms) and the first ARGV[1] topics of
// KEYS[1] (a dirty shard), oldest mark first: {now, {topic, score, …}}.
// The time is read with them so "the mark's deadline passed before the
// stream was read" is judged on the clock that wrote the marks.
var dirtyScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
return {string.format('%.0f', now), r}
`)

// cleanScript removes ARGV[1] from KEYS[1] only if its score is still
// ARGV[2]: a publish marked since then raised it (ZADD GT) and keeps the
// topic dirty.
var cleanScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

// readScript reads, for each pair (stream, its archived cursor) of KEYS,
// the cursor (empty if none) and up to ARGV[1] entries of the stream after
// it: {cursor1, entries1, cursor2, entries2, …}. The pairs are a topic's
// feed stream and its record streams, all in the topic's slot.
var readScript = redis.NewScript(`
local out = {}
for i = 1, #KEYS, 2 do
  local c = redis.call('GET', KEYS[i + 1]) or ''
  local start = '-'
  if c ~= '' then start = '(' .. c end
  out[#out + 1] = c
  out[#out + 1] = redis.call('XRANGE', KEYS[i], start, '+', 'COUNT', ARGV[1])
end
return out
`)

// advanceScript moves the cursor KEYS[1] to ARGV[1] only forward (a
// consumer whose lease was taken over never moves it back) and keeps it
// ARGV[2] ms. With ARGV[3] = "1" (a record stream, KEYS[2]) the entries up
// to the cursor, archived, are deleted from the stream. 1: moved; 0: it
// was already there or later.
var advanceScript = redis.NewScript(`
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local nm, ns = parse(ARGV[1])
if ARGV[3] == '1' and nm then
  redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f-%.0f', nm, ns + 1))
end
local c = redis.call('GET', KEYS[1])
if c then
  local cm, cs = parse(c)
  if cm and (nm < cm or (nm == cm and ns <= cs)) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

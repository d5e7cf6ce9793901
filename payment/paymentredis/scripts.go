package paymentredis

import "github.com/hextrack/hextrack/feed/feedredis"

// Payment keys share the trip's hash tag (and so its slot) with the trip
// hash and the trip's feed: a payment change, the trip's transition and
// both events are one script even under Redis Cluster.
func paymentKey(prefix, tripID string) string { return prefix + "trip:{" + tripID + "}:payment" }

// paymentEventsKey is a hash: webhook event ID → the stored event (JSON:
// seq, received ms, outcome, raw body). It is also the dedupe set.
func paymentEventsKey(prefix, tripID string) string {
	return prefix + "trip:{" + tripID + "}:payment:events"
}

// paymentCreateScript creates a trip's payment unless it has one, if the
// trip is awaiting payment, and appends payment.status (pending).
//
// KEYS: trip hash, payment hash, feed stream, feed dedupe.
// ARGV: 1 ttl s, 2 n field pairs, pairs..., feed args.
// Returns {'ok', event id} | {'exists'} | {'notfound'} |
// {'conflict', trip status, trip version}.
var paymentCreateScript = feedredis.Script(`
local t = redis.call('HMGET', KEYS[1], 'status', 'version')
if not t[1] then return {'notfound'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'exists'} end
if t[1] ~= 'awaiting_payment' then return {'conflict', t[1], tostring(tonumber(t[2]) or 0)} end
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  redis.call('HSET', KEYS[2], ARGV[3 + 2*i], ARGV[4 + 2*i])
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
local id = hx_publish(KEYS[3], KEYS[4], ARGV, 3 + 2*n)
return {'ok', id}
`)

// paymentWebhookScript applies one verified webhook event.
//
// Rule: the event ID is looked up first (a redelivery changes nothing);
// then every event is stored with its outcome; only an event for a pending
// payment with its amount and currency makes it final (a final status never
// reverts). The trip moves only if it is still awaiting payment.
//
// With a sixth key (the trip's webhooks record stream,
// feedredis.RecordWebhooks, when archiving) every stored event is also
// appended to it for the archive's ledger (fields seq, pay, amount,
// currency, status after it, outcome, at ms, body); the trip topic was
// marked by PublishParams before.
//
// KEYS: 1 trip hash, 2 payment hash, 3 payment events hash, 4 feed stream,
// 5 feed dedupe[, 6 webhooks record stream].
// ARGV: 1 event id, 2 new payment status, 3 amount, 4 currency, 5 now ms,
// 6 ttl s, 7 raw event JSON, 8 payment.status data ("__VERSION__" first),
// 9 trip event data ("__VERSION__", "__FROM__" first), 10 new trip status,
// 11 payment id, 12.. payment.status feed args, 21.. trip event feed args.
// Returns {'unknown'} | {'duplicate', status} | {outcome, status} for
// ignored, conflict, mismatch | {'applied', status, payment version, trip
// event id or empty, old trip status or empty, trip version or empty}.
var paymentWebhookScript = feedredis.Script(`
local p = redis.call('HMGET', KEYS[2], 'id', 'status', 'amount', 'currency')
if not p[1] or p[1] ~= ARGV[11] then return {'unknown'} end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return {'duplicate', p[2]} end
local outcome = 'applied'
if p[2] ~= 'pending' then
  if p[2] == ARGV[2] then outcome = 'ignored' else outcome = 'conflict' end
elseif p[3] ~= ARGV[3] or p[4] ~= ARGV[4] then
  outcome = 'mismatch'
end
local seq = redis.call('HINCRBY', KEYS[2], 'nevents', 1)
redis.call('HSET', KEYS[3], ARGV[1], '{"seq":' .. seq .. ',"received":' .. ARGV[5] ..
  ',"outcome":"' .. outcome .. '","event":' .. ARGV[7] .. '}')
redis.call('EXPIRE', KEYS[3], ARGV[6])
if KEYS[6] then
  local after = p[2]
  if outcome == 'applied' then after = ARGV[2] end
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', 10000, '*', 'seq', seq, 'pay', ARGV[11], 'amount', ARGV[3],
    'currency', ARGV[4], 'status', after, 'outcome', outcome, 'at', ARGV[5], 'body', ARGV[7])
  redis.call('EXPIRE', KEYS[6], ARGV[6])
end
if outcome ~= 'applied' then return {outcome, p[2]} end
local pver = redis.call('HINCRBY', KEYS[2], 'version', 1)
redis.call('HSET', KEYS[2], 'status', ARGV[2], 'updated', ARGV[5], 'event', ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[6])
local from, tver = '', ''
local t = redis.call('HMGET', KEYS[1], 'status')
if t[1] == 'awaiting_payment' then
  from = t[1]
  tver = tostring(redis.call('HINCRBY', KEYS[1], 'version', 1))
  redis.call('HSET', KEYS[1], 'status', ARGV[10], 'updated', ARGV[5])
  if ARGV[10] == 'cancelled' then
    redis.call('HSET', KEYS[1], 'cancelled_by', 'system', 'cancel_reason', 'payment failed')
  end
  redis.call('EXPIRE', KEYS[1], ARGV[6])
end
local pdata = (string.gsub(ARGV[8], '__VERSION__', tostring(pver), 1))
hx_publish(KEYS[4], KEYS[5], ARGV, 12, pdata)
local tev = ''
if from ~= '' then
  local tdata = (string.gsub(ARGV[9], '__VERSION__', tver, 1))
  tdata = (string.gsub(tdata, '__FROM__', from, 1))
  tev = hx_publish(KEYS[4], KEYS[5], ARGV, 21, tdata)
end
return {'applied', ARGV[2], tostring(pver), tev, from, tver}
`)

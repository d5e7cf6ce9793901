package tripredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/internal/rscript"
	"github.com/hextrack/hextrack/trip"
)

// Keys. All share the trip's hash tag with its feed stream
// (feed:trip:{<id>}), so one script may change the trip and append its event.
func tripKey(prefix, id string) string   { return prefix + "trip:{" + id + "}" }
func pathKey(prefix, id string) string   { return prefix + "trip:{" + id + "}:path" }
func sharesKey(prefix, id string) string { return prefix + "trip:{" + id + "}:shares" }
func revokedKey(prefix, id, share string) string {
	return prefix + "trip:{" + id + "}:revoked:" + share
}

// createScript stores a new trip and appends trip.created, unless the trip
// (an ID derived from an idempotency key) exists: then it answers whether
// the stored request hash matches.
//
// KEYS: trip hash, feed stream, feed dedupe.
// ARGV: request hash, ttl s, n field pairs, pairs..., feed args.
// Returns {'ok', event id} | {'exists'} | {'mismatch'}.
var createScript = feedredis.Script(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'req') == ARGV[1] then return {'exists'} end
  return {'mismatch'}
end
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  redis.call('HSET', KEYS[1], ARGV[4 + 2*i], ARGV[5 + 2*i])
end
redis.call('HSET', KEYS[1], 'req', ARGV[1], 'version', 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
local id = hx_publish(KEYS[2], KEYS[3], ARGV, 4 + 2*n)
return {'ok', id}
`)

// transitionScript checks the trip's status (and driver, and version),
// bumps the version, changes the fields and appends exactly one event.
//
// KEYS: trip hash, feed stream, feed dedupe.
// ARGV: 1 allowed statuses "|a|b|", 2 new status ("" keeps it), 3 required
// driver ("" none), 4 expected version ("" none), 5 now ms, 6 ttl s, 7 event
// data whose first "__VERSION__" and "__FROM__" are replaced by the new
// version and the old status, 8 n field pairs (an empty value deletes the
// field), pairs..., feed args.
// Returns {'ok', event id, version, old status, old driver} |
// {'notfound'} | {'driver', status, version, driver} |
// {'conflict', status, version} | {'stale', status, version}.
var transitionScript = feedredis.Script(`
local h = KEYS[1]
local st = redis.call('HMGET', h, 'status', 'driver', 'version')
if not st[1] then return {'notfound'} end
local status, drv, ver = st[1], st[2] or '', tonumber(st[3]) or 0
if ARGV[3] ~= '' and drv ~= ARGV[3] then return {'driver', status, tostring(ver), drv} end
if not string.find(ARGV[1], '|' .. status .. '|', 1, true) then return {'conflict', status, tostring(ver)} end
if ARGV[4] ~= '' and tonumber(ARGV[4]) ~= ver then return {'stale', status, tostring(ver)} end
ver = redis.call('HINCRBY', h, 'version', 1)
if ARGV[2] ~= '' then redis.call('HSET', h, 'status', ARGV[2]) end
redis.call('HSET', h, 'updated', ARGV[5])
local n = tonumber(ARGV[8])
for i = 0, n - 1 do
  local k, v = ARGV[9 + 2*i], ARGV[10 + 2*i]
  if v == '' then redis.call('HDEL', h, k) else redis.call('HSET', h, k, v) end
end
redis.call('EXPIRE', h, ARGV[6])
local data = (string.gsub(ARGV[7], '__VERSION__', tostring(ver), 1))
data = (string.gsub(data, '__FROM__', status, 1))
local id = hx_publish(KEYS[2], KEYS[3], ARGV, 9 + 2*n, data)
return {'ok', id, tostring(ver), status, drv}
`)

// messageScript appends a chat message unless its dedupe key was used (then
// it answers the first ID) or the trip is over.
//
// KEYS: trip hash, feed stream, feed dedupe. ARGV: feed args.
// Returns {'ok', id} | {'dup', id} | {'notfound'} | {'conflict', status}.
var messageScript = feedredis.Script(`
local old = redis.call('GET', KEYS[3])
if old then return {'dup', old} end
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {'notfound'} end
if st == 'completed' or st == 'cancelled' or st == 'expired' then return {'conflict', st} end
local id = hx_publish(KEYS[2], KEYS[3], ARGV, 1)
return {'ok', id}
`)

// locationScript stores a driver's fix on its trip: only while that driver
// drives it, only if newer than the stored fix. It appends a breadcrumb when
// the last one is old or far enough, and says whether to publish now (the
// per-trip gate, shared by all nodes) or how long to wait.
//
// With a third key (the trip's trail record stream, feedredis.RecordTrail,
// when archiving), every fix of the last argument ("drv|ts|lat|lng|acc|
// spd|hdg" records joined by ";") whose driver drives the trip is appended
// to it with the next trail seq (the hash's trailseq, 1, 2, …; stale fixes
// too: they were accepted) before the location is looked at. The trip was
// marked in the archive's dirty index before (Tracker.markTrail).
//
// KEYS: trip hash, path list[, trail stream].
// ARGV: 1 driver, 2 ts ms, 3 lat, 4 lng, 5 heading, 6 speed, 7 now ms,
// 8 gate ms, 9 crumb min ms, 10 crumb min m, 11 crumb cap, 12 ttl s,
// 13 the trip.location data whose first "__SEQ__" becomes the seq (empty:
// the caller publishes), 14.. feedredis.Broker.LiveParams (hx_publish_live),
// last: the trail records (with the third key only).
// Returns {'skip'} | {'stale'} | {'publish', seq} | {'published', seq} |
// {'held', seq, wait ms}.
var locationScript = feedredis.Script(`
local h = KEYS[1]
local st = redis.call('HMGET', h, 'status', 'driver', 'loc_ts', 'crumb_ts', 'crumb_lat', 'crumb_lng', 'pub_ms')
if st[2] ~= ARGV[1] or (st[1] ~= 'driver_assigned' and st[1] ~= 'driver_arrived' and st[1] ~= 'in_progress') then
  return {'skip'}
end
if KEYS[3] then
  for r in string.gmatch(ARGV[#ARGV], '[^;]+') do
    local d, t, la, lo, ac, sp, hd = string.match(r, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    if d == st[2] then
      local n = redis.call('HINCRBY', h, 'trailseq', 1)
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', 100000, '*', 'seq', n, 'drv', d, 'ts', t, 'lat', la, 'lng', lo,
        'acc', ac, 'spd', sp, 'hdg', hd)
    end
  end
  redis.call('EXPIRE', KEYS[3], ARGV[12])
end
local ts = tonumber(ARGV[2])
if st[3] and tonumber(st[3]) >= ts then return {'stale'} end
local seq = redis.call('HINCRBY', h, 'locseq', 1)
redis.call('HSET', h, 'loc_drv', ARGV[1], 'loc_ts', ARGV[2], 'loc_lat', ARGV[3], 'loc_lng', ARGV[4],
  'loc_hdg', ARGV[5], 'loc_spd', ARGV[6])
local lat, lng = tonumber(ARGV[3]), tonumber(ARGV[4])
local crumb = true
if st[4] then
  local dt = ts - tonumber(st[4])
  local r = math.pi / 180
  local dx = (lng - tonumber(st[6])) * r * math.cos(lat * r) * 6371008.8
  local dy = (lat - tonumber(st[5])) * r * 6371008.8
  crumb = dt >= tonumber(ARGV[9]) or math.sqrt(dx*dx + dy*dy) >= tonumber(ARGV[10])
end
if crumb then
  redis.call('HSET', h, 'crumb_ts', ARGV[2], 'crumb_lat', ARGV[3], 'crumb_lng', ARGV[4])
  redis.call('RPUSH', KEYS[2], ARGV[3] .. ',' .. ARGV[4] .. ',' .. ARGV[2])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[11]), -1)
  redis.call('EXPIRE', KEYS[2], ARGV[12])
end
local now, gate = tonumber(ARGV[7]), tonumber(ARGV[8])
local last = tonumber(st[7]) or 0
if now - last >= gate or last - now > gate then
  redis.call('HSET', h, 'pub_ms', ARGV[7], 'pub_seq', seq)
  if ARGV[13] ~= '' then
    hx_publish_live(ARGV, 14, seq, (string.gsub(ARGV[13], '__SEQ__', tostring(seq), 1)))
    return {'published', seq}
  end
  return {'publish', seq}
end
return {'held', seq, gate - (now - last)}
`)

// flushScript publishes the trip's latest fix if it was not published yet
// and the gate is open (the trailing edge of the conflation).
//
// KEYS: trip hash. ARGV: now ms, gate ms.
// Returns {'none'} | {'held', wait ms} | {'publish', seq, driver, ts, lat,
// lng, heading, speed} (the stored fix, what goes out).
var flushScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'locseq', 'pub_seq', 'pub_ms', 'loc_drv', 'loc_ts', 'loc_lat', 'loc_lng', 'loc_hdg', 'loc_spd')
local seq, pub = tonumber(st[1]) or 0, tonumber(st[2]) or 0
if seq <= pub then return {'none'} end
local now, gate, last = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(st[3]) or 0
if now - last < gate and last - now <= gate then return {'held', gate - (now - last)} end
redis.call('HSET', KEYS[1], 'pub_ms', ARGV[1], 'pub_seq', seq)
return {'publish', seq, st[4] or '', st[5] or '', st[6] or '', st[7] or '', st[8] or '', st[9] or ''}
`)

// runScript runs a script and reads its reply (internal/rscript).
func runScript(ctx context.Context, rdb redis.UniversalClient, s *redis.Script, keys []string, args ...any) ([]string, error) {
	return rscript.Run(ctx, rdb, s, keys, args...)
}

// loadTrip reads a trip hash with the feed position, atomically (one MULTI
// on one slot): the hash reflects every event up to the position. fields is
// the raw hash.
func loadTrip(ctx context.Context, rdb redis.UniversalClient, prefix, id string) (map[string]string, string, error) {
	var hg *redis.MapStringStringCmd
	var xi *redis.XInfoStreamCmd
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		hg = p.HGetAll(ctx, tripKey(prefix, id))
		xi = p.XInfoStream(ctx, feed.StreamKey(prefix, trip.Topic(id)))
		return nil
	})
	if err != nil && !isNoSuchKey(err) {
		return nil, "", fmt.Errorf("trip: load %s: %w", id, err)
	}
	m := hg.Val()
	if len(m) == 0 {
		return nil, "", fmt.Errorf("%w: %s", trip.ErrNotFound, id)
	}
	pos := "0-0"
	if xi.Err() == nil {
		pos = xi.Val().LastGeneratedID
	} else if !isNoSuchKey(xi.Err()) {
		return nil, "", fmt.Errorf("trip: load %s: %w", id, xi.Err())
	}
	return m, pos, nil
}

func isNoSuchKey(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && strings.Contains(err.Error(), "no such key")
}

// decodeTrip builds a Trip from its hash.
func decodeTrip(m map[string]string) trip.Trip {
	t := trip.Trip{ID: m["id"], Kind: m["kind"], Status: m["status"], RiderID: m["rider"], DriverID: m["driver"],
		Payment: m["payment"], CancelReason: m["cancel_reason"], CancelledBy: m["cancelled_by"]}
	_ = json.Unmarshal([]byte(m["pickup"]), &t.Pickup)
	_ = json.Unmarshal([]byte(m["dropoff"]), &t.Dropoff)
	t.Version, _ = strconv.ParseInt(m["version"], 10, 64)
	t.CreatedAt = msTime(m["created"])
	t.UpdatedAt = msTime(m["updated"])
	t.Stops = decodeStops(m, t)
	return t
}

// decodeLocation returns the stored fix, nil if none.
func decodeLocation(m map[string]string) *trip.Location {
	seq, _ := strconv.ParseInt(m["locseq"], 10, 64)
	if seq == 0 || m["loc_ts"] == "" {
		return nil
	}
	l := &trip.Location{Seq: seq, DriverID: m["loc_drv"], TS: msTime(m["loc_ts"])}
	l.Lat, _ = strconv.ParseFloat(m["loc_lat"], 64)
	l.Lng, _ = strconv.ParseFloat(m["loc_lng"], 64)
	l.Heading = optFloat(m["loc_hdg"])
	l.Speed = optFloat(m["loc_spd"])
	return l
}

func optFloat(s string) *float64 {
	if s == "" {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil
	}
	return &f
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

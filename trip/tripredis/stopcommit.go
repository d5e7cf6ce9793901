package tripredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/trip"
)

// stopScript commits a change of a trip's stops: it checks the trip's
// status, driver and version (always: the change was computed from what
// the caller read) and a once-flag, bumps the version, writes the stops,
// the status and the fields, and appends the events in order.
//
// KEYS: trip hash, feed stream, feed dedupe.
// ARGV: 1 allowed statuses "|a|b|", 2 required driver ("" none), 3
// expected version, 4 once-flag field ("" none: else the change is made
// only if the field is not set, and sets it), 5 now ms, 6 ttl s, 7 stops
// JSON ("" keeps them), 8 new status ("" keeps it), 9 n field pairs (an
// empty value deletes the field), pairs..., then the number of events and
// for each its data (the first "__VERSION__" becomes the new version)
// followed by its feed args.
// Returns {'ok', version, event ids...} | {'notfound'} | {'driver', status,
// version, driver} | {'conflict', status, version} | {'stale', status,
// version} | {'dup'}.
var stopScript = feedredis.Script(`
local h = KEYS[1]
local st = redis.call('HMGET', h, 'status', 'driver', 'version')
if not st[1] then return {'notfound'} end
local status, drv, ver = st[1], st[2] or '', tonumber(st[3]) or 0
if ARGV[2] ~= '' and drv ~= ARGV[2] then return {'driver', status, tostring(ver), drv} end
if not string.find(ARGV[1], '|' .. status .. '|', 1, true) then return {'conflict', status, tostring(ver)} end
if tonumber(ARGV[3]) ~= ver then return {'stale', status, tostring(ver)} end
if ARGV[4] ~= '' and redis.call('HEXISTS', h, ARGV[4]) == 1 then return {'dup'} end
ver = redis.call('HINCRBY', h, 'version', 1)
if ARGV[4] ~= '' then redis.call('HSET', h, ARGV[4], ARGV[5]) end
if ARGV[7] ~= '' then redis.call('HSET', h, 'stops', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', h, 'status', ARGV[8]) end
redis.call('HSET', h, 'updated', ARGV[5])
local n = tonumber(ARGV[9])
for i = 0, n - 1 do
  local k, v = ARGV[10 + 2*i], ARGV[11 + 2*i]
  if v == '' then redis.call('HDEL', h, k) else redis.call('HSET', h, k, v) end
end
redis.call('EXPIRE', h, ARGV[6])
local out = {'ok', tostring(ver)}
local j = 10 + 2*n
local m = tonumber(ARGV[j])
j = j + 1
for e = 1, m do
  local data = (string.gsub(ARGV[j], '__VERSION__', tostring(ver), 1))
  local id = hx_publish(KEYS[2], KEYS[3], ARGV, j + 1, data)
  out[#out + 1] = id
  j = j + 1 + ` + strconv.Itoa(feedredis.PublishArgc) + `
end
return out
`)

// stopEvent is one event a stop change appends.
type stopEvent struct {
	typ  string
	data map[string]any
}

// stopWrite is one change of a trip's stops, computed from t as read.
type stopWrite struct {
	t       trip.Trip
	action  string   // named in a *trip.TransitionError ("": "change stops of")
	allowed []string // trip statuses the change is allowed in
	driver  string   // required driver ("": none)
	once    string   // once-flag field ("": none)
	stops   []trip.Stop
	to      string // new trip status ("": kept)
	pairs   []string
	events  []stopEvent
}

// errDup: the once-flag of a change was set already (the event fired).
var errDup = errors.New("trip: stop change made already")

// commitStops runs stopScript for w. It returns the ids of the events
// appended, in order.
func (b *base) commitStops(ctx context.Context, w stopWrite) ([]string, error) {
	now := b.now()
	var stopsJSON string
	if w.stops != nil {
		raw, err := json.Marshal(w.stops)
		if err != nil {
			return nil, fmt.Errorf("trip: stops of %s: %w", w.t.ID, err)
		}
		stopsJSON = string(raw)
	}
	args := []any{"|" + strings.Join(w.allowed, "|") + "|", w.driver, w.t.Version, w.once, nowMS(now), b.ttl(),
		stopsJSON, w.to, len(w.pairs) / 2}
	for _, p := range w.pairs {
		args = append(args, p)
	}
	args = append(args, len(w.events))
	var fkeys []string
	for _, e := range w.events {
		body := map[string]any{"trip_id": w.t.ID}
		for k, v := range e.data {
			body[k] = v
		}
		rest, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("trip: %s of %s: %w", e.typ, w.t.ID, err)
		}
		// The version comes first so that no text of the body (an
		// address) can be taken for the placeholder.
		data := `{"version":__VERSION__,` + string(rest[1:])
		keys, fargs, err := b.feed.PublishParams(ctx, feed.Publication{Topic: trip.Topic(w.t.ID), Type: e.typ, TS: now})
		if err != nil {
			return nil, err
		}
		fkeys = keys
		args = append(append(args, data), fargs...)
	}
	if len(fkeys) == 0 {
		return nil, fmt.Errorf("trip: stop change of %s without an event", w.t.ID)
	}
	res, err := runScript(ctx, b.rdb, stopScript, append([]string{tripKey(b.cfg.Prefix, w.t.ID)}, fkeys...), args...)
	if err != nil {
		return nil, fmt.Errorf("trip: stops of %s: %w", w.t.ID, err)
	}
	ver := func(i int) int64 { v, _ := strconv.ParseInt(res[i], 10, 64); return v }
	switch res[0] {
	case "ok":
		return res[2:], nil
	case "notfound":
		return nil, fmt.Errorf("%w: %s", trip.ErrNotFound, w.t.ID)
	case "driver":
		return nil, fmt.Errorf("%w: trip %s is not assigned to you", trip.ErrForbidden, w.t.ID)
	case "conflict":
		action := w.action
		if action == "" {
			action = "change stops of"
		}
		return nil, &trip.TransitionError{Action: action, Current: res[1], Version: ver(2)}
	case "stale":
		return nil, &trip.VersionError{Want: w.t.Version, Current: ver(2)}
	case "dup":
		return nil, errDup
	}
	return nil, fmt.Errorf("trip: stops of %s: unexpected reply %v", w.t.ID, res)
}

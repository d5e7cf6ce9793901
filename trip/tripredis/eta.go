package tripredis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/trip"
)

// ETAs stores the live ETAs of trips in their hashes (live.Service computes
// them): the per-trip estimate gate shared by all nodes, the estimate with
// its trip.eta event, and the first promise of each leg. The snapshot
// reads the stored estimate as "eta".
type ETAs struct {
	*base
}

// gateScript opens the trip's estimate gate (at most one estimate per
// period, across nodes) and reads the fields the estimate needs. The gate
// is the time of the last estimate in the trip hash, not a key with a TTL:
// the embedded dev Redis does not expire keys by itself. As with the
// location gate, a stored time far in the future (another node's clock)
// does not block for longer than one period.
//
// KEYS: trip hash. ARGV: 1 now ms, 2 period ms, 3 time of the fix about to
// be estimated (ms, "0": none), 4 force 0|1, 5.. fields to read (the first
// must be "status").
// Returns {'gone'} | {'closed', wait ms, newest fix ms estimated or being
// estimated} | {'open', field values...} ("" for a missing field).
var gateScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], unpack(ARGV, 5))
if not f[1] then return {'gone'} end
local now, every = tonumber(ARGV[1]), tonumber(ARGV[2])
local g = redis.call('HMGET', KEYS[1], 'eta_gate_ms', 'eta_gate_fix', 'eta_fix_ms')
local last = tonumber(g[1]) or 0
if ARGV[4] ~= '1' and now - last < every and last - now <= every then
  return {'closed', tostring(every - (now - last)), tostring(math.max(tonumber(g[2]) or 0, tonumber(g[3]) or 0))}
end
redis.call('HSET', KEYS[1], 'eta_gate_ms', ARGV[1], 'eta_gate_fix', ARGV[3])
local out = {'open'}
for i = 1, #ARGV - 4 do out[i + 1] = f[i] or '' end
return out
`)

// etaScript stores an estimate if the trip is still on the leg it was made
// for (status, driver, target unchanged), records the first promise of the
// leg (the pickup's only while driver_assigned), and appends trip.eta when
// asked and no other estimate was emitted since the caller looked.
//
// KEYS: trip hash, feed stream, feed dedupe.
// ARGV: 1 allowed statuses "|a|b|", 2 driver, 3 target field, 4 target
// value, 5 leg, 6 seconds, 7 meters, 8 now ms, 9 arrive ms, 10 emit 0|1,
// 11 last emitted route version seen ("0": none), 12 event data whose
// first "__RV__" becomes the route version, 13 fix ms (time of the
// position the estimate started from, "0": none), 14.. feed args.
// Returns {'gone'} | {'skip'} | {'stale'} (an estimate from a newer fix
// was stored meanwhile) | {'stored', rv} | {'emit', id, rv}.
var etaScript = feedredis.Script(`
local h = KEYS[1]
local st = redis.call('HMGET', h, 'status', 'driver', ARGV[3], 'eta_erv', 'eta_fix_ms')
if not st[1] then return {'gone'} end
if not string.find(ARGV[1], '|' .. st[1] .. '|', 1, true) or st[2] ~= ARGV[2] or st[3] ~= ARGV[4] then
  return {'skip'}
end
if ARGV[13] ~= '0' and tonumber(ARGV[13]) < (tonumber(st[5] or '0') or 0) then return {'stale'} end
local rv = redis.call('HINCRBY', h, 'eta_rv', 1)
redis.call('HSET', h, 'eta_leg', ARGV[5], 'eta_s', ARGV[6], 'eta_m', ARGV[7], 'eta_ms', ARGV[8], 'eta_at', ARGV[9],
  'eta_fix_ms', ARGV[13])
if ARGV[5] == 'dropoff' or st[1] == 'driver_assigned' then
  if redis.call('HSETNX', h, 'eta_p_' .. ARGV[5], ARGV[6]) == 1 then
    redis.call('HSET', h, 'eta_p_' .. ARGV[5] .. '_ms', ARGV[8])
  end
end
if ARGV[10] ~= '1' or (st[4] or '0') ~= ARGV[11] then return {'stored', tostring(rv)} end
redis.call('HSET', h, 'eta_erv', rv, 'eta_es', ARGV[6], 'eta_etgt', ARGV[5] .. ':' .. ARGV[4])
local data = (string.gsub(ARGV[12], '__RV__', tostring(rv), 1))
local id = hx_publish(KEYS[2], KEYS[3], ARGV, 14, data)
return {'emit', id, tostring(rv)}
`)

// legOf returns the ETA leg of a status, its target field and the statuses
// of that leg ("" when a trip in status has no ETA).
func legOf(status string) (leg, field, allowed string) {
	switch status {
	case trip.StatusAssigned, trip.StatusArrived:
		return trip.LegPickup, "pickup", "|" + trip.StatusAssigned + "|" + trip.StatusArrived + "|"
	case trip.StatusInProgress:
		return trip.LegDropoff, "dropoff", "|" + trip.StatusInProgress + "|"
	}
	return "", "", ""
}

var etaFields = []string{"status", "driver", "pickup", "dropoff", "loc_drv", "loc_ts", "loc_lat", "loc_lng",
	"eta_es", "eta_etgt", "eta_erv", "eta_fix_ms", "stops", "id"}

// OpenGate opens trip id's estimate gate if at least every passed since
// its last opening (force: whatever the time) and reads the estimate's
// input. fixMS is the time of the fix about to be estimated (0: none).
func (s *ETAs) OpenGate(ctx context.Context, id string, now time.Time, every time.Duration, fixMS int64, force bool) (trip.ETAGate, error) {
	forceArg := "0"
	if force {
		forceArg = "1"
	}
	args := []any{now.UnixMilli(), every.Milliseconds(), strconv.FormatInt(fixMS, 10), forceArg}
	for _, f := range etaFields {
		args = append(args, f)
	}
	res, err := runScript(ctx, s.rdb, gateScript, []string{tripKey(s.cfg.Prefix, id)}, args...)
	if err != nil {
		return trip.ETAGate{}, err
	}
	switch {
	case res[0] == "closed" && len(res) == 3:
		wait, _ := strconv.ParseInt(res[1], 10, 64)
		newest, _ := strconv.ParseInt(res[2], 10, 64)
		return trip.ETAGate{Wait: time.Duration(wait) * time.Millisecond, Newest: newest}, nil
	case res[0] != "open" || len(res) != len(etaFields)+1:
		return trip.ETAGate{Gone: true}, nil
	}
	h := make(map[string]string, len(etaFields))
	for i, f := range etaFields {
		h[f] = res[i+1]
	}
	in := trip.ETAInput{Status: h["status"], Driver: h["driver"], EmittedTarget: h["eta_etgt"], EmittedRV: h["eta_erv"]}
	in.EmittedSeconds, _ = strconv.ParseFloat(h["eta_es"], 64)
	in.FixAt, _ = strconv.ParseInt(h["eta_fix_ms"], 10, 64)
	if in.EmittedRV == "" {
		in.EmittedRV = "0"
	}
	leg, field, _ := legOf(in.Status)
	if leg != "" {
		var to, pick trip.Place
		if json.Unmarshal([]byte(h[field]), &to) == nil && json.Unmarshal([]byte(h["pickup"]), &pick) == nil {
			in.Leg, in.To, in.Target, in.Pickup = leg, to, h[field], pick
		}
	}
	t := decodeTrip(h)
	for _, st := range t.Stops {
		if !st.Final() {
			in.Open = append(in.Open, st)
		}
	}
	if h["loc_drv"] != "" && h["loc_drv"] == in.Driver {
		in.Fix = decodeLocation(map[string]string{"locseq": "1", "loc_drv": h["loc_drv"], "loc_ts": h["loc_ts"],
			"loc_lat": h["loc_lat"], "loc_lng": h["loc_lng"]})
	}
	return trip.ETAGate{Open: true, Input: in}, nil
}

// Store stores an estimate of trip id if the trip is still on the leg it
// was made for (status, driver and target unchanged) and no estimate from
// a newer fix was stored meanwhile, and appends trip.eta when asked. It
// reports whether the estimate was stored and whether it was emitted.
func (s *ETAs) Store(ctx context.Context, id string, w trip.ETAWrite) (stored, emitted bool, err error) {
	leg, field, allowed := legOf(w.In.Status)
	if leg == "" || leg != w.In.Leg {
		return false, false, nil
	}
	body, _ := json.Marshal(struct {
		TripID    string         `json:"trip_id"`
		Leg       string         `json:"leg"`
		Seconds   float64        `json:"eta_s"`
		ArriveAt  time.Time      `json:"arrive_at"`
		DistanceM float64        `json:"distance_m"`
		Model     *trip.ETAModel `json:"model,omitempty"`
		Stops     []trip.StopETA `json:"stops,omitempty"`
	}{id, leg, w.Seconds, w.Arrive.UTC().Truncate(time.Millisecond), w.Meters, w.Model, w.Stops})
	data := `{"route_version":__RV__,` + string(body[1:])
	fkeys, fargs, err := s.feed.PublishParams(ctx, feed.Publication{Topic: trip.Topic(id), Type: trip.EventETA, TS: w.Now})
	if err != nil {
		return false, false, err
	}
	emitArg := "0"
	if w.Emit {
		emitArg = "1"
	}
	args := []any{allowed, w.In.Driver, field, w.In.Target, leg, fmtFloat(w.Seconds, 0), fmtFloat(w.Meters, 0), nowMS(w.Now),
		nowMS(w.Arrive), emitArg, w.In.EmittedRV, data, strconv.FormatInt(w.FixAt, 10)}
	res, err := runScript(ctx, s.rdb, etaScript, append([]string{tripKey(s.cfg.Prefix, id)}, fkeys...), append(args, fargs...)...)
	if err != nil {
		return false, false, err
	}
	return res[0] == "stored" || res[0] == "emit", res[0] == "emit", nil
}

// Promises reads trip id's promises.
func (s *ETAs) Promises(ctx context.Context, id string) (trip.ETAPromises, error) {
	f := []string{"eta_p_pickup", "eta_p_pickup_ms", "eta_arr_ms", "eta_p_dropoff", "eta_p_dropoff_ms"}
	raw, err := s.rdb.HMGet(ctx, tripKey(s.cfg.Prefix, id), f...).Result()
	if err != nil {
		return trip.ETAPromises{}, fmt.Errorf("trip: eta promises %s: %w", id, err)
	}
	v := make([]float64, len(f))
	for i, x := range raw {
		if sv, ok := x.(string); ok {
			v[i], _ = strconv.ParseFloat(sv, 64)
		}
	}
	return trip.ETAPromises{Pickup: v[0], PickupAt: v[1], ArrivedAt: v[2], Dropoff: v[3], DropoffAt: v[4]}, nil
}

// etaPairs are the trip hash changes a transition to status makes to the
// ETA state, in the transition's own script: back to requested forgets the
// pickup leg (the next driver makes a new promise); driver_arrived records
// the end of the pickup leg.
func etaPairs(status string, now time.Time) []string {
	switch status {
	case trip.StatusRequested:
		return []string{"eta_leg", "", "eta_s", "", "eta_m", "", "eta_at", "", "eta_ms", "", "eta_es", "",
			"eta_etgt", "", "eta_fix_ms", "", "eta_gate_ms", "", "eta_gate_fix", "",
			"eta_p_pickup", "", "eta_p_pickup_ms", "", "eta_arr_ms", ""}
	case trip.StatusArrived:
		return []string{"eta_arr_ms", nowMS(now)}
	}
	return nil
}

// etaForgetDropoff: a new dropoff voids the promise made for the old one.
var etaForgetDropoff = []string{"eta_p_dropoff", "", "eta_p_dropoff_ms", ""}

// decodeETA returns the snapshot's "eta" and its route version: the stored
// estimate if it is of the leg of status, else null and 0.
func decodeETA(m map[string]string, status string) (json.RawMessage, int64) {
	leg, _, _ := legOf(status)
	if leg == "" || m["eta_leg"] != leg {
		return json.RawMessage("null"), 0
	}
	e := trip.ETA{Leg: leg, ArriveAt: msTime(m["eta_at"]), ComputedAt: msTime(m["eta_ms"])}
	e.Seconds, _ = strconv.ParseFloat(m["eta_s"], 64)
	e.DistanceM, _ = strconv.ParseFloat(m["eta_m"], 64)
	e.RouteVersion, _ = strconv.ParseInt(m["eta_rv"], 10, 64)
	b, err := json.Marshal(e)
	if err != nil {
		return json.RawMessage("null"), 0
	}
	return b, e.RouteVersion
}

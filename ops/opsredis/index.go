package opsredis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/ops"
	"github.com/hextrack/hextrack/trip"
)

// The ops trip index (see View in view.go). Every key shares the hash tag
// {ops-trips}, so indexScript touches one slot under Redis Cluster:
//
//	<p>ops:{ops-trips}:all         sorted set: trip ID → last change, unix ms
//	<p>ops:{ops-trips}:s:<status>  sorted set per status: trip ID → last change
//	<p>ops:{ops-trips}:rec         hash: trip ID → "<event id>|<status>|<pickup r9>"
//
// The index is written after a trip's own script (a trip's keys live in
// the trip's slot, the index in its own), so it is eventually consistent:
// two changes of one trip indexed out of order by two nodes end right
// because a record only moves to a newer event ID (stream IDs of one trip's
// feed increase). A failed write leaves the trip's old status in the index
// until its next change; readers of single trips read the trip hash.
func opsAllKey(prefix string) string        { return prefix + "ops:{ops-trips}:all" }
func opsRecKey(prefix string) string        { return prefix + "ops:{ops-trips}:rec" }
func opsStatusKey(prefix, st string) string { return prefix + "ops:{ops-trips}:s:" + st }

// opsTrimBatch bounds the index entries one write drops for age, so a
// write stays O(1) amortized.
const opsTrimBatch = 50

// indexScript moves one trip in the ops index, unless the index holds a
// newer event of it, and drops up to opsTrimBatch entries older than the
// cutoff.
//
// KEYS: 1 all, 2 rec, 3.. one sorted set per status (ARGV names them in
// the same order).
// ARGV: 1 trip, 2 event id, 3 status, 4 pickup cell, 5 now ms, 6 cutoff ms,
// 7 ttl s, 8 trim batch, 9.. status names.
// Returns 1 when applied, 0 when the index already had a newer event.
var indexScript = redis.NewScript(`
local function newer(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then return true end
  am, bm = tonumber(am), tonumber(bm)
  if am ~= bm then return am > bm end
  return tonumber(as) > tonumber(bs)
end
local keyOf = {}
for i = 9, #ARGV do keyOf[ARGV[i]] = KEYS[i - 6] end
local function statusOf(rec)
  local _, st = string.match(rec, '^([^|]*)|([^|]*)')
  return st
end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then
  local e = string.match(cur, '^([^|]*)')
  if not newer(ARGV[2], e) then return 0 end
  local st = statusOf(cur)
  if st ~= ARGV[3] and keyOf[st] then redis.call('ZREM', keyOf[st], ARGV[1]) end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
if keyOf[ARGV[3]] then redis.call('ZADD', keyOf[ARGV[3]], ARGV[5], ARGV[1]) end
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[6], 'LIMIT', 0, tonumber(ARGV[8]))
for _, id in ipairs(old) do
  local r = redis.call('HGET', KEYS[2], id)
  if r then
    local st = statusOf(r)
    if keyOf[st] then redis.call('ZREM', keyOf[st], id) end
  end
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
return 1
`)

func opsIndexKeys(prefix string) []string {
	keys := []string{opsAllKey(prefix), opsRecKey(prefix)}
	for _, st := range trip.Statuses {
		keys = append(keys, opsStatusKey(prefix, st))
	}
	return keys
}

// Index keeps the ops trip index: it is a trip.Observer, told about every
// committed trip change. A failure is logged, never returned: the change
// stands, and the index catches up at the trip's next change.
type Index struct {
	rdb redis.UniversalClient
	cfg Config
}

var _ trip.Observer = (*Index)(nil)

// NewIndex returns the index writer over rdb (cfg.Prefix, TripTTL, Now,
// Logger).
func NewIndex(rdb redis.UniversalClient, cfg Config) *Index {
	return &Index{rdb: rdb, cfg: cfg.withDefaults()}
}

// TripChanged records a trip change in the ops index. It runs after the
// change was committed.
func (x *Index) TripChanged(ctx context.Context, c trip.Change) {
	if c.To == "" || c.EventID == "" {
		return
	}
	cell := ""
	if p := (geo.Point{Lat: c.Trip.Pickup.Lat, Lng: c.Trip.Pickup.Lng}); p.Valid() && (p.Lat != 0 || p.Lng != 0) {
		if pc := geo.CellOf(p, geo.ResIndex); pc != 0 {
			cell = pc.String()
		}
	}
	now := x.cfg.Now()
	args := []any{c.Trip.ID, c.EventID, c.To, cell, now.UnixMilli(), now.Add(-x.cfg.TripTTL).UnixMilli(),
		int64(x.cfg.TripTTL / time.Second), opsTrimBatch}
	for _, st := range trip.Statuses {
		args = append(args, st)
	}
	if err := indexScript.Run(ctx, x.rdb, opsIndexKeys(x.cfg.Prefix), args...).Err(); err != nil {
		x.cfg.Logger.Warn("ops: trip index not updated", "trip", c.Trip.ID, "status", c.To, "err", err)
	}
}

// tripCounts returns the indexed trips per status: open statuses in full,
// terminal ones changed since `since`.
func tripCounts(ctx context.Context, rdb redis.UniversalClient, prefix string, since time.Time) (map[string]int64, error) {
	pipe := rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(trip.Statuses))
	var min string
	for i, st := range trip.Statuses {
		if trip.Terminal(st) {
			min = strconv.FormatInt(since.UnixMilli(), 10)
		} else {
			min = "-inf"
		}
		cmds[i] = pipe.ZCount(ctx, opsStatusKey(prefix, st), min, "+inf")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("ops: ops trip counts: %w", err)
	}
	out := make(map[string]int64, len(trip.Statuses))
	for i, st := range trip.Statuses {
		out[st] = cmds[i].Val()
	}
	return out, nil
}

// recentTripIDs returns up to limit trip IDs, most recently changed first:
// of one status, or of all when status is "".
func recentTripIDs(ctx context.Context, rdb redis.UniversalClient, prefix, status string, limit int) ([]string, error) {
	key := opsAllKey(prefix)
	if status != "" {
		key = opsStatusKey(prefix, status)
	}
	ids, err := rdb.ZRevRange(ctx, key, 0, int64(limit)-1).Result()
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("ops: ops trips: %w", err)
	}
	return ids, nil
}

// demandCells returns the pickup r9 cell of up to limit requested trips.
func demandCells(ctx context.Context, rdb redis.UniversalClient, prefix string, limit int) ([]geo.Cell, error) {
	ids, err := recentTripIDs(ctx, rdb, prefix, trip.StatusRequested, limit)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	vals, err := rdb.HMGet(ctx, opsRecKey(prefix), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("ops: ops demand: %w", err)
	}
	out := make([]geo.Cell, 0, len(vals))
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		parts := strings.SplitN(s, "|", 3)
		if len(parts) != 3 || parts[1] != trip.StatusRequested {
			continue
		}
		if c, err := geo.ParseCell(parts[2]); err == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// readFleet reads every fresh driver record of the position index. It
// reads georedis.Index's documented layout (geo/index.go: the set
// <p>geo:regions and one hash <p>geo:{<r6>}:w per region of
// "r9|ms|status|lat|lng" records or "-|ms" tombstones) because geo offers
// no whole-fleet scan; ops_test.go writes through georedis.Index and reads
// through this, so a layout change fails there. Cost: one SMEMBERS and one
// pipelined HGETALL per region, O(drivers indexed in the last trim period).
func readFleet(ctx context.Context, rdb redis.UniversalClient, prefix string, fresh time.Time) ([]ops.FleetDriver, error) {
	regions, err := rdb.SMembers(ctx, prefix+"geo:regions").Result()
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("ops: ops fleet: %w", err)
	}
	if len(regions) == 0 {
		return nil, nil
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, 0, len(regions))
	for _, r := range regions {
		if _, err := geo.ParseCell(r); err != nil {
			continue
		}
		cmds = append(cmds, pipe.HGetAll(ctx, prefix+"geo:{"+r+"}:w"))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("ops: ops fleet: %w", err)
	}
	minMS := fresh.UnixMilli()
	var out []ops.FleetDriver
	for _, c := range cmds {
		for id, rec := range c.Val() {
			d, ok := parseFleetRecord(id, rec)
			if !ok || d.Seen.UnixMilli() < minMS {
				continue
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// parseFleetRecord parses "r9|ms|status|lat|lng"; tombstones and
// malformed records are false.
func parseFleetRecord(id, s string) (ops.FleetDriver, bool) {
	parts := strings.SplitN(s, "|", 5)
	if len(parts) != 5 || parts[0] == "-" {
		return ops.FleetDriver{}, false
	}
	c, err := geo.ParseCell(parts[0])
	if err != nil {
		return ops.FleetDriver{}, false
	}
	ms, err1 := strconv.ParseInt(parts[1], 10, 64)
	lat, err2 := strconv.ParseFloat(parts[3], 64)
	lng, err3 := strconv.ParseFloat(parts[4], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return ops.FleetDriver{}, false
	}
	return ops.FleetDriver{ID: id, Lat: lat, Lng: lng, Cell: c, Status: parts[2], Seen: time.UnixMilli(ms).UTC()}, true
}

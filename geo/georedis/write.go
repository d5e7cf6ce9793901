package georedis

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
)

// writer records drivers' positions and statuses: the index's write side.
type writer struct{ *store }

// moveScript adds or moves a driver inside one region, unless the region
// already holds a newer record (or tombstone) for it.
// KEYS: where, new cell zset, cells set, GEO set. ARGV: id, cell, ms,
// status, lat, lng, cell-key prefix, "1" to put the position in the GEO set
// (its latitude is within Redis GEO's range).
var moveScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local ms = tonumber(ARGV[3])
if cur then
  local c, m = string.match(cur, '^([^|]*)|([^|]*)')
  if tonumber(m) > ms then return 0 end
  if c ~= '-' and c ~= ARGV[2] then redis.call('ZREM', ARGV[7] .. c, ARGV[1]) end
end
redis.call('ZADD', KEYS[2], ms, ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]..'|'..ARGV[3]..'|'..ARGV[4]..'|'..ARGV[5]..'|'..ARGV[6])
redis.call('SADD', KEYS[3], ARGV[2])
if ARGV[8] == '1' then
  redis.call('GEOADD', KEYS[4], ARGV[6], ARGV[5], ARGV[1])
else
  redis.call('ZREM', KEYS[4], ARGV[1])
end
return 1
`)

// leaveScript tombstones a driver's record in a region it left, unless the
// region holds a newer record. KEYS: where, GEO set. ARGV: id, ms, cell-key prefix.
var leaveScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local ms = tonumber(ARGV[2])
if cur then
  local c, m = string.match(cur, '^([^|]*)|([^|]*)')
  if tonumber(m) >= ms then return 0 end
  if c ~= '-' then redis.call('ZREM', ARGV[3] .. c, ARGV[1]) end
end
redis.call('HSET', KEYS[1], ARGV[1], '-|'..ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)

// statusScript changes the status of a live record. KEYS: where. ARGV: id, status.
var statusScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local c, m, s, la, ln = string.match(cur, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
if not c or c == '-' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], c..'|'..m..'|'..ARGV[2]..'|'..la..'|'..ln)
return 1
`)

// Put records one driver's position (see UpdateMany).
func (x *writer) Put(ctx context.Context, u geo.Update) error {
	return x.UpdateMany(ctx, []geo.Update{u})
}

// UpdateMany records positions of many drivers with pipelined scripts: one
// round trip for the moves, a second only when some driver left a region.
func (x *writer) UpdateMany(ctx context.Context, us []geo.Update) error {
	if len(us) == 0 {
		return nil
	}
	var leaves []geo.Update
	var regions []geo.Cell
	err := runScripts(ctx, x.rdb, func(pipe redis.Pipeliner) error {
		leaves, regions = leaves[:0], regions[:0]
		for _, u := range us {
			c := geo.CellOf(u.Pos, geo.ResIndex)
			if c == 0 {
				return fmt.Errorf("georedis: index: invalid position %v", u.Pos)
			}
			region := c.Parent(geo.ResRegion)
			rp := x.regionPrefix(region)
			inGeo := "0"
			if math.Abs(u.Pos.Lat) <= geoMaxLat {
				inGeo = "1"
			}
			moveScript.EvalSha(ctx, pipe, []string{rp + "w", rp + "c:" + c.String(), rp + "cells", rp + "g"},
				u.ID, c.String(), u.Seen.UnixMilli(), u.Status,
				strconv.FormatFloat(u.Pos.Lat, 'f', 7, 64), strconv.FormatFloat(u.Pos.Lng, 'f', 7, 64), rp+"c:", inGeo)
			if u.Prev != 0 && u.Prev.Parent(geo.ResRegion) != region {
				leaves = append(leaves, u)
			}
			if !slices.Contains(regions, region) { // one SADD per region
				regions = append(regions, region)
				pipe.SAdd(ctx, x.prefix+"geo:regions", region.String())
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("georedis: index update: %w", err)
	}
	if len(leaves) == 0 {
		return nil
	}
	err = runScripts(ctx, x.rdb, func(pipe redis.Pipeliner) error {
		for _, u := range leaves {
			rp := x.regionPrefix(u.Prev.Parent(geo.ResRegion))
			leaveScript.EvalSha(ctx, pipe, []string{rp + "w", rp + "g"}, u.ID, u.Seen.UnixMilli(), rp+"c:")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("georedis: index leave: %w", err)
	}
	return nil
}

// SetStatus changes the status stored with a driver's current record.
func (x *writer) SetStatus(ctx context.Context, id string, cell geo.Cell, status string) error {
	if cell == 0 {
		return nil
	}
	rp := x.regionPrefix(cell.Parent(geo.ResRegion))
	if err := statusScript.Run(ctx, x.rdb, []string{rp + "w"}, id, status).Err(); err != nil {
		return fmt.Errorf("georedis: index status: %w", err)
	}
	return nil
}

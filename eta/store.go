package eta

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/geo"
)

// SpeedStore keeps the speed model in Redis: one hash per region (the r6
// parent of the speed cells, geo.ResRegion), key "<prefix>:{<region>}" so a
// region's cells share one Cluster slot and one script call updates them
// atomically. Field "<cell>" is the all-day average, "<cell>/<bucket>" a
// time-of-day bucket; the value is "<pace s/m>|<count>". Every write renews
// the key's TTL, so regions nobody drives through expire.
type SpeedStore struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewSpeedStore returns a store using keys under prefix (e.g. "eta:spd");
// ttl 0 means 7 days.
func NewSpeedStore(rdb redis.UniversalClient, prefix string, ttl time.Duration) *SpeedStore {
	if ttl <= 0 {
		ttl = 7 * 24 * time.Hour
	}
	return &SpeedStore{rdb: rdb, prefix: prefix, ttl: ttl}
}

// Key is the hash holding the cells of region.
func (s *SpeedStore) Key(region geo.Cell) string {
	return s.prefix + ":{" + region.String() + "}"
}

// foldScript folds batches into fields: ARGV = alpha, ttl_ms, then triples
// (field, mean pace, count). Same arithmetic as ewma.add. Returns the new
// values as a flat list field, value.
var foldScript = redis.NewScript(`
local alpha = tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV, 3 do
  local f, p, n = ARGV[i], tonumber(ARGV[i+1]), tonumber(ARGV[i+2])
  local cur = redis.call('HGET', KEYS[1], f)
  local pace, cnt = 0, 0
  if cur then
    local sep = string.find(cur, '|', 1, true)
    pace = tonumber(string.sub(cur, 1, sep - 1))
    cnt = tonumber(string.sub(cur, sep + 1))
  end
  for k = 1, math.min(n, 10000) do
    local w = math.max(alpha, 1 / (cnt + 1))
    pace = pace + w * (p - pace)
    cnt = cnt + 1
  end
  local v = string.format('%.9g|%d', pace, cnt)
  redis.call('HSET', KEYS[1], f, v)
  out[#out + 1] = f
  out[#out + 1] = v
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return out
`)

type fieldAgg struct {
	sumPace float64
	n       int
}

// Apply folds a batch of observations into Redis, one script call per
// region (pipelined), and returns the resulting states to merge into the
// in-memory model. Observations of one (cell, bucket) in a batch are folded
// as their mean pace, count times — the same result as one by one up to the
// order within the batch.
func (s *SpeedStore) Apply(ctx context.Context, alpha float64, obs []Observation) ([]CellStat, error) {
	byRegion := map[geo.Cell]map[string]*fieldAgg{}
	var order []geo.Cell
	add := func(region geo.Cell, field string, pace float64) {
		m := byRegion[region]
		if m == nil {
			m = map[string]*fieldAgg{}
			byRegion[region] = m
			order = append(order, region)
		}
		a := m[field]
		if a == nil {
			a = &fieldAgg{}
			m[field] = a
		}
		a.sumPace += pace
		a.n++
	}
	for _, o := range obs {
		if !(o.SpeedMS > 0) || o.Bucket < 0 || o.Bucket >= Buckets {
			continue
		}
		region := o.Cell.Parent(geo.ResRegion)
		if region == 0 {
			continue
		}
		cs := o.Cell.String()
		add(region, cs, 1/o.SpeedMS)
		add(region, cs+"/"+strconv.Itoa(o.Bucket), 1/o.SpeedMS)
	}
	if len(order) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(order))
	for i, region := range order {
		args := []any{alpha, s.ttl.Milliseconds()}
		for f, a := range byRegion[region] {
			args = append(args, f, a.sumPace/float64(a.n), a.n)
		}
		cmds[i] = foldScript.Eval(ctx, pipe, []string{s.Key(region)}, args...)
	}
	// Eval (not EvalSha) keeps the pipeline free of NOSCRIPT retries; the
	// script is small.
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("eta: store speeds: %w", err)
	}
	var stats []CellStat
	for _, c := range cmds {
		vals, err := c.StringSlice()
		if err != nil {
			return nil, fmt.Errorf("eta: store speeds: %w", err)
		}
		stats = appendStats(stats, vals)
	}
	return stats, nil
}

// Load reads the stored states of the given regions.
func (s *SpeedStore) Load(ctx context.Context, regions []geo.Cell) ([]CellStat, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(regions))
	for i, r := range regions {
		cmds[i] = pipe.HGetAll(ctx, s.Key(r))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("eta: load speeds: %w", err)
	}
	var stats []CellStat
	for _, c := range cmds {
		m, err := c.Result()
		if err != nil {
			return nil, fmt.Errorf("eta: load speeds: %w", err)
		}
		flat := make([]string, 0, 2*len(m))
		for f, v := range m {
			flat = append(flat, f, v)
		}
		stats = appendStats(stats, flat)
	}
	sortStats(stats)
	return stats, nil
}

// appendStats parses field/value pairs; malformed entries are skipped.
func appendStats(out []CellStat, flat []string) []CellStat {
	for i := 0; i+1 < len(flat); i += 2 {
		f, v := flat[i], flat[i+1]
		bucket := -1
		if j := strings.IndexByte(f, '/'); j >= 0 {
			b, err := strconv.Atoi(f[j+1:])
			if err != nil {
				continue
			}
			bucket, f = b, f[:j]
		}
		c, err := geo.ParseCell(f)
		if err != nil {
			continue
		}
		ps, ns, ok := strings.Cut(v, "|")
		if !ok {
			continue
		}
		pace, err1 := strconv.ParseFloat(ps, 64)
		n, err2 := strconv.ParseFloat(ns, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, CellStat{Cell: c, Bucket: bucket, Pace: pace, N: n})
	}
	return out
}

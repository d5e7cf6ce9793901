package driverredis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
)

// Suspensions are ops' suspensions of drivers. A suspension is the hash
// drv:{<id>}:susp (reason, by, at ms), kept without a TTL until the driver
// is reinstated: the status, claim and ingest scripts read it, so it holds
// on every node and outlives the driver's state. While it exists the
// driver's status is "suspended" (in its state and in the position index,
// which leaves it out of nearby search and dispatch). Every suspend and
// reinstate is appended to the audit stream drv:{<id}:susplog (the last
// suspensionLogLen changes, no TTL) and, with a StatusLog, to the status
// record stream for the archive. The sorted set "drivers:suspended" (by
// time) lists suspended drivers; the per-driver hash is the truth, the set
// is written after it and read through it.
type Suspensions struct {
	rdb    redis.UniversalClient
	idx    *georedis.Index
	cfg    driver.Config
	reads  *Reads
	claims *Claims // its status log
}

// suspensionLogLen is how many changes a driver's audit stream keeps.
const suspensionLogLen = 100

func suspLogKey(prefix, id string) string { return prefix + "drv:{" + id + "}:susplog" }
func suspListKey(prefix string) string    { return prefix + "drivers:suspended" }

// The suspension scripts. KEYS: drv hash, suspension hash, audit stream,
// status stream (or the drv hash when not recorded). ARGV: reason, by, at
// ms, rec, logttl. Return {changed 0|1, cell}, or NOTFOUND / ONTRIP.

// suspendScript suspends a known driver not on a trip; suspending a
// suspended driver changes nothing (the first suspension stands).
var suspendScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'status', 'trip', 'cell')
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, st[3] or ''} end
if not st[1] then return redis.error_reply('NOTFOUND driver is unknown') end
if st[2] and st[2] ~= '' then
  return redis.error_reply('ONTRIP driver is on trip ' .. st[2] .. '; reassign or end it first')
end
redis.call('HSET', KEYS[2], 'reason', ARGV[1], 'by', ARGV[2], 'at', ARGV[3])
redis.call('HSET', KEYS[1], 'status', 'suspended')
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ` + strconv.Itoa(suspensionLogLen) + `, '*', 'action', 'suspend', 'reason', ARGV[1], 'by', ARGV[2], 'at', ARGV[3])
if ARGV[4] == '1' then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', 1000, '*', 'status', 'suspended', 'trip', '')
  redis.call('EXPIRE', KEYS[4], ARGV[5])
end
return {1, st[3] or ''}
`)

// reinstateScript lifts a suspension; the driver is offline after it (it
// goes available itself). Reinstating a driver that is not suspended
// changes nothing.
var reinstateScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'status', 'cell')
if redis.call('EXISTS', KEYS[2]) == 0 then
  if not st[1] then return redis.error_reply('NOTFOUND driver is unknown') end
  return {0, st[2] or ''}
end
redis.call('DEL', KEYS[2])
if st[1] then redis.call('HSET', KEYS[1], 'status', 'offline') end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ` + strconv.Itoa(suspensionLogLen) + `, '*', 'action', 'reinstate', 'reason', ARGV[1], 'by', ARGV[2], 'at', ARGV[3])
if ARGV[4] == '1' then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', 1000, '*', 'status', 'offline', 'trip', '')
  redis.call('EXPIRE', KEYS[4], ARGV[5])
end
return {1, st[2] or ''}
`)

// Suspend suspends driverID on behalf of by (the ops caller) for reason.
// ErrNotFound for a driver that never pinged nor set a status, ErrConflict
// for one on a trip (ops reassign the trip first), ErrInvalid for a blank
// or oversized reason. Suspending a suspended driver keeps the first
// suspension. It returns the driver's state, its suspension included.
func (s *Suspensions) Suspend(ctx context.Context, driverID, by, reason string) (driver.State, error) {
	if err := driver.CheckID(driverID); err != nil {
		return driver.State{}, err
	}
	if err := driver.CheckReason(reason, true); err != nil {
		return driver.State{}, err
	}
	if err := s.change(ctx, suspendScript, driverID, by, reason, driver.StatusSuspended); err != nil {
		return driver.State{}, fmt.Errorf("driver: suspend: %w", err)
	}
	st, err := s.reads.Get(ctx, driverID)
	if err != nil {
		return driver.State{}, err
	}
	// Listed after the hash is written; a retried suspend lists it again.
	if st.Suspension != nil {
		z := redis.Z{Score: float64(st.Suspension.At.UnixMilli()), Member: driverID}
		if err := s.rdb.ZAdd(ctx, suspListKey(s.cfg.Prefix), z).Err(); err != nil {
			return driver.State{}, fmt.Errorf("driver: suspend: list: %w", err)
		}
	}
	return st, nil
}

// Reinstate lifts driverID's suspension on behalf of by (reason optional);
// the driver is offline after it. Reinstating a driver that is not
// suspended changes nothing. ErrNotFound for an unknown driver.
func (s *Suspensions) Reinstate(ctx context.Context, driverID, by, reason string) (driver.State, error) {
	if err := driver.CheckID(driverID); err != nil {
		return driver.State{}, err
	}
	if err := driver.CheckReason(reason, false); err != nil {
		return driver.State{}, err
	}
	if err := s.change(ctx, reinstateScript, driverID, by, reason, driver.StatusOffline); err != nil {
		return driver.State{}, fmt.Errorf("driver: reinstate: %w", err)
	}
	if err := s.rdb.ZRem(ctx, suspListKey(s.cfg.Prefix), driverID).Err(); err != nil {
		return driver.State{}, fmt.Errorf("driver: reinstate: list: %w", err)
	}
	return s.reads.Get(ctx, driverID)
}

// change runs a suspension script and, when it changed the driver, sets
// its status in the position index.
func (s *Suspensions) change(ctx context.Context, script *redis.Script, driverID, by, reason, status string) error {
	logKey, rec, err := s.claims.logKeys(ctx, driverID)
	if err != nil {
		return err
	}
	p := s.cfg.Prefix
	v, err := runScript(ctx, s.rdb, script,
		[]string{stateKey(p, driverID), suspKey(p, driverID), suspLogKey(p, driverID), logKey},
		reason, by, s.cfg.Now().UnixMilli(), rec, int64(statusLogTTL/time.Second))
	if err != nil {
		return err
	}
	arr, _ := v.([]any)
	if len(arr) != 2 {
		return fmt.Errorf("unexpected reply %v", v)
	}
	if changed, _ := arr[0].(int64); changed == 1 {
		if c, err := geo.ParseCell(str(arr[1])); err == nil {
			return s.idx.SetStatus(ctx, driverID, c, status)
		}
	}
	return nil
}

// IsSuspended reports whether ops suspended driverID (one EXISTS: the
// driver WebSocket asks it at connect and every ping period).
func (s *Suspensions) IsSuspended(ctx context.Context, driverID string) (bool, error) {
	n, err := s.rdb.Exists(ctx, suspKey(s.cfg.Prefix, driverID)).Result()
	if err != nil {
		return false, fmt.Errorf("driver: suspended: %w", err)
	}
	return n == 1, nil
}

// Suspended lists suspended drivers, most recently suspended first, at
// most limit (1..1000).
func (s *Suspensions) Suspended(ctx context.Context, limit int) ([]driver.SuspendedDriver, error) {
	if limit < 1 || limit > 1000 {
		return nil, fmt.Errorf("%w: limit must be within [1, 1000]", driver.ErrInvalid)
	}
	ids, err := s.rdb.ZRevRange(ctx, suspListKey(s.cfg.Prefix), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("driver: suspended: %w", err)
	}
	// One pipeline of HGETALLs (each its driver's slot under Cluster).
	p := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.HGetAll(ctx, suspKey(s.cfg.Prefix, id))
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("driver: suspended: %w", err)
	}
	out := make([]driver.SuspendedDriver, 0, len(ids))
	for i, id := range ids {
		if sp := parseSuspension(cmds[i].Val()); sp != nil {
			out = append(out, driver.SuspendedDriver{ID: id, Suspension: *sp})
		}
	}
	return out, nil
}

// SuspensionLog is driverID's audit log of suspensions and
// reinstatements, newest first (the last suspensionLogLen).
func (s *Suspensions) SuspensionLog(ctx context.Context, driverID string) ([]driver.SuspensionChange, error) {
	if err := driver.CheckID(driverID); err != nil {
		return nil, err
	}
	msgs, err := s.rdb.XRevRangeN(ctx, suspLogKey(s.cfg.Prefix, driverID), "+", "-", suspensionLogLen).Result()
	if err != nil {
		return nil, fmt.Errorf("driver: suspension log: %w", err)
	}
	out := make([]driver.SuspensionChange, 0, len(msgs))
	for _, m := range msgs {
		ch := driver.SuspensionChange{}
		ch.Action, _ = m.Values["action"].(string)
		ch.Reason, _ = m.Values["reason"].(string)
		ch.By, _ = m.Values["by"].(string)
		ch.At = msTime(m.Values["at"])
		out = append(out, ch)
	}
	return out, nil
}

// parseSuspension reads a suspension hash; nil when there is none.
func parseSuspension(m map[string]string) *driver.Suspension {
	if len(m) == 0 {
		return nil
	}
	return &driver.Suspension{Reason: m["reason"], By: m["by"], At: msTime(m["at"])}
}

// msTime is a time stored as Unix ms text (zero when it is not).
func msTime(v any) time.Time {
	s, _ := v.(string)
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

package zoneredis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/conflate"
	"github.com/hextrack/hextrack/internal/rscript"
	"github.com/hextrack/hextrack/zone"
)

// Tracker turns drivers' moves into zone events (driver.Listener).
type Tracker struct {
	*Store
	pub Publisher
	q   *conflate.Queue[job]

	// cache holds, per driver, the raw state this node last read or
	// wrote and, when a step changed only the last fix, the newer state
	// not written yet: the step script compares the raw state and answers
	// the current one when it differs, so a driver whose pings keep
	// landing here costs one round trip per batch with events, and one
	// per flushEvery otherwise. Cleared when it grows past maxCached.
	cache stateCache
}

// stateCache holds each driver's cachedState (see Tracker.cache).
type stateCache struct {
	mu     sync.Mutex
	now    func() time.Time
	states map[string]cachedState
}

// cachedState is a driver's state as this node knows it: raw is what
// Redis held at stored; pending, when not nil, is a newer state that
// differs from raw only in its last fix (no event, same zones).
type cachedState struct {
	raw     string
	pending *zone.State
	stored  time.Time
}

// flushEvery is how long a driver's newer last fix may stay unwritten:
// a step without events is not written sooner (make bench's zones row: a
// Redis script per ping batch cost a third of ingest throughput). It is
// kept well under Config.Stale, whose sweep reads the stored last fix.
func (t *Tracker) flushEvery() time.Duration { return min(10*time.Second, t.cfg.Stale/3) }

// maxCached bounds a Tracker's cache.
const maxCached = 200_000

var _ driver.Listener = (*Tracker)(nil)

// job is a driver's pending zone work: the cell it moved from (the first
// queued move's), its accepted fixes in order, and whether it went
// offline.
type job struct {
	from    geo.Cell
	fixes   []zone.Fix
	offline bool
}

// maxJobFixes bounds the fixes queued per driver; beyond it the oldest
// are dropped (the segment from the last stored fix gets longer: crossings
// are still seen, a zone left and re-entered in between is not).
const maxJobFixes = 256

func mergeJob(dst *job, src job) {
	if len(dst.fixes) == 0 {
		dst.from = src.from
	}
	dst.fixes = append(dst.fixes, src.fixes...)
	if over := len(dst.fixes) - maxJobFixes; over > 0 {
		dst.fixes = dst.fixes[over:]
	}
	dst.offline = src.offline || dst.offline && len(src.fixes) == 0
}

// NewTracker returns the tracker of a store, publishing with pub.
func NewTracker(s *Store, pub Publisher) *Tracker {
	return &Tracker{Store: s, pub: pub, q: conflate.New(conflate.Config[job]{Merge: mergeJob}), cache: stateCache{now: s.cfg.Now, states: map[string]cachedState{}}}
}

// DriverMoved queues the move when it may touch a zone: it asks only the
// in-memory index (Index.Near), so moves far from every zone cost a few
// cell computations and no Redis. A move of an offline driver is queued
// whenever zones exist (the driver may be inside one).
func (t *Tracker) DriverMoved(_ context.Context, m driver.Move) {
	x := t.Index()
	if x.Len() == 0 {
		return
	}
	off := m.Status == driver.StatusOffline
	var buf [64]geo.Point
	pts := append(buf[:0], m.Pos)
	for _, p := range m.Accepted {
		pts = append(pts, p.Pos)
	}
	if !off && !x.Near(m.From, pts...) {
		return
	}
	fixes := make([]zone.Fix, 0, max(1, len(m.Accepted)))
	for _, p := range m.Accepted {
		fixes = append(fixes, zone.Fix{Pos: p.Pos, TS: p.TS})
	}
	if len(fixes) == 0 {
		fixes = append(fixes, zone.Fix{Pos: m.Pos, TS: m.TS})
	}
	t.q.Put(m.DriverID, job{from: m.From, fixes: fixes, offline: off}, false)
}

// DriverOffline queues exits for a driver set offline (zone.exited,
// reason offline, from every zone it is inside). It never blocks.
func (t *Tracker) DriverOffline(driverID string) {
	if t.Index().Len() == 0 {
		return
	}
	t.q.Put(driverID, job{offline: true}, false)
}

// Run processes queued moves until ctx is done, and sweeps stale drivers
// and reloads the index every Config.Reload.
func (t *Tracker) Run(ctx context.Context) error {
	go func() { _ = t.Store.Run(ctx) }()
	go t.sweepLoop(ctx)
	t.q.Run(ctx, t.cfg.Workers, 16, func(ctx context.Context, items []conflate.Item[job]) {
		for _, it := range items {
			if _, err := t.Apply(ctx, it.Key, it.Job.from, it.Job.fixes, it.Job.offline); err != nil && ctx.Err() == nil {
				t.cfg.Logger.Warn("zones: driver step", "driver", it.Key, "err", err)
			}
		}
	})
	return nil
}

// Apply runs one driver's transitions: its fixes in order (the first moved
// from cell from; zero: unknown), then, if offline, the exits. It returns
// the events written. The state is compared and written in one script,
// retried when another node changed it in between.
func (t *Tracker) Apply(ctx context.Context, driverID string, from geo.Cell, fixes []zone.Fix, offline bool) ([]zone.Event, error) {
	c, cached := t.cache.cached(driverID)
	raw := c.raw
	for range 8 {
		var st zone.State
		var err error
		switch {
		case cached && c.pending != nil:
			st = *c.pending
			st.Inside = slices.Clone(st.Inside)
		case cached:
			st, err = decodeState(raw)
		default:
			st, raw, err = t.loadState(ctx, driverID)
		}
		if err != nil {
			return nil, err
		}
		var evs []zone.Event
		if len(fixes) > 0 && st.Last != nil && from.Valid() && geo.CellOf(st.Last.Pos, from.Res()) != from {
			// Moves far from every zone were not stored: the driver was
			// last somewhere in from, not at st.Last.
			st.Last = &zone.Fix{Pos: from.Center(), TS: st.Last.TS}
		}
		before, _ := json.Marshal(st.Inside)
		x := t.Index()
		for _, f := range fixes {
			var more []zone.Event
			st, more = zone.Step(x, st, driverID, f)
			evs = append(evs, more...)
		}
		if offline {
			var more []zone.Event
			st, more = zone.Leave(st, driverID, t.cfg.Now(), zone.ReasonOffline)
			evs = append(evs, more...)
		}
		if after, _ := json.Marshal(st.Inside); cached && len(evs) == 0 && string(after) == string(before) &&
			t.cfg.Now().Sub(c.stored) < t.flushEvery() {
			t.cache.keep(driverID, c, st) // only the last fix moved: written later
			return nil, nil
		}
		ok, cur, err := t.write(ctx, driverID, raw, st, evs)
		if err != nil {
			t.cache.forget(driverID)
			return nil, err
		}
		if ok {
			return evs, nil
		}
		// Changed elsewhere: step again from the current state (a pending
		// last fix of this node's is dropped; the segment starts earlier).
		raw, cached = cur, true
		c = cachedState{raw: cur, stored: t.cfg.Now()}
	}
	t.cache.forget(driverID)
	return nil, fmt.Errorf("zone: driver %s: state changed concurrently too often", driverID)
}

// Sweep exits drivers inside a zone whose last fix is older than
// Config.Stale and returns how many it exited.
func (t *Tracker) Sweep(ctx context.Context) (int, error) {
	now := t.cfg.Now()
	ids, err := t.rdb.ZRangeByScore(ctx, t.activeKey(), &redis.ZRangeBy{Min: "-inf",
		Max: strconv.FormatInt(now.Add(-t.cfg.Stale).UnixMilli(), 10), Count: 500}).Result()
	if err != nil {
		return 0, fmt.Errorf("zone: sweep: %w", err)
	}
	n := 0
	for _, id := range ids {
		for range 8 {
			st, raw, err := t.loadState(ctx, id)
			if err != nil {
				return n, err
			}
			if st.Last != nil && now.Sub(st.Last.TS) < t.cfg.Stale {
				// Fixes arrived since: the score catches up (steps without
				// events do not write it).
				if len(st.Inside) > 0 {
					err = t.rdb.ZAdd(ctx, t.activeKey(), redis.Z{Score: float64(st.Last.TS.UnixMilli()), Member: id}).Err()
				} else {
					err = t.rdb.ZRem(ctx, t.activeKey(), id).Err()
				}
				if err != nil {
					return n, fmt.Errorf("zone: sweep: %w", err)
				}
				break
			}
			st, evs := zone.Leave(st, id, now, zone.ReasonStale)
			ok, _, err := t.write(ctx, id, raw, st, evs)
			if err != nil {
				return n, err
			}
			if ok {
				n++
				break
			}
		}
	}
	return n, nil
}

func (t *Tracker) sweepLoop(ctx context.Context) {
	tick := t.cfg.Stale / 4
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(tick):
		}
		if _, err := t.Sweep(ctx); err != nil && ctx.Err() == nil {
			t.cfg.Logger.Warn("zones: stale sweep", "err", err)
		}
	}
}

// stepScript writes a driver's state if it is still the one read, and
// appends its events to the driver's zone topic.
//
//	KEYS: state, then two feed keys per event
//	ARGV: old state ('' none), new state ('' delete), ttl ms, n events,
//	      then feedredis.PublishArgc args per event
//
// Reply: {'conflict', current state} or {'ok', id...}.
var stepScript = feedredis.Script(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return {'conflict', cur} end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
local out = {'ok'}
local n = tonumber(ARGV[4])
for i = 1, n do
  local id = hx_publish(KEYS[2*i], KEYS[2*i+1], ARGV, 5 + (i-1)*` + strconv.Itoa(feedredis.PublishArgc) + `)
  out[#out+1] = id
end
return out
`)

// write stores st and evs if the state is still old; false and the
// current state when it was changed by someone else. After the script:
// the events are copied to their zones' topics and the who-is-inside sets
// updated.
func (t *Tracker) write(ctx context.Context, driverID, old string, st zone.State, evs []zone.Event) (bool, string, error) {
	var b []byte
	if st.Last != nil || len(st.Inside) > 0 {
		var err error
		if b, err = json.Marshal(st); err != nil {
			return false, "", err
		}
	}
	if string(b) == old && len(evs) == 0 {
		return true, old, nil
	}
	keys := []string{t.stateKey(driverID)}
	args := []any{old, string(b), t.cfg.StateTTL.Milliseconds(), len(evs)}
	datas := make([][]byte, len(evs))
	for i, e := range evs {
		data, err := json.Marshal(e)
		if err != nil {
			return false, "", err
		}
		datas[i] = data
		k, a, err := t.pub.PublishParams(ctx, feed.Publication{Topic: DriverTopic(driverID), Type: e.Type, Data: data, TS: e.TS})
		if err != nil {
			return false, "", err
		}
		keys = append(keys, k...)
		args = append(args, a...)
	}
	r, err := rscript.Run(ctx, t.rdb, stepScript, keys, args...)
	if err != nil {
		return false, "", fmt.Errorf("zone: step %s: %w", driverID, err)
	}
	if r[0] != "ok" {
		cur := ""
		if len(r) > 1 {
			cur = r[1]
		}
		t.cache.remember(driverID, cur)
		return false, cur, nil
	}
	t.cache.remember(driverID, string(b))
	ids := r[1:]
	if len(evs) == 0 {
		// Who is inside only changes with events; the active set's score
		// is a lower bound of the last fix the sweep corrects.
		return true, string(b), nil
	}
	for i, e := range evs {
		// The driver topic's id makes the copy idempotent.
		if _, err := t.pub.Publish(ctx, feed.Publication{Topic: zone.Topic(e.Zone), Type: e.Type, Data: datas[i], TS: e.TS,
			Key: DriverTopic(driverID) + "/" + ids[i]}); err != nil {
			return true, string(b), fmt.Errorf("zone: copy %s to %s: %w", ids[i], e.Zone, err)
		}
	}
	_, err = t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range evs {
			if e.Type == zone.EventExited {
				p.ZRem(ctx, t.insideKey(e.Zone), driverID)
			}
		}
		for _, in := range st.Inside {
			p.ZAdd(ctx, t.insideKey(in.Zone), redis.Z{Score: float64(in.Since.UnixMilli()), Member: driverID})
		}
		if len(st.Inside) > 0 {
			p.ZAdd(ctx, t.activeKey(), redis.Z{Score: float64(st.Last.TS.UnixMilli()), Member: driverID})
		} else {
			p.ZRem(ctx, t.activeKey(), driverID)
		}
		return nil
	})
	if err != nil {
		return true, string(b), fmt.Errorf("zone: inside sets of %s: %w", driverID, err)
	}
	return true, string(b), nil
}

func (t *stateCache) cached(driverID string) (cachedState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.states[driverID]
	return c, ok
}

// remember notes raw as what Redis holds now.
func (t *stateCache) remember(driverID, raw string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.states) >= maxCached {
		clear(t.states)
	}
	t.states[driverID] = cachedState{raw: raw, stored: t.now()}
}

// keep notes st as the driver's newer state, not written yet (c.raw is
// still what Redis holds).
func (t *stateCache) keep(driverID string, c cachedState, st zone.State) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c.pending = &st
	t.states[driverID] = c
}

func (t *stateCache) forget(driverID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.states, driverID)
}

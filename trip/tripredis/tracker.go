package tripredis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/internal/conflate"
	"github.com/hextrack/hextrack/internal/rscript"
	"github.com/hextrack/hextrack/trip"
)

// Tracker keeps the live location of trips: it implements driver.Listener
// (DriverMoved only queues, latest wins per trip) and its workers (Run)
// store each fix in the trip hash with a per-trip position sequence,
// append sampled breadcrumbs and publish trip.location live, conflated to
// Config.LocationEvery per trip across all nodes. When the feed archives
// (Feed.ArchiveGrace > 0), every accepted fix of the trip's driver (not
// only the newest) is also appended to the trip's trail record stream
// (feedredis.RecordTrail) for the archive, the trip marked first.
type Tracker struct {
	*base
	q *conflate.Queue[locJob] // trips with work, latest wins

	mu     sync.Mutex
	marked map[string]time.Time // trip → until when its last mark covers a trail append
}

var _ driver.Listener = (*Tracker)(nil)

func newTracker(b *base) *Tracker {
	return &Tracker{base: b, q: conflate.New(conflate.Config[locJob]{Merge: mergeLoc}), marked: map[string]time.Time{}}
}

// DriverMoved queues a driver's applied move for its trip's location. It
// never blocks: moves of one trip waiting to be stored are conflated (the
// newest fix wins), so the queue holds at most one entry per active trip;
// when archiving, the accepted fixes of the conflated moves are kept for
// the trail (at most maxTrail per trip).
func (s *Tracker) DriverMoved(_ context.Context, m driver.Move) {
	if m.TripID == "" || !trip.ValidID(m.TripID) {
		return
	}
	j := locJob{move: &m}
	if s.feed.ArchiveGrace() > 0 {
		j.trail = trailOf(m)
	}
	s.q.Put(m.TripID, j, false)
}

// maxTrail bounds the trail fixes of one trip waiting in the queue (a
// trip's driver sends about one a second; the queue is drained within
// milliseconds unless Redis is down, when the oldest are dropped and
// logged).
const maxTrail = 4096

// trailOf is the trail record of each accepted fix of m ("drv|ts ms|lat|
// lng|accuracy|speed|heading", the optional ones empty): m.Accepted, or
// m's own fix when it carries none.
func trailOf(m driver.Move) []string {
	rec := func(ts time.Time, lat, lng, acc, spd, hdg float64) string {
		return m.DriverID + "|" + strconv.FormatInt(ts.UnixMilli(), 10) + "|" + fmtFloat(lat, 7) + "|" + fmtFloat(lng, 7) +
			"|" + fmtFloat(acc, 2) + "|" + fmtFloat(spd, 2) + "|" + fmtFloat(hdg, 2)
	}
	if len(m.Accepted) == 0 {
		return []string{rec(m.TS, m.Pos.Lat, m.Pos.Lng, math.NaN(), m.Speed, m.Heading)}
	}
	out := make([]string, len(m.Accepted))
	for i, p := range m.Accepted {
		out[i] = rec(p.TS, p.Pos.Lat, p.Pos.Lng, p.Accuracy, p.Speed, p.Heading)
	}
	return out
}

// Run processes queued moves and delayed (trailing-edge) location publishes
// until ctx is done. Without Run, trips get no location.
func (s *Tracker) Run(ctx context.Context) error {
	s.q.Run(ctx, s.cfg.Workers, maxLocBatch, func(ctx context.Context, batch []conflate.Item[locJob]) {
		for i, err := range s.processBatch(ctx, batch) {
			if err != nil && ctx.Err() == nil {
				s.cfg.Logger.Warn("trip: location", "trip", batch[i].Key, "err", err)
			}
		}
	})
	return nil
}

// locJob is a trip's pending location work: a newer move to store, or a
// trailing publish due.
type locJob struct {
	move  *driver.Move
	flush bool
	trail []string // accepted fixes for the trail (trailOf), in arrival order
}

// mergeLoc is the queue's latest-wins rule: the newest move (by ping time)
// stays; a flush stays asked for; the trail fixes of both are kept.
func mergeLoc(dst *locJob, src locJob) {
	if m := src.move; m != nil && (dst.move == nil || !m.TS.Before(dst.move.TS)) {
		dst.move = m
	}
	dst.flush = dst.flush || src.flush
	if len(src.trail) > 0 {
		dst.trail = append(dst.trail, src.trail...)
		if over := len(dst.trail) - maxTrail; over > 0 {
			dst.trail = slices.Delete(dst.trail, 0, over)
			slog.Warn("trip: trail fixes dropped: the tracker's queue is full (Redis down?)", "dropped", over)
		}
	}
}

// maxLocBatch bounds the moves a worker sends to Redis in one pipeline:
// every move ready is taken together (they piled up while the workers
// waited on Redis); a lone move goes alone, at once.
const maxLocBatch = 64

func fmtFloat(f float64, prec int) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return ""
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

// locCall is one trip's location script call: what to run and what it
// needs to make sense of the reply.
type locCall struct {
	script *redis.Script
	keys   []string
	args   []any
	fix    *fixFields // the fix being stored (a move), else nil
	flush  bool
}

// fixFields is a fix as stored in the trip hash (loc_drv, loc_ts, loc_lat,
// loc_lng, loc_hdg, loc_spd).
type fixFields struct{ drv, ts, lat, lng, hdg, spd string }

// location is the fix as LocationOf reads it back (nil if incomplete).
func (f *fixFields) location(seq int64) *trip.Location {
	if seq == 0 || f.ts == "" {
		return nil
	}
	l := &trip.Location{Seq: seq, DriverID: f.drv, TS: msTime(f.ts)}
	l.Lat, _ = strconv.ParseFloat(f.lat, 64)
	l.Lng, _ = strconv.ParseFloat(f.lng, 64)
	l.Heading = optFloat(f.hdg)
	l.Speed = optFloat(f.spd)
	return l
}

// call builds the script call of a job: a move is stored (and, when the gate
// is open, published by the script itself through hx_publish_live); a
// trailing flush publishes the stored fix if still due.
func (s *Tracker) call(tripID string, j locJob) locCall {
	gate := s.cfg.LocationEvery.Milliseconds()
	if m := j.move; m != nil {
		f := &fixFields{drv: m.DriverID, ts: strconv.FormatInt(m.TS.UnixMilli(), 10),
			lat: fmtFloat(m.Pos.Lat, 7), lng: fmtFloat(m.Pos.Lng, 7),
			hdg: fmtFloat(m.Heading, 1), spd: fmtFloat(m.Speed, 2)}
		args := make([]any, 0, 16)
		args = append(args, f.drv, f.ts, f.lat, f.lng, f.hdg, f.spd, s.now().UnixMilli(), gate,
			s.cfg.CrumbEvery.Milliseconds(), s.cfg.CrumbMeters, s.cfg.MaxCrumbs, s.ttl())
		args = s.liveArgs(args, tripID, f)
		keys := []string{tripKey(s.cfg.Prefix, tripID), pathKey(s.cfg.Prefix, tripID)}
		if len(j.trail) > 0 {
			// The trail: a third key, the records the last argument.
			keys = append(keys, feedredis.RecordKey(s.cfg.Prefix, trip.Topic(tripID), feedredis.RecordTrail))
			args = append(args, strings.Join(j.trail, ";"))
		}
		return locCall{script: locationScript, keys: keys, args: args, fix: f}
	}
	return locCall{script: flushScript, keys: []string{tripKey(s.cfg.Prefix, tripID)},
		args: []any{s.now().UnixMilli(), gate}, flush: true}
}

// process stores a move and/or publishes the latest fix if the gate allows:
// one round trip.
func (s *Tracker) process(ctx context.Context, tripID string, j locJob) error {
	j = s.markTrail(ctx, tripID, j)
	c := s.call(tripID, j)
	res, err := runScript(ctx, s.rdb, c.script, c.keys, c.args...)
	if err != nil {
		return err
	}
	return s.processed(ctx, tripID, c, res)
}

// processBatch processes jobs of distinct trips, several in one pipeline;
// errs[i] is the outcome of batch[i]. A script Redis does not know yet
// (NOSCRIPT) is run again on its own, which loads it.
func (s *Tracker) processBatch(ctx context.Context, batch []conflate.Item[locJob]) []error {
	errs := make([]error, len(batch))
	if len(batch) == 1 {
		errs[0] = s.process(ctx, batch[0].Key, batch[0].Job)
		return errs
	}
	calls := make([]locCall, len(batch))
	cmds := make([]*redis.Cmd, len(batch))
	pipe := s.rdb.Pipeline()
	for i, t := range batch {
		calls[i] = s.call(t.Key, s.markTrail(ctx, t.Key, t.Job))
		cmds[i] = calls[i].script.EvalSha(ctx, pipe, calls[i].keys, calls[i].args...)
	}
	_, _ = pipe.Exec(ctx) // each command's error is looked at below
	for i, cmd := range cmds {
		v, err := cmd.Result()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			v, err = calls[i].script.Run(ctx, s.rdb, calls[i].keys, calls[i].args...).Result()
		}
		if err != nil {
			errs[i] = err
			continue
		}
		res := rscript.Reply(v)
		if len(res) == 0 {
			errs[i] = fmt.Errorf("trip: empty script reply %v", v)
			continue
		}
		errs[i] = s.processed(ctx, batch[i].Key, calls[i], res)
	}
	return errs
}

// markTrail marks trip in the archive's dirty index before its trail is
// appended to (a mark covers appends for a third of the feed's
// ArchiveGrace, so a trip's driver sending a fix a second costs a mark
// every few seconds, not one per fix). A mark that fails drops the job's
// trail (logged): the location is still stored.
func (s *Tracker) markTrail(ctx context.Context, tripID string, j locJob) locJob {
	grace := s.feed.ArchiveGrace()
	if len(j.trail) == 0 || j.move == nil || grace <= 0 {
		j.trail = nil
		return j
	}
	now := time.Now()
	s.mu.Lock()
	until, ok := s.marked[tripID]
	s.mu.Unlock()
	if ok && now.Before(until) {
		return j
	}
	if err := s.feed.Mark(ctx, trip.Topic(tripID)); err != nil {
		s.cfg.Logger.Warn("trip: trail fixes not archived: mark failed", "trip", tripID, "fixes", len(j.trail), "err", err)
		j.trail = nil
		return j
	}
	s.mu.Lock()
	if len(s.marked) > 100_000 {
		for k, u := range s.marked {
			if now.After(u) {
				delete(s.marked, k)
			}
		}
	}
	s.marked[tripID] = now.Add(grace / 3)
	s.mu.Unlock()
	return j
}

// processed acts on a location script's reply: count, publish (when the
// script could not), or schedule the trailing publish.
func (s *Tracker) processed(ctx context.Context, tripID string, c locCall, res []string) error {
	fix := c.fix
	if c.flush && res[0] == "publish" && len(res) == 8 {
		fix = &fixFields{drv: res[2], ts: res[3], lat: res[4], lng: res[5], hdg: res[6], spd: res[7]}
	}
	switch res[0] {
	case "published":
		if s.metrics.Location != nil {
			s.metrics.Location(true)
		}
	case "publish":
		if fix == nil || len(res) < 2 {
			return fmt.Errorf("trip: location script reply %v", res)
		}
		seq, _ := strconv.ParseInt(res[1], 10, 64)
		return s.publishLocation(ctx, tripID, fix.location(seq))
	case "held":
		wait, _ := strconv.ParseInt(res[len(res)-1], 10, 64)
		s.q.After(tripID, time.Duration(max(wait, 1))*time.Millisecond, locJob{flush: true})
		if s.metrics.Location != nil {
			s.metrics.Location(false)
		}
	}
	return nil
}

// locationData is the JSON of a trip.location event (the one place it is
// built): the trip ID, then the fix, seq first.
func locationData(tripID string, l *trip.Location) ([]byte, error) {
	return json.Marshal(struct {
		TripID string `json:"trip_id"`
		*trip.Location
	}{tripID, l})
}

// liveArgs appends to args the locationScript arguments 13.. that let it
// publish the fix it stores: the data with a placeholder for the seq (only
// known there) and the live message's parameters; or "" when that cannot be
// (then the caller publishes).
func (s *Tracker) liveArgs(args []any, tripID string, f *fixFields) []any {
	if l := f.location(1); l != nil {
		l.Seq = 0
		data, err1 := locationData(tripID, l)
		live, err2 := s.feed.LiveParams(trip.Topic(tripID), trip.EventLocation, time.Now())
		// The seq follows the trip ID (an ID: no quote or escape to confuse).
		tmpl := bytes.Replace(data, []byte(`,"seq":0,`), []byte(`,"seq":__SEQ__,`), 1)
		if err1 == nil && err2 == nil && !bytes.Equal(tmpl, data) {
			return append(append(args, string(tmpl)), live...)
		}
	}
	return append(args, "")
}

// publishLocation sends a trip's fix live (the one stored when the gate
// opened).
func (s *Tracker) publishLocation(ctx context.Context, tripID string, l *trip.Location) error {
	if l == nil {
		return nil
	}
	if s.metrics.Location != nil {
		s.metrics.Location(true)
	}
	data, err := locationData(tripID, l)
	if err != nil {
		return err
	}
	return s.feed.PublishSeq(ctx, trip.Topic(tripID), trip.EventLocation, l.Seq, data)
}

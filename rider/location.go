package rider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
)

var _ driver.Listener = (*Service)(nil)

// DriverMoved queues a driver's applied move for its trip's location. It
// never blocks: moves of one trip waiting to be stored are conflated (the
// newest fix wins), so the queue holds at most one entry per active trip.
func (s *Service) DriverMoved(_ context.Context, m driver.Move) {
	if m.TripID == "" || !ValidID(m.TripID) {
		return
	}
	s.loc.enqueue(m.TripID, &m, false)
}

// Run processes queued moves and delayed (trailing-edge) location publishes
// until ctx is done. Without Run, trips get no location.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.loc.work(ctx) })
	}
	<-ctx.Done()
	s.loc.stop()
	wg.Wait()
	return nil
}

// tracker is the queue of trips with work: a newer move to store, or a
// trailing publish due.
type tracker struct {
	s      *Service
	mu     sync.Mutex
	jobs   map[string]*locJob // by trip
	ready  []string           // trips with a job, in arrival order
	busy   map[string]bool    // trips being processed (one worker per trip)
	timers map[string]*time.Timer
	wake   chan struct{}
	done   bool
}

type locJob struct {
	move  *driver.Move
	flush bool
}

func newTracker(s *Service) *tracker {
	return &tracker{s: s, jobs: map[string]*locJob{}, busy: map[string]bool{},
		timers: map[string]*time.Timer{}, wake: make(chan struct{}, 1)}
}

func (t *tracker) enqueue(trip string, m *driver.Move, flush bool) {
	t.mu.Lock()
	if t.done {
		t.mu.Unlock()
		return
	}
	j, ok := t.jobs[trip]
	if !ok {
		j = &locJob{}
		t.jobs[trip] = j
		if !t.busy[trip] {
			t.ready = append(t.ready, trip)
		}
	}
	if m != nil && (j.move == nil || !m.TS.Before(j.move.TS)) {
		j.move = m
	}
	j.flush = j.flush || flush
	t.mu.Unlock()
	t.poke()
}

func (t *tracker) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// maxLocBatch bounds the moves a worker sends to Redis in one pipeline.
const maxLocBatch = 64

// locTask is one trip's job taken for processing.
type locTask struct {
	trip string
	job  *locJob
}

// next takes up to max trips' jobs for processing, appended to buf: every
// job ready now, so that a worker sends the moves that piled up while it
// (and the others) waited on Redis in one pipeline instead of one round
// trip each. A lone move goes alone, at once: nothing waits for a batch.
func (t *tracker) next(buf []locTask, max int) []locTask {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.ready) > 0 && len(buf) < max {
		trip := t.ready[0]
		t.ready = t.ready[1:]
		j, ok := t.jobs[trip]
		if !ok {
			continue
		}
		delete(t.jobs, trip)
		t.busy[trip] = true
		buf = append(buf, locTask{trip, j})
	}
	if len(t.ready) > 0 {
		t.poke() // let another worker take the next trips
	}
	return buf
}

func (t *tracker) finish(trip string) {
	t.mu.Lock()
	delete(t.busy, trip)
	if _, ok := t.jobs[trip]; ok {
		t.ready = append(t.ready, trip)
		t.mu.Unlock()
		t.poke()
		return
	}
	t.mu.Unlock()
}

// later schedules a trailing publish for trip (one timer per trip).
func (t *tracker) later(trip string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done || t.timers[trip] != nil {
		return
	}
	t.timers[trip] = time.AfterFunc(d, func() {
		t.mu.Lock()
		delete(t.timers, trip)
		t.mu.Unlock()
		t.enqueue(trip, nil, true)
	})
}

func (t *tracker) stop() {
	t.mu.Lock()
	t.done = true
	for k, tm := range t.timers {
		tm.Stop()
		delete(t.timers, k)
	}
	t.mu.Unlock()
}

func (t *tracker) work(ctx context.Context) {
	var batch []locTask
	for {
		batch = t.next(batch[:0], maxLocBatch)
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-t.wake:
				continue
			}
		}
		for i, err := range t.s.processBatch(ctx, batch) {
			if err != nil && ctx.Err() == nil {
				t.s.cfg.Logger.Warn("rider: trip location", "trip", batch[i].trip, "err", err)
			}
		}
		for i := range batch {
			t.finish(batch[i].trip)
			batch[i] = locTask{}
		}
	}
}

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
func (f *fixFields) location(seq int64) *Location {
	if seq == 0 || f.ts == "" {
		return nil
	}
	l := &Location{Seq: seq, DriverID: f.drv, TS: msTime(f.ts)}
	l.Lat, _ = strconv.ParseFloat(f.lat, 64)
	l.Lng, _ = strconv.ParseFloat(f.lng, 64)
	l.Heading = optFloat(f.hdg)
	l.Speed = optFloat(f.spd)
	return l
}

// call builds the script call of a job: a move is stored (and, when the gate
// is open, published by the script itself, the feed permitting, see
// liveWirer); a trailing flush publishes the stored fix if still due.
func (s *Service) call(trip string, j *locJob) locCall {
	gate := s.cfg.LocationEvery.Milliseconds()
	if m := j.move; m != nil {
		f := &fixFields{drv: m.DriverID, ts: strconv.FormatInt(m.TS.UnixMilli(), 10),
			lat: fmtFloat(m.Pos.Lat, 7), lng: fmtFloat(m.Pos.Lng, 7),
			hdg: fmtFloat(m.Heading, 1), spd: fmtFloat(m.Speed, 2)}
		args := make([]any, 0, 16)
		args = append(args, f.drv, f.ts, f.lat, f.lng, f.hdg, f.spd, s.now().UnixMilli(), gate,
			s.cfg.CrumbEvery.Milliseconds(), s.cfg.CrumbMeters, s.cfg.MaxCrumbs, s.ttl())
		args = s.liveArgs(args, trip, f)
		return locCall{script: locationScript, keys: []string{tripKey(s.cfg.Prefix, trip), pathKey(s.cfg.Prefix, trip)},
			args: args, fix: f}
	}
	return locCall{script: flushScript, keys: []string{tripKey(s.cfg.Prefix, trip)},
		args: []any{s.now().UnixMilli(), gate}, flush: true}
}

// process stores a move and/or publishes the latest fix if the gate allows:
// one round trip.
func (s *Service) process(ctx context.Context, trip string, j *locJob) error {
	c := s.call(trip, j)
	res, err := runScript(ctx, s.rdb, c.script, c.keys, c.args...)
	if err != nil {
		return err
	}
	return s.processed(ctx, trip, c, res)
}

// processBatch processes jobs of distinct trips, several in one pipeline;
// errs[i] is the outcome of batch[i]. A script Redis does not know yet
// (NOSCRIPT) is run again on its own, which loads it.
func (s *Service) processBatch(ctx context.Context, batch []locTask) []error {
	errs := make([]error, len(batch))
	if len(batch) == 1 {
		errs[0] = s.process(ctx, batch[0].trip, batch[0].job)
		return errs
	}
	calls := make([]locCall, len(batch))
	cmds := make([]*redis.Cmd, len(batch))
	pipe := s.rdb.Pipeline()
	for i, t := range batch {
		calls[i] = s.call(t.trip, t.job)
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
		res := reply(v)
		if len(res) == 0 {
			errs[i] = fmt.Errorf("rider: empty script reply %v", v)
			continue
		}
		errs[i] = s.processed(ctx, batch[i].trip, calls[i], res)
	}
	return errs
}

// processed acts on a location script's reply: count, publish (when the
// script could not), or schedule the trailing publish.
func (s *Service) processed(ctx context.Context, trip string, c locCall, res []string) error {
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
			return fmt.Errorf("rider: location script reply %v", res)
		}
		seq, _ := strconv.ParseInt(res[1], 10, 64)
		return s.publishLocation(ctx, trip, fix.location(seq))
	case "held":
		wait, _ := strconv.ParseInt(res[len(res)-1], 10, 64)
		s.loc.later(trip, time.Duration(max(wait, 1))*time.Millisecond)
		if s.metrics.Location != nil {
			s.metrics.Location(false)
		}
	}
	return nil
}

// liveWirer is implemented by feed.Broker: what a script needs to publish a
// live-only message itself (same channel and wire format as PublishLive).
type liveWirer interface {
	LiveWire(topic, typ string, ts time.Time) (channel, cmd, head string, err error)
}

// locationData is the JSON of a trip.location event: exactly what
// json.Marshal makes of struct{TripID string `json:"trip_id"`; *Location},
// written by hand (it runs for every move) unless a string needs escaping
// or a number is not finite.
func locationData(trip string, l *Location) []byte {
	if b, ok := appendLocation(make([]byte, 0, 192), trip, l); ok {
		return b
	}
	data, _ := json.Marshal(struct {
		TripID string `json:"trip_id"`
		*Location
	}{trip, l})
	return data
}

func appendLocation(b []byte, trip string, l *Location) ([]byte, bool) {
	if !plainJSON(trip) || !plainJSON(l.DriverID) || l.TS.Year() < 0 || l.TS.Year() > 9999 {
		return nil, false
	}
	b = append(b, `{"trip_id":"`...)
	b = append(b, trip...)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, l.Seq, 10)
	b = append(b, `,"driver_id":"`...)
	b = append(b, l.DriverID...)
	b = append(b, `","lat":`...)
	var ok bool
	if b, ok = appendJSONFloat(b, l.Lat); !ok {
		return nil, false
	}
	b = append(b, `,"lng":`...)
	if b, ok = appendJSONFloat(b, l.Lng); !ok {
		return nil, false
	}
	b = append(b, `,"ts":"`...)
	b = l.TS.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if l.Heading != nil {
		b = append(b, `,"heading":`...)
		if b, ok = appendJSONFloat(b, *l.Heading); !ok {
			return nil, false
		}
	}
	if l.Speed != nil {
		b = append(b, `,"speed":`...)
		if b, ok = appendJSONFloat(b, *l.Speed); !ok {
			return nil, false
		}
	}
	return append(b, '}'), true
}

// plainJSON reports whether s is a JSON string body as it is (no byte that
// encoding/json escapes).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendJSONFloat formats f as encoding/json does; false if not finite.
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// liveArgs appends to args the locationScript arguments 13-16 that let it
// publish the fix it stores (the seq is only known there), or none when the
// feed cannot (then the caller publishes).
func (s *Service) liveArgs(args []any, trip string, f *fixFields) []any {
	lw, ok := s.feed.(liveWirer)
	if !ok {
		return args
	}
	l := f.location(1)
	if l == nil {
		return args
	}
	l.Seq = 0
	data := locationData(trip, l)
	tid, _ := json.Marshal(trip)
	pre := `{"trip_id":` + string(tid) + `,"seq":`
	if !bytes.HasPrefix(data, []byte(pre+"0,")) {
		return args
	}
	ch, cmd, head, err := lw.LiveWire(Topic(trip), EventLocation, time.Now())
	if err != nil {
		return args
	}
	return append(args, ch, cmd, head+pre, string(data[len(pre)+1:]))
}

// publishLocation sends a trip's fix live (the one stored when the gate
// opened).
func (s *Service) publishLocation(ctx context.Context, trip string, l *Location) error {
	if l == nil {
		return nil
	}
	if s.metrics.Location != nil {
		s.metrics.Location(true)
	}
	return s.feed.PublishLive(ctx, Topic(trip), EventLocation, locationData(trip, l))
}

// LocationOf returns a trip's latest stored fix (nil if none) without an
// authorization check: streams send it right after a (re)connect.
func (s *Service) LocationOf(ctx context.Context, id string) (*Location, error) {
	if err := checkTripID(id); err != nil {
		return nil, err
	}
	m, err := s.rdb.HMGet(ctx, tripKey(s.cfg.Prefix, id), "locseq", "loc_drv", "loc_ts", "loc_lat", "loc_lng", "loc_hdg", "loc_spd").Result()
	if err != nil {
		return nil, fmt.Errorf("rider: location %s: %w", id, err)
	}
	names := []string{"locseq", "loc_drv", "loc_ts", "loc_lat", "loc_lng", "loc_hdg", "loc_spd"}
	h := map[string]string{}
	for i, v := range m {
		if sv, ok := v.(string); ok {
			h[names[i]] = sv
		}
	}
	return decodeLocation(h), nil
}

// Crumb is one breadcrumb of a trip's path.
type Crumb struct {
	Lat float64   `json:"lat"`
	Lng float64   `json:"lng"`
	TS  time.Time `json:"ts"`
}

// Path returns the trip's breadcrumbs, oldest first: fixes sampled every
// Config.CrumbEvery or Config.CrumbMeters, at most Config.MaxCrumbs kept. If
// limit > 0 and there are more, they are thinned evenly to limit points
// (first and last kept).
func (s *Service) Path(ctx context.Context, id string, a Actor, limit int) ([]Crumb, error) {
	if _, err := s.Authorize(ctx, id, a); err != nil {
		return nil, err
	}
	raw, err := s.rdb.LRange(ctx, pathKey(s.cfg.Prefix, id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("rider: path %s: %w", id, err)
	}
	out := make([]Crumb, 0, len(raw))
	for _, r := range raw {
		p := strings.Split(r, ",")
		if len(p) != 3 {
			continue
		}
		lat, err1 := strconv.ParseFloat(p[0], 64)
		lng, err2 := strconv.ParseFloat(p[1], 64)
		ms, err3 := strconv.ParseInt(p[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out = append(out, Crumb{Lat: lat, Lng: lng, TS: time.UnixMilli(ms).UTC()})
	}
	return thin(out, limit), nil
}

// thin keeps limit evenly spaced points, the first and last among them.
func thin(c []Crumb, limit int) []Crumb {
	if limit <= 0 || len(c) <= limit {
		return c
	}
	if limit == 1 {
		return c[len(c)-1:]
	}
	out := make([]Crumb, 0, limit)
	step := float64(len(c)-1) / float64(limit-1)
	for i := range limit {
		out = append(out, c[int(math.Round(float64(i)*step))])
	}
	return out
}

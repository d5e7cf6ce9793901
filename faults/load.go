package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/feed"
)

// LoadConfig sizes the load. Zero values are the documented defaults.
type LoadConfig struct {
	// Base is the public URL (nginx). Required.
	Base string
	// Pairs is the number of rider+driver pairs (each pair: one rider on
	// SSE watching its trip, one driver on WebSocket). Zero: 20.
	Pairs int
	// Every is each rider's pace: one chat message per Every, and a
	// dropoff change every fifth time (a durable trip event plus a command
	// to the driver). Zero: 500ms.
	Every time.Duration
	// ID makes rider and driver IDs unique per run. Required.
	ID string
}

// Load is riders and drivers using the public API through nginx. Riders
// create a trip, watch it over SSE (client.Stream: reconnects and
// resumes by Last-Event-ID) and post chat messages; drivers connect over
// WebSocket (client.DriverWS: resumes commands by ID), ping once a
// second near their rider's pickup, accept the offer for it and ack every
// command. Every durable delivery goes to the Checker.
type Load struct {
	cfg   LoadConfig
	Check *Checker
	pub   *client.Client // unauthenticated, for dev tokens

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	post   atomic.Bool  // riders post while set
	busy   atomic.Int64 // posts in flight (retrying included)

	mu      sync.Mutex
	riders  []*riderState
	drivers []*driverState
	mark    time.Time

	errMu  sync.Mutex
	errors map[int]int // failed requests by status (0: transport error)
}

type riderState struct {
	id, trip, topic string
	c               *client.Client
	stream          *client.Stream
	recovered       atomic.Int64 // unix nanos of the first event published after the mark (0: not yet)
	mark            atomic.Int64
	assigned        atomic.Bool
}

type driverState struct {
	id, topic string
	ws        *client.DriverWS
	seq       atomic.Int64
	markSeq   atomic.Int64 // first ping seq queued after the mark
	recovered atomic.Int64
}

// StartLoad connects every client and returns once every rider has its
// trip and stream and every driver has accepted its rider's trip.
func StartLoad(ctx context.Context, cfg LoadConfig) (*Load, error) {
	if cfg.Pairs <= 0 {
		cfg.Pairs = 20
	}
	if cfg.Every <= 0 {
		cfg.Every = 500 * time.Millisecond
	}
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4 * cfg.Pairs}}
	bg, cancel := context.WithCancel(context.Background())
	l := &Load{cfg: cfg, Check: NewChecker(), pub: client.New(cfg.Base, "", hc), ctx: bg, cancel: cancel, errors: map[int]int{}}
	// Pickups 10 km apart in latitude: each trip's nearest driver is its
	// pair's, well inside the dispatcher's first search radii.
	for i := range cfg.Pairs {
		lat, lng := 41.0+0.09*float64(i), -8.6
		d := &driverState{id: fmt.Sprintf("d_%s_%d", cfg.ID, i)}
		d.topic = "driver:" + d.id
		r := &riderState{id: fmt.Sprintf("r_%s_%d", cfg.ID, i)}
		l.drivers = append(l.drivers, d)
		l.riders = append(l.riders, r)
		if err := l.startDriver(ctx, d, lat, lng); err != nil {
			l.Close()
			return nil, err
		}
		if err := l.startRider(ctx, r, lat, lng); err != nil {
			l.Close()
			return nil, err
		}
	}
	// Every trip assigned (its driver accepted): the steady state.
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := 0
		for _, r := range l.riders {
			if r.assigned.Load() {
				n++
			}
		}
		if n == len(l.riders) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			l.Close()
			return nil, fmt.Errorf("only %d of %d trips were assigned", n, len(l.riders))
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.post.Store(true)
	return l, nil
}

// Clients is the number of connected clients (riders + drivers).
func (l *Load) Clients() int { return len(l.riders) + len(l.drivers) }

func (l *Load) failed(err error) {
	st := 0
	var ce *client.Error
	if errors.As(err, &ce) {
		st = ce.Status
	}
	l.errMu.Lock()
	l.errors[st]++
	l.errMu.Unlock()
}

// ErrorCounts are the failed requests so far by HTTP status (0: transport
// error), for scenarios that expect errors (Redis down).
func (l *Load) ErrorCounts() map[int]int {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	m := make(map[int]int, len(l.errors))
	for k, v := range l.errors {
		m[k] = v
	}
	return m
}

// retry calls f until it succeeds or ctx ends, pausing between attempts.
func (l *Load) retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		l.failed(err)
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 && ce.Status != http.StatusConflict && ce.Status != http.StatusTooManyRequests {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (l *Load) token(ctx context.Context, role, sub string) (string, error) {
	var tok string
	err := l.retry(ctx, func() error {
		var err error
		tok, err = l.pub.DevToken(ctx, role, sub, 2*time.Hour)
		return err
	})
	return tok, err
}

func (l *Load) startDriver(ctx context.Context, d *driverState, lat, lng float64) error {
	tok, err := l.token(ctx, "driver", d.id)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ws, err := client.DialDriver(dctx, client.DriverWSConfig{Bases: []string{l.cfg.Base}, DriverID: d.id, Token: tok,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		return fmt.Errorf("driver %s: %w", d.id, err)
	}
	d.ws = ws
	l.Check.Start(d.topic, "0-0") // a new driver: its whole command stream
	ping := func() {
		s := d.seq.Add(1)
		// A few metres of jitter around the pickup: a driver waiting.
		j := 0.00002 * float64(s%5)
		ws.Locations(client.Ping{Lat: lat + j, Lng: lng + j, TS: time.Now(), Seq: s})
	}
	ping()
	if err := ws.Flush(dctx); err != nil {
		return fmt.Errorf("driver %s first ping: %w", d.id, err)
	}
	c := client.New(l.cfg.Base, tok, l.pub.HTTPClient())
	if err := l.retry(dctx, func() error { _, err := c.SetStatus(dctx, d.id, "available"); return err }); err != nil {
		return fmt.Errorf("driver %s available: %w", d.id, err)
	}
	l.wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		check := time.NewTicker(50 * time.Millisecond)
		defer check.Stop()
		for {
			select {
			case <-l.ctx.Done():
				return
			case <-t.C:
				ping()
			case <-check.C:
				if ms := d.markSeq.Load(); ms > 0 && d.recovered.Load() == 0 && ws.LastAck().Seq >= ms {
					d.recovered.Store(time.Now().UnixNano())
				}
			}
		}
	})
	l.wg.Go(func() {
		for {
			var cmd client.Command
			select {
			case <-l.ctx.Done():
				return
			case cmd = <-ws.Commands():
			}
			if cmd.Type == "reset" {
				l.Check.Reset(d.topic, cmd.Position)
				continue
			}
			l.Check.Observe(d.topic, cmd.ID)
			if cmd.Type == "offer" {
				var o struct {
					TripID string `json:"trip_id"`
				}
				_ = json.Unmarshal(cmd.Data, &o)
				_ = l.retry(l.ctx, func() error {
					actx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
					defer cancel()
					_, err := ws.Act(actx, "accept", o.TripID, "")
					return err
				})
			}
			_ = l.retry(l.ctx, func() error {
				actx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
				defer cancel()
				return ws.Ack(actx, cmd.ID)
			})
		}
	})
	return nil
}

func (l *Load) startRider(ctx context.Context, r *riderState, lat, lng float64) error {
	tok, err := l.token(ctx, "rider", r.id)
	if err != nil {
		return err
	}
	r.c = client.New(l.cfg.Base, tok, l.pub.HTTPClient())
	var snap client.Snapshot
	err = l.retry(ctx, func() error {
		var err error
		snap, err = r.c.CreateTrip(ctx, client.CreateTripRequest{Kind: "ride", Payment: "cash",
			Pickup: client.Place{Lat: lat, Lng: lng}, Dropoff: client.Place{Lat: lat + 0.01, Lng: lng + 0.01}}, "create-"+r.id)
		return err
	})
	if err != nil {
		return fmt.Errorf("rider %s create: %w", r.id, err)
	}
	r.trip = snap.Trip.ID
	r.topic = "trip:" + r.trip
	r.stream = r.c.WatchTrip(l.ctx, r.trip, "")
	l.wg.Go(func() { l.readRider(r) })
	l.wg.Go(func() { l.postRider(r, lat, lng) })
	return nil
}

func (l *Load) readRider(r *riderState) {
	for f := range r.stream.C {
		switch f.Type {
		case "snapshot":
			l.Check.Start(r.topic, f.ID)
			if f.Snapshot != nil && f.Snapshot.Trip.DriverID != "" {
				r.assigned.Store(true)
			}
			continue
		case "reset":
			l.Check.Reset(r.topic, f.ID)
			continue
		}
		if f.ID == "" {
			continue // live-only (trip.location), heartbeat-like frames
		}
		l.Check.Observe(r.topic, f.ID)
		if f.Event.Type == "trip.assigned" {
			r.assigned.Store(true)
		}
		if m := r.mark.Load(); m > 0 && r.recovered.Load() == 0 && f.Event.TS.UnixNano() > m {
			r.recovered.Store(time.Now().UnixNano())
		}
	}
}

func (l *Load) postRider(r *riderState, lat, lng float64) {
	t := time.NewTicker(l.cfg.Every)
	defer t.Stop()
	for n := 0; ; {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		l.busy.Add(1)
		if !l.post.Load() {
			l.busy.Add(-1)
			continue
		}
		n++
		if n%5 == 0 {
			// A dropoff change: a durable trip event and a driver command.
			p := client.Place{Lat: lat + 0.01 + 0.0001*float64(n%50), Lng: lng + 0.01}
			_ = l.retry(l.ctx, func() error {
				s, err := r.c.ChangeDropoff(l.ctx, r.trip, p, 0)
				if err == nil && s.FeedPosition != "" {
					l.Check.Acked(r.topic, s.FeedPosition)
				}
				return err
			})
			l.busy.Add(-1)
			continue
		}
		cid := fmt.Sprintf("m%d", n)
		_ = l.retry(l.ctx, func() error {
			p, err := r.c.SendMessage(l.ctx, r.trip, cid, "hello "+cid)
			if err == nil {
				l.Check.Acked(r.topic, p.EventID)
			}
			return err
		})
		l.busy.Add(-1)
	}
}

// Mark starts a recovery measurement at now: every client counts as
// recovered once it gets something published after this moment (riders: a
// durable event; drivers: the ack of a ping sent after it).
func (l *Load) Mark() time.Time {
	now := time.Now()
	l.mu.Lock()
	l.mark = now
	l.mu.Unlock()
	for _, r := range l.riders {
		r.recovered.Store(0)
		r.mark.Store(now.UnixNano())
	}
	for _, d := range l.drivers {
		d.recovered.Store(0)
		d.markSeq.Store(d.seq.Load() + 1)
	}
	return now
}

// Recovered waits until every client recovered since the last Mark and
// returns the longest time from the mark; an error after timeout names
// how many did not.
func (l *Load) Recovered(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	l.mu.Lock()
	mark := l.mark
	l.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		var worst int64
		missing := 0
		for _, r := range l.riders {
			if v := r.recovered.Load(); v == 0 {
				missing++
			} else {
				worst = max(worst, v)
			}
		}
		for _, d := range l.drivers {
			if v := d.recovered.Load(); v == 0 {
				missing++
			} else {
				worst = max(worst, v)
			}
		}
		if missing == 0 {
			return time.Unix(0, worst).Sub(mark), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Since(mark), fmt.Errorf("%d of %d clients not recovered after %s", missing, l.Clients(), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Pause stops the riders' posting (the drivers keep pinging).
func (l *Load) Pause() { l.post.Store(false) }

// Resume lets the riders post again.
func (l *Load) Resume() { l.post.Store(true) }

// Verify stops posting, waits (up to settle) until every client has
// received the last event of its stream, and checks every topic against
// its stream in Redis.
func (l *Load) Verify(ctx context.Context, rdb redis.UniversalClient, settle time.Duration) (Result, error) {
	l.Pause()
	// Posts in flight (a retry loop runs until the server acknowledges)
	// land before the streams are read, so every ack can be checked.
	deadline := time.Now().Add(settle)
	for l.busy.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := l.busy.Load(); n > 0 {
		return Result{}, fmt.Errorf("%d posts still retrying after %s", n, settle)
	}
	type topicTruth struct {
		topic string
		ids   []string
	}
	read := func() ([]topicTruth, error) {
		var out []topicTruth
		for _, t := range l.Check.Topics() {
			msgs, err := rdb.XRange(ctx, feed.StreamKey(t), "-", "+").Result()
			if err != nil {
				return nil, fmt.Errorf("xrange %s: %w", t, err)
			}
			tt := topicTruth{topic: t}
			for _, m := range msgs {
				tt.ids = append(tt.ids, m.ID)
			}
			out = append(out, tt)
		}
		return out, nil
	}
	deadline = time.Now().Add(settle)
	var truth []topicTruth
	for {
		var err error
		if truth, err = read(); err != nil {
			return Result{}, err
		}
		behind := 0
		for _, tt := range truth {
			if len(tt.ids) == 0 {
				continue
			}
			last, _ := ParseID(tt.ids[len(tt.ids)-1])
			if l.Check.Last(tt.topic).Less(last) {
				behind++
			}
		}
		if behind == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var r Result
	for _, tt := range truth {
		l.Check.Verify(tt.topic, tt.ids, &r)
	}
	return r, nil
}

// Close stops every client.
func (l *Load) Close() {
	l.cancel()
	for _, d := range l.drivers {
		if d.ws != nil {
			_ = d.ws.Close()
		}
	}
	l.wg.Wait()
}

// Round formats d in seconds with one decimal.
func Round(d time.Duration) string {
	return fmt.Sprintf("%.1fs", math.Round(d.Seconds()*10)/10)
}

package faults

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
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
	Check *Checker
	run   *loadRun

	mu      sync.Mutex
	riders  []*riderState
	drivers []*driverState
	mark    time.Time
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
	run := &loadRun{cfg: cfg, check: NewChecker(), pub: client.New(cfg.Base, "", hc), ctx: bg, cancel: cancel, errors: map[int]int{}}
	l := &Load{Check: run.check, run: run}
	// Pickups 10 km apart in latitude: each trip's nearest driver is its
	// pair's, well inside the dispatcher's first search radii.
	for i := range cfg.Pairs {
		lat, lng := 41.0+0.09*float64(i), -8.6
		d := &driverState{id: fmt.Sprintf("d_%s_%d", cfg.ID, i)}
		d.topic = "driver:" + d.id
		r := &riderState{id: fmt.Sprintf("r_%s_%d", cfg.ID, i)}
		l.drivers = append(l.drivers, d)
		l.riders = append(l.riders, r)
		if err := d.start(ctx, run, lat, lng); err != nil {
			l.Close()
			return nil, err
		}
		if err := r.start(ctx, run, lat, lng); err != nil {
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
	run.post.Store(true)
	return l, nil
}

// Clients is the number of connected clients (riders + drivers).
func (l *Load) Clients() int { return len(l.riders) + len(l.drivers) }

// ErrorCounts are the failed requests so far by HTTP status (0: transport
// error), for scenarios that expect errors (Redis down).
func (l *Load) ErrorCounts() map[int]int { return l.run.errorCounts() }

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
func (l *Load) Pause() { l.run.post.Store(false) }

// Resume lets the riders post again.
func (l *Load) Resume() { l.run.post.Store(true) }

// Verify stops posting, waits (up to settle) until every client has
// received the last event of its stream, and checks every topic against
// its stream in Redis (under the nodes' key prefix).
func (l *Load) Verify(ctx context.Context, rdb redis.UniversalClient, prefix string, settle time.Duration) (Result, error) {
	l.Pause()
	// Posts in flight (a retry loop runs until the server acknowledges)
	// land before the streams are read, so every ack can be checked.
	deadline := time.Now().Add(settle)
	for l.run.busy.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := l.run.busy.Load(); n > 0 {
		return Result{}, fmt.Errorf("%d posts still retrying after %s", n, settle)
	}
	type topicTruth struct {
		topic string
		ids   []string
	}
	read := func() ([]topicTruth, error) {
		var out []topicTruth
		for _, t := range l.Check.Topics() {
			msgs, err := rdb.XRange(ctx, feed.StreamKey(prefix, t), "-", "+").Result()
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
	l.run.cancel()
	for _, d := range l.drivers {
		if d.ws != nil {
			_ = d.ws.Close()
		}
	}
	l.run.wg.Wait()
}

// Round formats d in seconds with one decimal.
func Round(d time.Duration) string {
	return fmt.Sprintf("%.1fs", math.Round(d.Seconds()*10)/10)
}

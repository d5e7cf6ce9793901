package tripredis_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// pipeCounter records the size of every pipeline a client sends.
type pipeCounter struct {
	mu    sync.Mutex
	sizes []int
}

func (c *pipeCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (c *pipeCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c *pipeCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.mu.Lock()
		c.sizes = append(c.sizes, len(cmds))
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (c *pipeCounter) reset() {
	c.mu.Lock()
	c.sizes = nil
	c.mu.Unlock()
}

func (c *pipeCounter) max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := 0
	for _, n := range c.sizes {
		m = max(m, n)
	}
	return m
}

// TestLocationBatch: moves of many trips that wait for a worker go to Redis
// in one pipeline, and each trip's outcome is its own: the newest fix is
// stored and published (with its own data), a stranger's fix on another
// trip of the batch is not.
func TestLocationBatch(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{Workers: 1})
	pipes := &pipeCounter{}
	e.RDB.AddHook(pipes)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type tripDrv struct {
		id, drv string
		sub     *feedredis.Subscription
	}
	var trips []tripDrv
	for range 12 {
		tr, _, drv := e.TripIn(t, trip.StatusAssigned)
		sub, err := e.Feed.Subscribe(ctx, trip.Topic(tr.ID), "")
		if err != nil {
			t.Fatal(err)
		}
		trips = append(trips, tripDrv{tr.ID, drv, sub})
	}
	ts := time.Now().Add(-time.Minute)
	pos := func(i int) geo.Point { return geo.Point{Lat: 52.5 + float64(i)*0.001, Lng: 13.4} }
	// Queued before any worker runs: the newest move of each trip wins,
	// whatever the order it came in.
	for i, tr := range trips {
		e.Trips.Tracker().DriverMoved(ctx, driver.Move{DriverID: tr.drv, TripID: tr.id, Pos: pos(i), TS: ts.Add(2 * time.Second)})
		e.Trips.Tracker().DriverMoved(ctx, driver.Move{DriverID: tr.drv, TripID: tr.id, Pos: geo.Point{Lat: 1, Lng: 1}, TS: ts.Add(time.Second)})
	}
	other, _, _ := e.TripIn(t, trip.StatusAssigned)
	e.Trips.Tracker().DriverMoved(ctx, driver.Move{DriverID: e.Driver(t), TripID: other.ID, Pos: geo.Point{Lat: 2, Lng: 2}, TS: ts})
	pipes.reset() // count the workers' pipelines only
	go func() { _ = e.Trips.Tracker().Run(ctx) }()
	for i, tr := range trips {
		deadline := time.After(3 * time.Second)
	wait:
		for {
			select {
			case it := <-tr.sub.C():
				if it.Event.Type != trip.EventLocation {
					continue
				}
				var l trip.Location
				if err := jsonUnmarshal(it.Event.Data, &l); err != nil {
					t.Fatal(err)
				}
				if l.DriverID != tr.drv || math.Abs(l.Lat-pos(i).Lat) > 1e-6 || !l.TS.Equal(ts.Add(2*time.Second).Truncate(time.Millisecond)) {
					t.Fatalf("trip %d: published %+v, want driver %s at %v", i, l, tr.drv, pos(i))
				}
				break wait
			case <-deadline:
				t.Fatalf("trip %d: no location published", i)
			}
		}
		l, err := e.Trips.Store().LocationOf(ctx, tr.id)
		if err != nil || l == nil || l.DriverID != tr.drv || math.Abs(l.Lat-pos(i).Lat) > 1e-6 {
			t.Fatalf("trip %d: stored %+v (%v)", i, l, err)
		}
	}
	if l, err := e.Trips.Store().LocationOf(ctx, other.ID); err != nil || l != nil {
		t.Fatalf("a stranger's fix was stored: %+v (%v)", l, err)
	}
	if n := pipes.max(); n < 2 {
		t.Fatalf("largest pipeline %d commands: the queued moves went one by one", n)
	}
}

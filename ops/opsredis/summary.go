package opsredis

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/ops"
	"github.com/hextrack/hextrack/trip"
)

// SummaryEvery is how long one summary is shared by every caller on a
// node, whatever the number of dashboards.
const SummaryEvery = time.Second

// recentTrips is the number of trips a summary carries.
const recentTrips = 20

// summaryCache is the summary shared for SummaryEvery.
type summaryCache struct {
	mu  sync.Mutex
	sum *ops.Summary
	at  time.Time
}

// Summary returns the current summary, computed at most once per
// SummaryEvery on this node. Callers must not modify it.
func (o *View) Summary(ctx context.Context) (*ops.Summary, error) {
	o.sum.mu.Lock()
	defer o.sum.mu.Unlock()
	now := time.Now()
	if o.sum.sum != nil && now.Sub(o.sum.at) < SummaryEvery {
		return o.sum.sum, nil
	}
	sum := &ops.Summary{TS: now.UTC(), Connections: map[string]int64{"sse": 0, "ws": 0}}
	var err error
	if sum.Drivers, err = o.DriverCounts(ctx); err != nil {
		return nil, err
	}
	if sum.Trips, err = o.TripCounts(ctx); err != nil {
		return nil, err
	}
	for st, n := range sum.Trips {
		if !trip.Terminal(st) {
			sum.OpenTrips += n
		}
	}
	if sum.RecentTrips, err = o.Trips(ctx, "", recentTrips); err != nil {
		return nil, err
	}
	if err := o.addNodes(ctx, sum, now); err != nil {
		return nil, err
	}
	o.sum.sum, o.sum.at = sum, now
	return sum, nil
}

// addNodes adds up the node reports fresher than NodeStale into sum, and
// drops those of nodes that left without draining.
func (o *View) addNodes(ctx context.Context, sum *ops.Summary, now time.Time) error {
	key := nodesKey(o.cfg.Prefix)
	reports, err := o.rdb.HGetAll(ctx, key).Result()
	if err != nil && err != redis.Nil {
		return err
	}
	var lagSum, lagCount float64
	for node, raw := range reports {
		var r nodeReport
		if json.Unmarshal([]byte(raw), &r) != nil || now.Sub(time.UnixMilli(r.TS)) > NodeStale {
			if now.Sub(time.UnixMilli(r.TS)) > 10*NodeStale {
				o.rdb.HDel(ctx, key, node) // a node that left without draining
			}
			continue
		}
		sum.Nodes++
		for t, n := range r.Connections {
			sum.Connections[t] += n
		}
		sum.IngestRate += r.IngestRate
		lagSum += r.LagSum
		lagCount += r.LagCount
	}
	sum.IngestRate = round1(sum.IngestRate)
	if lagCount > 0 {
		sum.DeliveryLatencyMS = round1(lagSum / lagCount * 1000)
	}
	return nil
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

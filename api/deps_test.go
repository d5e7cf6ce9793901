package api_test

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/ratelimit"
	"github.com/hextrack/hextrack/trip"
)

// pinger is the api's health check over the test Redis (cmd/hextrack has
// the same adapter).
type pinger struct{ rdb redis.UniversalClient }

func (p pinger) Ping(ctx context.Context) error { return p.rdb.Ping(ctx).Err() }

// newDeps wires real services into api.Deps as cmd/hextrack does; drivers,
// trips and b may be nil (their routes answer 503).
func newDeps(rdb redis.UniversalClient, prefix string, drivers *driverredis.Service, trips *trip.Service, b *feed.Broker) api.Deps {
	d := api.Deps{Health: pinger{rdb}, Limiter: ratelimit.New(rdb, prefix)}
	if drivers != nil {
		d.Pings, d.Drivers = drivers, drivers
	}
	if trips != nil {
		d.Trips, d.TripViews, d.Snapshots, d.Shares, d.Chat = trips, trips.Store(), trips.Store(), trips.Shares(), trips.Chat()
	}
	if b != nil {
		d.Feed = b
	}
	return d
}

// depsWith is d changed by set.
func depsWith(d api.Deps, set func(*api.Deps)) api.Deps {
	set(&d)
	return d
}

package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/ops"
	"github.com/hextrack/hextrack/payment"
	"github.com/hextrack/hextrack/ratelimit"
	"github.com/hextrack/hextrack/trip"
)

// The domain services implement the interfaces api declares.
var (
	_ api.Pinger       = redisPinger{}
	_ api.Limiter      = (*ratelimit.Bucket)(nil)
	_ api.Pings        = (*driverredis.Service)(nil)
	_ api.Drivers      = (*driverredis.Service)(nil)
	_ api.Trips        = (*trip.Service)(nil)
	_ api.TripViews    = (*trip.Store)(nil)
	_ api.Snapshots    = (*trip.Store)(nil)
	_ api.Shares       = (*trip.Shares)(nil)
	_ api.Chat         = (*trip.Chat)(nil)
	_ api.Feed         = (*feed.Broker)(nil)
	_ api.Commands     = (*dispatch.Commands)(nil)
	_ api.CommandPolls = (*dispatch.Commands)(nil)
	_ api.Sessions     = (*dispatch.Commands)(nil)
	_ api.Payments     = (*payment.Service)(nil)
	_ api.Webhooks     = (*payment.Service)(nil)
	_ api.Ops          = (*ops.View)(nil)
)

// redisPinger is the api's health check: Redis answers PING.
type redisPinger struct{ rdb redis.UniversalClient }

func (p redisPinger) Ping(ctx context.Context) error { return p.rdb.Ping(ctx).Err() }

// apiDeps hands the node's services to the api.
func (m *Main) apiDeps(prefix string, reg *prometheus.Registry) api.Deps {
	return api.Deps{
		Health:  redisPinger{m.rdb},
		Limiter: ratelimit.New(m.rdb, prefix),
		Pings:   m.Drivers, Drivers: m.Drivers,
		Trips: m.Trips, TripViews: m.Trips.Store(), Snapshots: m.Trips.Store(),
		Shares: m.Trips.Shares(), Chat: m.Trips.Chat(), Feed: m.Feed,
		Commands: m.Commands, CommandPolls: m.Commands, Sessions: m.Commands,
		Payments: m.Payments, Webhooks: m.Payments,
		Ops:      m.Ops,
		Registry: reg, Logger: m.Logger, Roads: m.ETA.graph, MapSource: m.ETA.source,
	}
}

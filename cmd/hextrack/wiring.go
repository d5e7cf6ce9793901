package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/driverws"
	"github.com/hextrack/hextrack/api/sse"
	"github.com/hextrack/hextrack/api/stops"
	"github.com/hextrack/hextrack/api/suspensions"
	"github.com/hextrack/hextrack/api/zones"
	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/dispatch/dispatchredis"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/eta/live"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/ops/opsredis"
	"github.com/hextrack/hextrack/payment"
	"github.com/hextrack/hextrack/payment/paymentredis"
	"github.com/hextrack/hextrack/ratelimit"
	"github.com/hextrack/hextrack/trip/tripredis"
	"github.com/hextrack/hextrack/zone/zoneredis"
)

// The domain services implement the interfaces api (and eta/live)
// declare.
var (
	_ api.Pinger       = redisPinger{}
	_ api.Limiter      = (*ratelimit.Bucket)(nil)
	_ api.Pings        = (*driverredis.Service)(nil)
	_ api.Drivers      = (*driverredis.Service)(nil)
	_ api.Trips        = (*tripredis.Service)(nil)
	_ api.TripViews    = (*tripredis.Store)(nil)
	_ api.Snapshots    = (*tripredis.Store)(nil)
	_ api.Shares       = (*tripredis.Shares)(nil)
	_ api.Chat         = (*tripredis.Chat)(nil)
	_ api.Feed         = feedStreams{}
	_ api.Commands     = commandStreams{}
	_ api.CommandPolls = (*dispatchredis.Commands)(nil)
	_ api.Sessions     = (*dispatchredis.Commands)(nil)
	_ api.Payments     = (*paymentredis.Service)(nil)
	_ api.Webhooks     = (*paymentredis.Webhooks)(nil)
	_ api.Ops          = (*opsredis.View)(nil)

	_ suspensions.Drivers = driverSuspensions{}
	_ zones.Service       = (*zoneredis.Store)(nil)
	_ zones.Feed          = (*feedredis.Broker)(nil)

	_ live.TripETAs = (*tripredis.ETAs)(nil)

	_ dispatch.Trips  = (*tripredis.Service)(nil)
	_ dispatch.Finder = (*driverredis.Service)(nil)
	_ payment.Trips   = (*tripredis.Service)(nil)
	_ opsredis.Trips  = (*tripredis.Store)(nil)
)

// redisPinger is the api's health check: Redis answers PING.
type redisPinger struct{ rdb redis.UniversalClient }

func (p redisPinger) Ping(ctx context.Context) error { return p.rdb.Ping(ctx).Err() }

// feedStreams is the node's broker as api's Feed: its Subscribe returns
// the sse.Subscription api declares instead of the concrete one.
type feedStreams struct{ *feedredis.Broker }

func (f feedStreams) Subscribe(ctx context.Context, topic, lastID string) (sse.Subscription, error) {
	s, err := f.Broker.Subscribe(ctx, topic, lastID)
	if err != nil {
		return nil, err // a nil interface, not a nil *Subscription in one
	}
	return s, nil
}

// commandStreams is the driver command channel as api's Commands: its
// Subscribe returns the driverws.Subscription api declares.
type commandStreams struct{ *dispatchredis.Commands }

func (c commandStreams) Subscribe(ctx context.Context, driverID, after string) (driverws.Subscription, error) {
	s, err := c.Commands.Subscribe(ctx, driverID, after)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// driverSuspensions are ops' suspensions (driverredis) that also close
// the suspended driver's open WebSocket on whichever node holds it (the
// command channel's live notice; a lost notice is caught by the
// connection's check every ping period).
type driverSuspensions struct {
	*driverredis.Service
	cmds *dispatchredis.Commands
	log  *slog.Logger
}

func (s driverSuspensions) Suspend(ctx context.Context, driverID, by, reason string) (driver.State, error) {
	st, err := s.Service.Suspend(ctx, driverID, by, reason)
	if err != nil {
		return st, err
	}
	if err := s.cmds.Suspended(ctx, driverID); err != nil {
		s.log.Warn("suspend: notice to the driver's connections", "driver", driverID, "err", err)
	}
	return st, nil
}

// suspensionRoutes are ops' suspension routes over the node's drivers.
func suspensionRoutes(m *Main) api.Routes {
	return suspensions.New(driverSuspensions{Service: m.Drivers, cmds: m.Commands, log: m.Logger}, m.Logger)
}

// apiDeps hands the node's services to the api.
func (m *Main) apiDeps(prefix string, reg *prometheus.Registry) api.Deps {
	var optional map[string]api.Pinger
	if m.archive != nil {
		// The archive is optional: /readyz reports it, nothing else asks.
		optional = map[string]api.Pinger{"archive": m.archive}
	}
	views, snaps, feeds := api.TripViews(m.Trips.Store()), api.Snapshots(m.Trips.Store()), api.Feed(feedStreams{m.Feed})
	if m.archive != nil {
		// Trips whose Redis keys are gone are read from the archive (history.go).
		at := newArchivedTrips(m.Trips.Store(), m.Trips.Shares(), archiveReads{m.archive}, m.Trips.Config())
		views, snaps, feeds = at, at, archivedFeed{Feed: feeds, trips: at}
	}
	keys, keyRoutes := apiKeys(m.archive, m.Logger)
	m.zoneRoutes = zones.New(m.Zones, m.Feed)
	return api.Deps{
		Health:   redisPinger{m.rdb},
		Optional: optional,
		Limiter:  ratelimit.New(m.rdb, prefix),
		Pings:    m.Drivers, Drivers: zonedDrivers{Drivers: m.Drivers, zones: m.ZoneTracker},
		Trips: servedTrips{Trips: m.Trips, zones: m.Zones}, TripViews: views, Snapshots: snaps,
		Shares: m.Trips.Shares(), Chat: m.Trips.Chat(), Feed: feeds,
		Commands: commandStreams{m.Commands}, CommandPolls: m.Commands, Sessions: m.Commands,
		Payments: m.Payments, Webhooks: m.Webhooks,
		Ops:  m.Ops,
		Keys: keys,
		Routes: []api.Routes{historyRoutes(m.archive), keyRoutes, m.hooks.routes(), suspensionRoutes(m), m.zoneRoutes, proofRoutes(m, views),
			stops.New(servedStops{Service: m.Trips.Stops(), zones: m.Zones})},
		Registry: reg, Logger: m.Logger, Roads: m.ETA.graph, MapSource: m.ETA.source,
	}
}

package api_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/api"
	"github.com/hextrack/hextrack/api/apikeys"
	"github.com/hextrack/hextrack/api/driverws"
	"github.com/hextrack/hextrack/api/history"
	podapi "github.com/hextrack/hextrack/api/pod"
	"github.com/hextrack/hextrack/api/sse"
	"github.com/hextrack/hextrack/api/stops"
	"github.com/hextrack/hextrack/api/suspensions"
	"github.com/hextrack/hextrack/api/webhooks"
	"github.com/hextrack/hextrack/api/zones"
	"github.com/hextrack/hextrack/blob"
	"github.com/hextrack/hextrack/dispatch/dispatchredis"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/pod"
	"github.com/hextrack/hextrack/pod/podredis"
	"github.com/hextrack/hextrack/ratelimit"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// pinger is the api's health check over the test Redis (cmd/hextrack has
// the same adapter).
type pinger struct{ rdb redis.UniversalClient }

func (p pinger) Ping(ctx context.Context) error { return p.rdb.Ping(ctx).Err() }

// newDeps wires real services into api.Deps as cmd/hextrack does; drivers,
// trips and b may be nil (their routes answer 503).
func newDeps(rdb redis.UniversalClient, prefix string, drivers *driverredis.Service, trips *tripredis.Service, b *feedredis.Broker) api.Deps {
	d := api.Deps{Health: pinger{rdb}, Limiter: ratelimit.New(rdb, prefix),
		Routes: []api.Routes{history.New(history.Deps{}), apikeys.New(nil, nil), webhooks.New(nil), zones.New(nil, nil), podapi.New(nil, nil, nil, pod.Config{}), stops.New(nil)}} // no archive: 503, routes listed
	if drivers != nil {
		d.Pings, d.Drivers = drivers, drivers
		d.Routes = append(d.Routes, suspensions.New(drivers, nil))
	} else {
		d.Routes = append(d.Routes, suspensions.New(nil, nil))
	}
	if trips != nil {
		d.Trips, d.TripViews, d.Snapshots, d.Shares, d.Chat = trips, trips.Store(), trips.Store(), trips.Shares(), trips.Chat()
		for i, r := range d.Routes {
			if _, ok := r.(*stops.Routes); ok {
				d.Routes[i] = stops.New(trips.Stops())
			}
		}
	}
	if b != nil {
		d.Feed = feedStreams{b}
	}
	return d
}

// feedStreams is b as api.Feed, commandStreams the command channel as
// api.Commands: their Subscribe returns the subscription api/sse or
// api/driverws declares (cmd/hextrack has the same adapters).
type feedStreams struct{ *feedredis.Broker }

func (f feedStreams) Subscribe(ctx context.Context, topic, lastID string) (sse.Subscription, error) {
	s, err := f.Broker.Subscribe(ctx, topic, lastID)
	if err != nil {
		return nil, err
	}
	return s, nil
}

type commandStreams struct{ *dispatchredis.Commands }

func (c commandStreams) Subscribe(ctx context.Context, driverID, after string) (driverws.Subscription, error) {
	s, err := c.Commands.Subscribe(ctx, driverID, after)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// depsWith is d changed by set.
func depsWith(d api.Deps, set func(*api.Deps)) api.Deps {
	set(&d)
	return d
}

// auditStops is the stop lifecycle's DropStop over real trips until the
// trip service has stops: the one drop stop is "dropoff", the trip's
// driver may prove it.
type auditStops struct{ trips *tripredis.Store }

func (a auditStops) DropStop(ctx context.Context, tripID, stopID, driverID string) error {
	t, err := a.trips.Get(ctx, tripID)
	switch {
	case err != nil:
		return err
	case stopID != "dropoff":
		return fmt.Errorf("%w: no drop stop %s", trip.ErrNotFound, stopID)
	case t.DriverID != driverID:
		return fmt.Errorf("%w: not the trip's driver", trip.ErrForbidden)
	}
	return nil
}

// mustProofRoutes are the proof routes over a real service: files in a
// test directory, records in Redis under prefix.
func mustProofRoutes(tb testing.TB, rdb redis.UniversalClient, prefix string, b *feedredis.Broker, trips *tripredis.Store) *podapi.Routes {
	tb.Helper()
	disk, err := blob.OpenDisk(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	svc := pod.NewService(disk, podredis.New(rdb, podredis.Config{Prefix: prefix}), b.Publisher, pod.Config{}, nil)
	return podapi.New(svc, auditStops{trips}, trips, svc.Config())
}

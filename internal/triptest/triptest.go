// Package triptest builds the trip service and what it stands on (feed,
// drivers, position index) over the real test Redis, with helpers that put
// a trip in any status. The tests of trip, dispatch, payment, ops and eta
// share it.
package triptest

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// Env is one test's services, with their own key prefix.
type Env struct {
	RDB     *redis.Client
	Feed    *feedredis.Broker
	Drivers *driverredis.Service
	Trips   *tripredis.Service
	Prefix  string
	n       atomic.Int64
}

// MustEnv returns services over the real test Redis with their own prefix.
// Feed streams age out after 10 minutes.
func MustEnv(tb testing.TB, cfg tripredis.Config) *Env {
	tb.Helper()
	rdb, prefix := redistest.MustOpen(tb)
	b := feedredis.New(rdb, feedredis.Config{MaxAge: 10 * time.Minute, Prefix: prefix})
	tb.Cleanup(func() { _ = b.Close() })
	idx := georedis.NewIndex(rdb, georedis.IndexConfig{Prefix: prefix})
	d := driverredis.NewService(rdb, idx, driver.Config{Prefix: prefix})
	cfg.Prefix = prefix
	return &Env{RDB: rdb, Feed: b, Drivers: d, Trips: tripredis.NewService(rdb, b, d, cfg), Prefix: prefix}
}

// ID returns a fresh ID starting with p.
func (e *Env) ID(p string) string {
	return fmt.Sprintf("%s%d_%d", p, time.Now().UnixNano()%1e9, e.n.Add(1))
}

// Driver returns a fresh available driver.
func (e *Env) Driver(tb testing.TB) string {
	tb.Helper()
	id := e.ID("d")
	if _, err := e.Drivers.SetStatus(context.Background(), id, driver.StatusAvailable); err != nil {
		tb.Fatal(err)
	}
	return id
}

// Ride is a cash ride in Berlin.
var Ride = trip.CreateRequest{Kind: trip.KindRide, Pickup: trip.Place{Lat: 52.52, Lng: 13.405, Address: "Alexanderplatz"},
	Dropoff: trip.Place{Lat: 52.50, Lng: 13.38}, Payment: trip.PaymentCash}

// Create creates r for a fresh rider.
func (e *Env) Create(tb testing.TB, r trip.CreateRequest) (trip.Snapshot, trip.Actor) {
	tb.Helper()
	a := trip.Actor{Role: trip.RoleRider, ID: e.ID("r")}
	snap, created, err := e.Trips.Create(context.Background(), a, "", r)
	if err != nil || !created {
		tb.Fatalf("create: %v (created %v)", err, created)
	}
	return snap, a
}

// TripIn makes a trip in status st; it returns the trip, its rider and its
// driver ("" if none).
func (e *Env) TripIn(tb testing.TB, st string) (trip.Trip, trip.Actor, string) {
	tb.Helper()
	ctx := context.Background()
	r := Ride
	if st == trip.StatusAwaitingPayment {
		r.Kind, r.Payment = trip.KindDelivery, trip.PaymentOnline
	}
	snap, ra := e.Create(tb, r)
	id := snap.Trip.ID
	drv := ""
	must := func(_ trip.Snapshot, err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("setup %s: %v", st, err)
		}
	}
	switch st {
	case trip.StatusAssigned, trip.StatusArrived, trip.StatusInProgress, trip.StatusCompleted:
		drv = e.Driver(tb)
		if err := e.Trips.Assign(ctx, id, drv); err != nil {
			tb.Fatal(err)
		}
		da := trip.Actor{Role: trip.RoleDriver, ID: drv}
		if st != trip.StatusAssigned {
			must(e.Trips.Act(ctx, id, da, trip.ActArrived, ""))
		}
		if st == trip.StatusInProgress || st == trip.StatusCompleted {
			must(e.Trips.Act(ctx, id, da, trip.ActPickup, ""))
		}
		if st == trip.StatusCompleted {
			must(e.Trips.Act(ctx, id, da, trip.ActComplete, ""))
		}
	case trip.StatusCancelled:
		must(e.Trips.Cancel(ctx, id, ra, "test"))
	case trip.StatusExpired:
		must(e.Trips.Expire(ctx, id))
	}
	t, err := e.Trips.Get(ctx, id)
	if err != nil || t.Status != st {
		tb.Fatalf("setup: want %s, got %s (%v)", st, t.Status, err)
	}
	return t, ra, drv
}

// StreamLen is the length of the trip's feed stream.
func (e *Env) StreamLen(tb testing.TB, id string) int64 {
	tb.Helper()
	n, err := e.RDB.XLen(context.Background(), feed.StreamKey(e.Prefix, trip.Topic(id))).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// LastEvent is the trip's last durable event.
func (e *Env) LastEvent(tb testing.TB, id string) feed.Event {
	tb.Helper()
	evs, _, err := e.Feed.Read(context.Background(), trip.Topic(id), "", 10000)
	if err != nil || len(evs) == 0 {
		tb.Fatalf("read: %v (%d events)", err, len(evs))
	}
	return evs[len(evs)-1]
}

// PlaceDriver makes a fresh available driver at p (one ping, now).
func (e *Env) PlaceDriver(tb testing.TB, p geo.Point) string {
	tb.Helper()
	return e.PlaceDriverAt(tb, p, time.Now())
}

// PlaceDriverAt makes a fresh available driver at p (one ping at ts).
func (e *Env) PlaceDriverAt(tb testing.TB, p geo.Point, ts time.Time) string {
	tb.Helper()
	id := e.ID("d")
	nan := math.NaN()
	ping := driver.DecodedPing{Ping: driver.Ping{Pos: p, TS: ts, Seq: 1, Accuracy: nan, Speed: nan, Heading: nan}}
	if _, err := e.Drivers.Ingest(context.Background(), id, []driver.DecodedPing{ping}); err != nil {
		tb.Fatal(err)
	}
	return id
}

package rider_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/rider"
)

type env struct {
	rdb     *redis.Client
	feed    *feed.Broker
	drivers *driver.Service
	trips   *rider.Service
	n       atomic.Int64
}

// mustEnv returns services over the real test Redis with their own prefix.
// Feed streams (unprefixed) age out after 10 minutes.
func mustEnv(tb testing.TB, cfg rider.Config) *env {
	tb.Helper()
	rdb, prefix := redistest.MustOpen(tb)
	b := feed.New(rdb, feed.Config{MaxAge: 10 * time.Minute})
	tb.Cleanup(func() { _ = b.Close() })
	idx := geo.NewIndex(rdb, geo.IndexConfig{Prefix: prefix})
	d := driver.NewService(rdb, idx, driver.Config{Prefix: prefix})
	cfg.Prefix = prefix
	return &env{rdb: rdb, feed: b, drivers: d, trips: rider.NewService(rdb, b, d, cfg)}
}

func (e *env) id(p string) string {
	return fmt.Sprintf("%s%d_%d", p, time.Now().UnixNano()%1e9, e.n.Add(1))
}

func (e *env) driver(tb testing.TB) string {
	tb.Helper()
	id := e.id("d")
	if _, err := e.drivers.SetStatus(context.Background(), id, driver.StatusAvailable); err != nil {
		tb.Fatal(err)
	}
	return id
}

var ride = rider.CreateRequest{Kind: rider.KindRide, Pickup: rider.Place{Lat: 52.52, Lng: 13.405, Address: "Alexanderplatz"},
	Dropoff: rider.Place{Lat: 52.50, Lng: 13.38}, Payment: rider.PaymentCash}

func (e *env) create(tb testing.TB, r rider.CreateRequest) (rider.Snapshot, rider.Actor) {
	tb.Helper()
	a := rider.Actor{Role: rider.RoleRider, ID: e.id("r")}
	snap, created, err := e.trips.Create(context.Background(), a, "", r)
	if err != nil || !created {
		tb.Fatalf("create: %v (created %v)", err, created)
	}
	return snap, a
}

// tripIn makes a trip in status st; it returns the trip, its rider and its
// driver ("" if none).
func (e *env) tripIn(tb testing.TB, st string) (rider.Trip, rider.Actor, string) {
	tb.Helper()
	ctx := context.Background()
	r := ride
	if st == rider.StatusAwaitingPayment {
		r.Kind, r.Payment = rider.KindDelivery, rider.PaymentOnline
	}
	snap, ra := e.create(tb, r)
	id := snap.Trip.ID
	drv := ""
	must := func(_ rider.Snapshot, err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("setup %s: %v", st, err)
		}
	}
	switch st {
	case rider.StatusAssigned, rider.StatusArrived, rider.StatusInProgress, rider.StatusCompleted:
		drv = e.driver(tb)
		if err := e.trips.Assign(ctx, id, drv); err != nil {
			tb.Fatal(err)
		}
		da := rider.Actor{Role: rider.RoleDriver, ID: drv}
		if st != rider.StatusAssigned {
			must(e.trips.Act(ctx, id, da, rider.ActArrived, ""))
		}
		if st == rider.StatusInProgress || st == rider.StatusCompleted {
			must(e.trips.Act(ctx, id, da, rider.ActPickup, ""))
		}
		if st == rider.StatusCompleted {
			must(e.trips.Act(ctx, id, da, rider.ActComplete, ""))
		}
	case rider.StatusCancelled:
		must(e.trips.Cancel(ctx, id, ra, "test"))
	case rider.StatusExpired:
		must(e.trips.Expire(ctx, id))
	}
	t, err := e.trips.Get(ctx, id)
	if err != nil || t.Status != st {
		tb.Fatalf("setup: want %s, got %s (%v)", st, t.Status, err)
	}
	return t, ra, drv
}

func (e *env) streamLen(tb testing.TB, id string) int64 {
	tb.Helper()
	n, err := e.rdb.XLen(context.Background(), feed.StreamKey(rider.Topic(id))).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func (e *env) lastEvent(tb testing.TB, id string) feed.Event {
	tb.Helper()
	evs, _, err := e.feed.Read(context.Background(), rider.Topic(id), "", 10000)
	if err != nil || len(evs) == 0 {
		tb.Fatalf("read: %v (%d events)", err, len(evs))
	}
	return evs[len(evs)-1]
}

// TestLifecycleTable tries every action by every role in every status and
// checks the outcome against Rules: allowed → new status, version+1 and
// exactly one event of the right type; the role may act but not in this
// status → 409 with the current status; otherwise 403.
func TestLifecycleTable(t *testing.T) {
	e := mustEnv(t, rider.Config{})
	ctx := context.Background()
	actions := []string{rider.ActAccept, rider.ActArrived, rider.ActPickup, rider.ActComplete, rider.ActCancel,
		rider.ActDecline, rider.ActReassign, rider.ActExpire, rider.ActPaid, rider.ActUnpaid, rider.ActDropoff}
	roles := []string{rider.RoleRider, rider.RoleDriver, rider.RoleOps, rider.RoleSystem}
	for _, st := range rider.Statuses {
		for _, act := range actions {
			for _, role := range roles {
				t.Run(st+"/"+act+"/"+role, func(t *testing.T) {
					trip, ra, drv := e.tripIn(t, st)
					a := rider.Actor{Role: role}
					switch role {
					case rider.RoleRider:
						a = ra
					case rider.RoleDriver:
						a.ID = drv
						if a.ID == "" {
							a.ID = e.driver(t) // nobody assigned: some available driver
						}
					case rider.RoleSystem:
						if act == rider.ActAccept {
							a.ID = e.driver(t)
						}
					}
					before := e.streamLen(t, trip.ID)
					var snap rider.Snapshot
					var err error
					if act == rider.ActDropoff {
						snap, err = e.trips.ChangeDropoff(ctx, trip.ID, a, rider.Place{Lat: 52.49, Lng: 13.37, Address: "__VERSION__ st"}, 0)
					} else {
						snap, err = e.trips.Act(ctx, trip.ID, a, act, "")
					}
					to, allowed := rider.Allowed(act, role, st)
					mayEver := false
					for _, r := range rider.Rules {
						mayEver = mayEver || r.Action == act && r.Role == role
					}
					owner := role != rider.RoleDriver || drv == a.ID || act == rider.ActAccept ||
						act == rider.ActDecline && st == rider.StatusRequested
					noop := role == rider.RoleDriver && act == rider.ActDecline && st == rider.StatusRequested
					after := e.streamLen(t, trip.ID)
					switch {
					case !mayEver || !owner:
						if !errors.Is(err, rider.ErrForbidden) {
							t.Fatalf("want ErrForbidden, got %v", err)
						}
						if after != before {
							t.Fatalf("refused action appended %d events", after-before)
						}
					case noop:
						if err != nil || snap.Trip.Status != st || after != before {
							t.Fatalf("decline of a requested trip: err %v, status %s, events +%d", err, snap.Trip.Status, after-before)
						}
					case allowed:
						if err != nil {
							t.Fatalf("allowed transition failed: %v", err)
						}
						if snap.Trip.Status != to || snap.Version != trip.Version+1 {
							t.Fatalf("got %s v%d, want %s v%d", snap.Trip.Status, snap.Version, to, trip.Version+1)
						}
						if after != before+1 {
							t.Fatalf("want exactly one event, got %d", after-before)
						}
						ev := e.lastEvent(t, trip.ID)
						wantType := rider.EventStatus
						switch {
						case act == rider.ActDropoff:
							wantType = rider.EventAddressChanged
						case to == rider.StatusCancelled:
							wantType = rider.EventCancelled
						case to == rider.StatusAssigned:
							wantType = rider.EventAssigned
						}
						if ev.Type != wantType || !strings.Contains(string(ev.Data), fmt.Sprintf(`"version":%d`, snap.Version)) ||
							!strings.Contains(string(ev.Data), `"from":"`+st+`"`) {
							t.Fatalf("event %s %s", ev.Type, ev.Data)
						}
						if snap.FeedPosition != ev.ID {
							t.Fatalf("snapshot position %s, last event %s", snap.FeedPosition, ev.ID)
						}
					default:
						var te *rider.TransitionError
						if !errors.As(err, &te) || !errors.Is(err, rider.ErrInvalidTransition) || te.Current != st {
							t.Fatalf("want TransitionError with current %s, got %v", st, err)
						}
						if after != before {
							t.Fatalf("refused transition appended %d events", after-before)
						}
					}
				})
			}
		}
	}
}

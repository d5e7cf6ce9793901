package dispatchredis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/dispatch"
	"github.com/hextrack/hextrack/dispatch/dispatchredis"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/internal/redistest"
	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// fastDispatch is a dispatch configuration with test-sized timeouts.
func fastDispatch(prefix string) dispatchredis.Config {
	return dispatchredis.Config{Prefix: prefix, OfferTimeout: 600 * time.Millisecond, Timeout: 3 * time.Second,
		Poll: 20 * time.Millisecond, Retry: 50 * time.Millisecond, Scan: 50 * time.Millisecond, LeaseTTL: time.Second,
		Radii: []float64{1500, 3000, 6000}}
}

func prefixOf(e *triptest.Env) string { return e.Trips.Config().Prefix }

var nan = math.NaN()

// commands returns a driver's commands of one type from its feed.
func commands(tb testing.TB, e *triptest.Env, drv, typ string) []feed.Event {
	tb.Helper()
	evs, _, err := e.Feed.Read(context.Background(), dispatch.DriverTopic(drv), "0-0", 1000)
	if err != nil {
		tb.Fatal(err)
	}
	var out []feed.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func runDispatcher(tb testing.TB, rdb redis.UniversalClient, e *triptest.Env, cfg dispatchredis.Config) (*dispatchredis.Dispatcher, context.CancelFunc) {
	tb.Helper()
	// Every node shares e.Trips; the latest dispatcher is its hook.
	d := dispatchredis.New(rdb, e.Trips, e.Drivers, dispatchredis.NewCommands(rdb, e.Feed, prefixOf(e)), cfg)
	e.Trips.SetHook(d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return d, cancel
}

func waitStatus(tb testing.TB, e *triptest.Env, id string, want string, within time.Duration) trip.Trip {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		t, err := e.Trips.Get(context.Background(), id)
		if err != nil {
			tb.Fatal(err)
		}
		if t.Status == want {
			return t
		}
		if time.Now().After(deadline) {
			tb.Fatalf("trip %s is %s, want %s after %v", id, t.Status, want, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var pickup = geo.Point{Lat: triptest.Ride.Pickup.Lat, Lng: triptest.Ride.Pickup.Lng}

func TestDispatchOffersBestThenNextOnDecline(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	near := e.PlaceDriver(t, geo.Offset(pickup, 90, 300))
	far := e.PlaceDriver(t, geo.Offset(pickup, 90, 1200))
	runDispatcher(t, e.RDB, e, fastDispatch(prefixOf(e)))
	cmds := dispatchredis.NewCommands(e.RDB, e.Feed, prefixOf(e))
	ctx := context.Background()
	sub, err := cmds.Subscribe(ctx, near, "0-0")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	snap, _ := e.Create(t, triptest.Ride)
	id := snap.Trip.ID
	it := <-sub.C()
	var o dispatch.Offer
	if err := json.Unmarshal(it.Event.Data, &o); err != nil || it.Event.Type != dispatch.CmdOffer || o.TripID != id {
		t.Fatalf("first offer: %+v %v", it, err)
	}
	// Only the offered driver may accept.
	if _, err := e.Trips.Accept(ctx, id, trip.Actor{Role: trip.RoleDriver, ID: far}); err == nil {
		t.Fatal("a driver without the offer accepted")
	}
	if _, err := e.Trips.Act(ctx, id, trip.Actor{Role: trip.RoleDriver, ID: near}, trip.ActDecline, ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(commands(t, e, far, dispatch.CmdOffer)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no offer to the next driver after a decline")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.Trips.Accept(ctx, id, trip.Actor{Role: trip.RoleDriver, ID: far}); err != nil {
		t.Fatal(err)
	}
	tr := waitStatus(t, e, id, trip.StatusAssigned, time.Second)
	if tr.DriverID != far {
		t.Fatalf("assigned to %s, want %s", tr.DriverID, far)
	}
	// The driver cancels: back to requested, dispatched again without them
	// (near declined, far cancelled: nobody is left → expired).
	if _, err := e.Trips.Cancel(ctx, id, trip.Actor{Role: trip.RoleDriver, ID: far}, "flat tyre"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, id, trip.StatusExpired, 5*time.Second)
	if n := len(commands(t, e, far, dispatch.CmdOffer)); n != 1 {
		t.Fatalf("the driver who cancelled got %d offers, want 1", n)
	}
}

func TestDispatchNotifiesDriver(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	drv := e.PlaceDriver(t, geo.Offset(pickup, 0, 200))
	runDispatcher(t, e.RDB, e, fastDispatch(prefixOf(e)))
	ctx := context.Background()
	snap, rd := e.Create(t, triptest.Ride)
	id := snap.Trip.ID
	deadline := time.Now().Add(2 * time.Second)
	for len(commands(t, e, drv, dispatch.CmdOffer)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.Trips.Accept(ctx, id, trip.Actor{Role: trip.RoleDriver, ID: drv}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Trips.ChangeDropoff(ctx, id, rd, trip.Place{Lat: 52.51, Lng: 13.39, Address: "new"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Trips.Cancel(ctx, id, rd, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{dispatch.CmdAddressChanged, dispatch.CmdCancelled} {
		if n := len(commands(t, e, drv, typ)); n != 1 {
			t.Errorf("%s commands: %d, want 1", typ, n)
		}
	}
	st, _ := e.Drivers.Get(ctx, drv)
	if st.Status != driver.StatusAvailable || st.TripID != "" {
		t.Fatalf("driver after the rider's cancel: %+v", st)
	}
}

// TestDispatchRace: 50 trips requested at once, 20 drivers, two
// dispatchers: no driver gets two trips, no trip two drivers, every trip
// ends assigned or expired.
func TestDispatchRace(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	ctx := context.Background()
	var drivers []string
	for i := range 20 {
		drivers = append(drivers, e.PlaceDriver(t, geo.Offset(pickup, float64(i*18), 100+float64(i*40))))
	}
	cfg := fastDispatch(prefixOf(e))
	runDispatcher(t, e.RDB, e, cfg)
	other, _ := redistest.MustOpen(t)
	runDispatcher(t, other, e, cfg)

	// Every driver answers its offers: 80% accept, 20% decline.
	cmds := dispatchredis.NewCommands(e.RDB, e.Feed, prefixOf(e))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[string][]string{} // driver → trips it was given by Accept
	for _, drv := range drivers {
		sub, err := cmds.Subscribe(ctx, drv, "0-0")
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer sub.Close()
			for {
				select {
				case <-stop:
					return
				case it, ok := <-sub.C():
					if !ok {
						return
					}
					if it.Event.Type != dispatch.CmdOffer {
						continue
					}
					var o dispatch.Offer
					_ = json.Unmarshal(it.Event.Data, &o)
					a := trip.Actor{Role: trip.RoleDriver, ID: drv}
					if rand.IntN(5) == 0 {
						_, _ = e.Trips.Act(ctx, o.TripID, a, trip.ActDecline, "")
						continue
					}
					if _, err := e.Trips.Accept(ctx, o.TripID, a); err == nil {
						mu.Lock()
						accepted[drv] = append(accepted[drv], o.TripID)
						mu.Unlock()
					}
				}
			}
		})
	}
	ids := make([]string, 50)
	var cw sync.WaitGroup
	for i := range ids {
		cw.Go(func() {
			snap, _ := e.Create(t, triptest.Ride)
			ids[i] = snap.Trip.ID
		})
	}
	cw.Wait()
	deadline := time.Now().Add(cfg.Timeout + 5*time.Second)
	counts := map[string]int{}
	for {
		clear(counts)
		for _, id := range ids {
			tr, err := e.Trips.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			counts[tr.Status]++
		}
		if counts[trip.StatusAssigned]+counts[trip.StatusExpired] == len(ids) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if counts[trip.StatusAssigned]+counts[trip.StatusExpired] != len(ids) {
		for _, id := range ids {
			if tr, _ := e.Trips.Get(ctx, id); tr.Status == trip.StatusRequested {
				p := prefixOf(e)
				score, serr := e.RDB.ZScore(ctx, p+"dispatch:queue", id).Result()
				t.Logf("stuck %s: queue score %v (%v, now %d) lease %q state %v", id, int64(score), serr, time.Now().UnixMilli(),
					e.RDB.Get(ctx, p+"trip:{"+id+"}:lease").Val(), e.RDB.HGetAll(ctx, p+"trip:{"+id+"}:dispatch").Val())
			}
		}
		t.Fatalf("trips not all assigned or expired: %v", counts)
	}
	// From Redis state: each assigned trip's driver holds exactly that trip.
	holder := map[string]string{}
	for _, id := range ids {
		tr, _ := e.Trips.Get(ctx, id)
		if tr.Status != trip.StatusAssigned {
			continue
		}
		if prev, dup := holder[tr.DriverID]; dup {
			t.Fatalf("driver %s holds trips %s and %s", tr.DriverID, prev, id)
		}
		holder[tr.DriverID] = id
		st, err := e.Drivers.Get(ctx, tr.DriverID)
		if err != nil || st.TripID != id || st.Status != driver.StatusOnTrip {
			t.Fatalf("driver %s state %+v, want on trip %s (%v)", tr.DriverID, st, id, err)
		}
	}
	// From the events: one trip.assigned per assigned trip, one per driver.
	perDriver := map[string]int{}
	for _, id := range ids {
		evs, _, err := e.Feed.Read(ctx, trip.Topic(id), "0-0", 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range evs {
			if ev.Type == trip.EventAssigned {
				var d struct {
					DriverID string `json:"driver_id"`
				}
				_ = json.Unmarshal(ev.Data, &d)
				perDriver[d.DriverID]++
				n++
			}
		}
		if n > 1 {
			t.Fatalf("trip %s has %d trip.assigned events", id, n)
		}
	}
	for drv, n := range perDriver {
		if n > 1 {
			t.Fatalf("driver %s was assigned %d times", drv, n)
		}
	}
	mu.Lock()
	for drv, ts := range accepted {
		if len(ts) > 1 {
			t.Fatalf("driver %s accepted %v successfully", drv, ts)
		}
	}
	mu.Unlock()
	offers := 0
	for _, drv := range drivers {
		offers += len(commands(t, e, drv, dispatch.CmdOffer))
	}
	t.Logf("race: %d trips, %d drivers: %d assigned, %d expired, %d offers sent, %d drivers assigned (events)",
		len(ids), len(drivers), counts[trip.StatusAssigned], counts[trip.StatusExpired], offers, len(perDriver))
	if counts[trip.StatusAssigned] == 0 || counts[trip.StatusAssigned] > len(drivers) || len(perDriver) != counts[trip.StatusAssigned] {
		t.Fatalf("assigned %d trips to %d drivers", counts[trip.StatusAssigned], len(perDriver))
	}
}

// TestDispatchTakeover: the node dispatching a trip dies (its Redis
// connection is gone, its lease can neither be renewed nor released);
// another node takes the trip over after the lease expires and dispatches
// it, and the driver gets exactly one offer.
func TestDispatchTakeover(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	ctx := context.Background()
	cfg := fastDispatch(prefixOf(e))
	cfg.Timeout = 20 * time.Second
	cfg.OfferTimeout = 5 * time.Second
	cfg.NodeID = "node-a"
	opt, _ := redis.ParseURL(redistest.URL())
	aConn := redis.NewClient(opt)
	_, _ = runDispatcher(t, aConn, e, cfg)
	snap, _ := e.Create(t, triptest.Ride)
	id := snap.Trip.ID
	lease := prefixOf(e) + "trip:{" + id + "}:lease"
	// Deadlines are generous: on a loaded machine the scans, the lease's
	// expiry and the offer may each come seconds late; what is checked is
	// who holds the lease and how many offers went out, not how fast.
	const patience = 20 * time.Second
	deadline := time.Now().Add(patience)
	for e.RDB.Get(ctx, lease).Val() != "node-a" {
		if time.Now().After(deadline) {
			t.Fatalf("node a never took the trip (lease %q after %v)", e.RDB.Get(ctx, lease).Val(), patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = aConn.Close() // node a is gone
	drv := e.PlaceDriver(t, geo.Offset(pickup, 45, 500))
	cfg.NodeID = "node-b"
	runDispatcher(t, e.RDB, e, cfg)
	deadline = time.Now().Add(cfg.LeaseTTL + patience)
	for len(commands(t, e, drv, dispatch.CmdOffer)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the trip of the dead node was never offered (lease %q after %v)", e.RDB.Get(ctx, lease).Val(), cfg.LeaseTTL+patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Node b holds the lease. A renewal starved past LeaseTTL lets it lapse
	// for a moment (node b takes it again on its next scan), so wait for
	// node b; node a, whose connection is closed, must never hold it again.
	deadline = time.Now().Add(patience)
	for owner := e.RDB.Get(ctx, lease).Val(); owner != "node-b"; owner = e.RDB.Get(ctx, lease).Val() {
		if owner == "node-a" || time.Now().After(deadline) {
			t.Fatalf("lease owner %q, want node-b", owner)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.Trips.Accept(ctx, id, trip.Actor{Role: trip.RoleDriver, ID: drv}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, id, trip.StatusAssigned, patience)
	time.Sleep(100 * time.Millisecond)
	if n := len(commands(t, e, drv, dispatch.CmdOffer)); n != 1 {
		t.Fatalf("%d offers, want exactly 1", n)
	}
}

// TestArrivalDetection: within 50 m for 10 s of ping time → arrived;
// leaving beyond 80 m resets the dwell; trip.arriving once.
func TestArrivalDetection(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	ctx := context.Background()
	t0 := time.Now().Add(-24 * time.Second) // pings up to t0+35s: within the allowed 30 s ahead
	drv := e.PlaceDriverAt(t, geo.Offset(pickup, 0, 450), t0.Add(-time.Second))
	d, _ := runDispatcher(t, e.RDB, e, fastDispatch(prefixOf(e)))
	e.Drivers.Listen(d.Arrivals())
	snap, _ := e.Create(t, triptest.Ride)
	id := snap.Trip.ID
	deadline := time.Now().Add(2 * time.Second)
	for len(commands(t, e, drv, dispatch.CmdOffer)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.Trips.Accept(ctx, id, trip.Actor{Role: trip.RoleDriver, ID: drv}); err != nil {
		t.Fatal(err)
	}
	seq := int64(1)
	send := func(dist float64, at time.Duration) {
		t.Helper()
		seq++
		p := driver.DecodedPing{Ping: driver.Ping{Pos: geo.Offset(pickup, 0, dist), TS: t0.Add(at), Seq: seq,
			Accuracy: nan, Speed: nan, Heading: nan}}
		if _, err := e.Drivers.Ingest(ctx, drv, []driver.DecodedPing{p}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond) // let the async check run
	}
	status := func() string { tr, _ := e.Trips.Get(ctx, id); return tr.Status }
	for _, step := range []struct {
		dist float64
		at   time.Duration
		want string
	}{
		{400, 0, trip.StatusAssigned},                // ETA 48 s < 60 s: trip.arriving
		{30, 10 * time.Second, trip.StatusAssigned},  // within 50 m: dwell starts
		{45, 15 * time.Second, trip.StatusAssigned},  // dwell 5 s
		{65, 21 * time.Second, trip.StatusAssigned},  // in the hysteresis band: dwell kept, not enough
		{100, 23 * time.Second, trip.StatusAssigned}, // left: dwell reset
		{20, 25 * time.Second, trip.StatusAssigned},
		{25, 31 * time.Second, trip.StatusAssigned},
		{30, 35 * time.Second, trip.StatusArrived}, // 10 s since 25 s
	} {
		send(step.dist, step.at)
		if step.want == trip.StatusArrived {
			waitStatus(t, e, id, trip.StatusArrived, time.Second)
		} else if got := status(); got != step.want {
			t.Fatalf("at %v, %v m: %s, want %s", step.at, step.dist, got, step.want)
		}
	}
	evs, _, _ := e.Feed.Read(ctx, trip.Topic(id), "0-0", 100)
	arriving := 0
	for _, ev := range evs {
		if ev.Type == dispatch.EventArriving {
			arriving++
		}
	}
	if arriving != 1 {
		t.Fatalf("%d trip.arriving events, want 1", arriving)
	}
}

func TestCommandAcks(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	ctx := context.Background()
	cmds := dispatchredis.NewCommands(e.RDB, e.Feed, prefixOf(e))
	drv := e.ID("d")
	var ids []string
	for i := range 3 {
		id, err := cmds.Send(ctx, drv, dispatch.CmdOffer, map[string]int{"n": i}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, tc := range []struct {
		name, ack, want string
		bad             bool
	}{
		{"first", ids[1], ids[1], false},
		{"older does not move back", ids[0], ids[1], false},
		{"newest", ids[2], ids[2], false},
		{"malformed", "abc", "", true},
		{"never sent", fmt.Sprintf("%d-0", time.Now().Add(time.Hour).UnixMilli()), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cmds.Ack(ctx, drv, tc.ack)
			if tc.bad != (err != nil) || (!tc.bad && got != tc.want) {
				t.Fatalf("ack %s: %q %v, want %q", tc.ack, got, err, tc.want)
			}
		})
	}
	if from, _ := cmds.ResumeFrom(ctx, drv, ""); from != ids[2] {
		t.Fatalf("resume from %s, want %s", from, ids[2])
	}
}

// TestDispatchReassign: ops reassign → the driver is told, the trip is
// offered to another driver and never again to the first.
func TestDispatchReassign(t *testing.T) {
	e := triptest.MustEnv(t, tripredis.Config{})
	ctx := context.Background()
	first := e.PlaceDriver(t, geo.Offset(pickup, 0, 100))
	second := e.PlaceDriver(t, geo.Offset(pickup, 180, 900))
	runDispatcher(t, e.RDB, e, fastDispatch(prefixOf(e)))
	snap, _ := e.Create(t, triptest.Ride)
	id := snap.Trip.ID
	waitOffer := func(drv string, n int) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for len(commands(t, e, drv, dispatch.CmdOffer)) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no offer %d to %s", n, drv)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitOffer(first, 1)
	if _, err := e.Trips.Accept(ctx, id, trip.Actor{Role: trip.RoleDriver, ID: first}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Trips.Act(ctx, id, trip.Actor{Role: trip.RoleOps, ID: "ops1"}, trip.ActReassign, "driver stuck"); err != nil {
		t.Fatal(err)
	}
	if n := len(commands(t, e, first, dispatch.CmdReassigned)); n != 1 {
		t.Fatalf("%d trip.reassigned to the first driver, want 1", n)
	}
	waitOffer(second, 1)
	if _, err := e.Trips.Accept(ctx, id, trip.Actor{Role: trip.RoleDriver, ID: second}); err != nil {
		t.Fatal(err)
	}
	if tr := waitStatus(t, e, id, trip.StatusAssigned, time.Second); tr.DriverID != second {
		t.Fatalf("reassigned to %s, want %s", tr.DriverID, second)
	}
	if n := len(commands(t, e, first, dispatch.CmdOffer)); n != 1 {
		t.Fatalf("the reassigned-away driver got %d offers, want 1", n)
	}
	if st, _ := e.Drivers.Get(ctx, first); st.Status != driver.StatusAvailable || st.TripID != "" {
		t.Fatalf("first driver after reassign: %+v", st)
	}
}

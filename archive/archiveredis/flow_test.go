package archiveredis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/driver/driverredis"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/geo"
	"github.com/hextrack/hextrack/geo/georedis"
	"github.com/hextrack/hextrack/internal/triptest"
	"github.com/hextrack/hextrack/payment"
	"github.com/hextrack/hextrack/payment/paymentredis"
	"github.com/hextrack/hextrack/trip"
	"github.com/hextrack/hextrack/trip/tripredis"
)

// statusLog is cmd/hextrack's driverredis.StatusLog: the driver topic's
// status record stream, marked through the feed.
type statusLog struct {
	feed   *feedredis.Broker
	prefix string
}

func (l statusLog) StatusStream(id string) string {
	return feedredis.RecordKey(l.prefix, "driver:"+id, feedredis.RecordStatus)
}

func (l statusLog) MarkStatus(ctx context.Context, id string) error {
	return l.feed.Mark(ctx, "driver:"+id)
}

// The real writers end to end: a driver on a trip sends batches of pings
// through the ingest path (some duplicates, some out of order) while the
// tracker is not running yet; every fix the ingest accepted while the
// driver was on the trip becomes one trail point (not only the sampled
// crumbs or the conflated newest move), and the
// driver's status changes (available, on_trip, available) become its
// status history.
func TestTripTrailAndStatusesComplete(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idx := georedis.NewIndex(e.rdb, georedis.IndexConfig{Prefix: e.prefix})
	drivers := driverredis.NewService(e.rdb, idx, driver.Config{Prefix: e.prefix, PingRate: -1})
	drivers.RecordStatuses(statusLog{feed: e.feed, prefix: e.prefix})
	trips := tripredis.NewService(e.rdb, e.feed, drivers, tripredis.Config{Prefix: e.prefix, Workers: 1, Logger: quiet(t)})
	drivers.Listen(trips.Tracker())
	te := &triptest.Env{RDB: e.rdb, Feed: e.feed, Drivers: drivers, Trips: trips, Prefix: e.prefix}
	tr, _, drv := te.TripIn(t, trip.StatusInProgress)
	run(t, e.pipeline(e.store, "n1", nil))

	accepted := 0
	t0 := time.Now().Add(-time.Minute)
	seq := int64(0)
	for b := range 40 {
		var ps []driver.DecodedPing
		for i := range 3 {
			seq++
			ts := t0.Add(time.Duration(seq) * time.Second)
			if i == 0 && b%5 == 4 {
				ts = ts.Add(-1500 * time.Millisecond) // older than the position: accepted, not applied
			}
			ps = append(ps, driver.DecodedPing{Ping: driver.Ping{Pos: geo.Point{Lat: 52.5 + float64(seq)*1e-4, Lng: 13.4},
				TS: ts, Seq: seq, Accuracy: 4, Speed: 8, Heading: 90}})
		}
		if b%7 == 6 {
			ps = append(ps, ps[1]) // a duplicate: not accepted
		}
		res, err := drivers.Ingest(ctx, drv, ps)
		if err != nil {
			t.Fatal(err)
		}
		accepted += res.Accepted
	}
	// The tracker starts now: the moves queued for the trip were conflated
	// into one job (the newest fix wins the location) holding every fix.
	go func() { _ = trips.Tracker().Run(ctx) }()
	db := e.sqlDB()
	deadline := time.Now().Add(10 * time.Second)
	for count(t, db, "SELECT COUNT(*) FROM trail_points WHERE trip_id = $1", tr.ID) < int64(accepted) {
		if time.Now().After(deadline) {
			t.Fatalf("trail: %d points archived, want %d", count(t, db, "SELECT COUNT(*) FROM trail_points WHERE trip_id = $1", tr.ID), accepted)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := trips.Act(context.Background(), tr.ID, trip.Actor{Role: trip.RoleDriver, ID: drv}, trip.ActComplete, ""); err != nil {
		t.Fatal(err)
	}
	e.waitClean(5 * time.Second)
	if n := count(t, db, "SELECT COUNT(*) FROM trail_points WHERE trip_id = $1 AND driver_id = $2 AND accuracy_m = 4", tr.ID, drv); n != int64(accepted) {
		t.Fatalf("trail points = %d, want the %d accepted fixes", n, accepted)
	}
	if n := count(t, db, "SELECT COUNT(DISTINCT seq) FROM trail_points WHERE trip_id = $1 AND seq BETWEEN 1 AND $2", tr.ID, accepted); n != int64(accepted) {
		t.Fatalf("trail seqs: %d distinct in 1..%d", n, accepted)
	}
	var got []string
	rows, err := db.QueryContext(context.Background(), "SELECT status, trip_id FROM driver_status WHERE driver_id = $1 ORDER BY at_us", drv)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var st, tid string
		if err := rows.Scan(&st, &tid); err != nil {
			t.Fatal(err)
		}
		got = append(got, st+"/"+tid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"available/", "on_trip/" + tr.ID, "available/"}
	if !equal(got, want) {
		t.Fatalf("status history %v, want %v", got, want)
	}
}

// The payment's states and every webhook event stored (applied, a
// redelivery not stored twice, a conflicting late event) become ledger
// entries, once each.
func TestPaymentLedger(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	idx := georedis.NewIndex(e.rdb, georedis.IndexConfig{Prefix: e.prefix})
	drivers := driverredis.NewService(e.rdb, idx, driver.Config{Prefix: e.prefix})
	trips := tripredis.NewService(e.rdb, e.feed, drivers, tripredis.Config{Prefix: e.prefix, Logger: quiet(t)})
	te := &triptest.Env{RDB: e.rdb, Feed: e.feed, Drivers: drivers, Trips: trips, Prefix: e.prefix}
	secret := []byte("whsec_ledger_0123456789")
	cfg := paymentredis.Config{GatewayURL: "http://gw.test/", Secrets: [][]byte{secret}, Prefix: e.prefix, Currency: "EUR",
		Logger: quiet(t)}
	pays := paymentredis.New(e.rdb, e.feed, trips, cfg)
	hooks := paymentredis.NewWebhooks(e.rdb, e.feed, trips, cfg)

	snap, rider := te.Create(t, trip.CreateRequest{Kind: trip.KindDelivery, Pickup: triptest.Ride.Pickup,
		Dropoff: triptest.Ride.Dropoff, Payment: trip.PaymentOnline})
	pay, _, err := pays.Create(ctx, snap.Trip.ID, rider, "")
	if err != nil {
		t.Fatal(err)
	}
	send := func(id, typ string) string {
		body := []byte(fmt.Sprintf(`{"id":%q,"type":%q,"created":%d,"data":{"payment_id":%q,"amount":%d,"currency":%q}}`,
			id, typ, time.Now().Unix(), pay.ID, pay.Amount, pay.Currency))
		r, err := hooks.Webhook(ctx, payment.Sign(secret, time.Now(), body), body)
		if err != nil {
			t.Fatal(err)
		}
		return r.Outcome
	}
	outcomes := []string{send("evt_1", payment.WebhookSucceeded), send("evt_1", payment.WebhookSucceeded),
		send("evt_2", payment.WebhookFailed)}
	if !equal(outcomes, []string{payment.OutcomeApplied, payment.OutcomeDuplicate, "conflict"}) {
		t.Fatalf("outcomes %v", outcomes)
	}
	reg := prometheus.NewRegistry()
	run(t, e.pipeline(e.store, "n1", reg))
	e.waitClean(5 * time.Second)
	db := e.sqlDB()
	var got []string
	rows, err := db.QueryContext(ctx, "SELECT id, kind, status, outcome, amount, currency FROM ledger WHERE trip_id = $1 ORDER BY id", snap.Trip.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, kind, st, out, cur string
		var amount int64
		if err := rows.Scan(&id, &kind, &st, &out, &amount, &cur); err != nil {
			t.Fatal(err)
		}
		if amount != pay.Amount || cur != "EUR" {
			t.Errorf("entry %s: %d %s, want %d EUR", id, amount, cur, pay.Amount)
		}
		got = append(got, strings.TrimPrefix(id, pay.ID)+" "+kind+" "+st+" "+out)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{":v1 payment pending ", ":v2 payment succeeded ", ":w1 webhook succeeded applied", ":w2 webhook succeeded conflict"}
	if !equal(got, want) {
		t.Fatalf("ledger\n got %q\nwant %q", got, want)
	}
	if n := labeled(t, reg, "hextrack_archive_records_total", "ledger"); n != 4 {
		t.Fatalf("new ledger entries counted = %v, want 4", n)
	}
}

package archiveredis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hextrack/hextrack/archive/archiveredis"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/feed/feedredis"
)

// records writes, as the domain scripts do (mark, then append), a trip's
// payment states (payment.status events), trail fixes and stored webhook
// events, and a driver's status changes.
type records struct {
	e              *env
	trip, drv      string // topics
	tripID, drvID  string
	fixes, webhook int
	statuses       []string
}

func newRecords(e *env) *records {
	var b [6]byte
	_, _ = rand.Read(b[:])
	r := &records{e: e, trip: e.topic(), drvID: "pd_" + hex.EncodeToString(b[:])}
	r.tripID = strings.TrimPrefix(r.trip, "trip:")
	r.drv = "driver:" + r.drvID
	e.t.Cleanup(func() {
		ctx := context.Background()
		e.rdb.Del(ctx, feed.StreamKey(e.prefix, r.drv), feedredis.ArchivedKey(e.prefix, r.drv))
		for _, k := range []struct{ topic, kind string }{{r.trip, feedredis.RecordTrail},
			{r.trip, feedredis.RecordWebhooks}, {r.drv, feedredis.RecordStatus}} {
			e.rdb.Del(ctx, feedredis.RecordKey(e.prefix, k.topic, k.kind), feedredis.ArchivedKey(e.prefix, k.topic)+":"+k.kind)
		}
	})
	return r
}

func (r *records) add(t *testing.T, stream string, vals ...any) {
	t.Helper()
	if err := r.e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: vals}).Err(); err != nil {
		t.Fatal(err)
	}
}

// write appends n of each kind of record (after marking the topics).
func (r *records) write(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	e := r.e
	for _, tp := range []string{r.trip, r.drv} {
		if err := e.feed.Mark(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	pay := "pay_" + r.tripID
	for i := 0; i < n; i++ {
		r.fixes++
		r.add(t, feedredis.RecordKey(e.prefix, r.trip, feedredis.RecordTrail), "seq", r.fixes, "drv", r.drvID,
			"ts", time.Now().UnixMilli(), "lat", fmt.Sprintf("52.%07d", r.fixes), "lng", "13.4000000", "acc", "5.00", "spd", "", "hdg", "90.00")
	}
	for i := 0; i < n; i++ {
		r.webhook++
		r.add(t, feedredis.RecordKey(e.prefix, r.trip, feedredis.RecordWebhooks), "seq", r.webhook, "pay", pay,
			"amount", 1200, "currency", "EUR", "status", "succeeded", "outcome", "ignored", "at", time.Now().UnixMilli(),
			"body", fmt.Sprintf(`{"id":"evt_%d","type":"payment.succeeded"}`, r.webhook))
		_, err := e.feed.Publish(ctx, feed.Publication{Topic: r.trip, Type: "payment.status",
			Data: []byte(fmt.Sprintf(`{"version":%d,"payment_id":%q,"trip_id":%q,"status":"pending","amount":1200,"currency":"EUR"}`,
				r.webhook, pay, r.tripID))})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		st := []string{"available", "on_trip", "offline"}[len(r.statuses)%3]
		r.statuses = append(r.statuses, st)
		trip := ""
		if st == "on_trip" {
			trip = r.tripID
		}
		r.add(t, feedredis.RecordKey(e.prefix, r.drv, feedredis.RecordStatus), "status", st, "trip", trip)
	}
}

// check compares the archive's rows with what was written, and the
// record streams are empty (archived entries are deleted).
func (r *records) check(t *testing.T) {
	t.Helper()
	db := r.e.sqlDB()
	if n := count(t, db, "SELECT COUNT(*) FROM trail_points WHERE trip_id = $1", r.tripID); n != int64(r.fixes) {
		t.Errorf("trail points = %d, want %d", n, r.fixes)
	}
	if n := count(t, db, "SELECT COUNT(DISTINCT seq) FROM trail_points WHERE trip_id = $1 AND seq BETWEEN 1 AND $2 AND driver_id = $3",
		r.tripID, r.fixes, r.drvID); n != int64(r.fixes) {
		t.Errorf("trail seqs 1..%d: %d distinct", r.fixes, n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM ledger WHERE trip_id = $1 AND kind = 'webhook' AND outcome = 'ignored' AND amount = 1200", r.tripID); n != int64(r.webhook) {
		t.Errorf("webhook ledger entries = %d, want %d", n, r.webhook)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM ledger WHERE trip_id = $1 AND kind = 'payment' AND currency = 'EUR'", r.tripID); n != int64(r.webhook) {
		t.Errorf("payment ledger entries = %d, want %d", n, r.webhook)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM driver_status WHERE driver_id = $1", r.drvID); n != int64(len(r.statuses)) {
		t.Errorf("status changes = %d, want %d", n, len(r.statuses))
	}
	if n := count(t, db, "SELECT COUNT(*) FROM driver_status WHERE driver_id = $1 AND status = 'on_trip' AND trip_id = $2", r.drvID, r.tripID); n == 0 {
		t.Error("no on_trip status change with its trip")
	}
	for _, k := range []string{feedredis.RecordKey(r.e.prefix, r.trip, feedredis.RecordTrail),
		feedredis.RecordKey(r.e.prefix, r.drv, feedredis.RecordStatus)} {
		if n := r.e.rdb.XLen(context.Background(), k).Val(); n != 0 {
			t.Errorf("%s still holds %d archived entries", k, n)
		}
	}
}

// waitRows waits until the trail holds want points.
func (r *records) waitRows(t *testing.T, want int64, timeout time.Duration) {
	t.Helper()
	db := r.e.sqlDB()
	deadline := time.Now().Add(timeout)
	for count(t, db, "SELECT COUNT(*) FROM driver_status WHERE driver_id = $1", r.drvID)+
		count(t, db, "SELECT COUNT(*) FROM trail_points WHERE trip_id = $1", r.tripID) < want {
		if time.Now().After(deadline) {
			t.Fatalf("records not archived after %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Trail points, ledger entries and status changes are archived exactly
// once though the first consumer is killed between its archive write and
// its cursor advance and the next one re-reads that batch: the rows equal
// what was written and the new writes counted equal the rows.
func TestRecordsArchivedOnceAfterCrash(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := newEnvAt(t, b.url(t))
			r := newRecords(e)
			r.write(t, 25)

			reg := prometheus.NewRegistry()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// One shard at a time: the kill lands between a write and
			// its cursor advance, not in another shard's write.
			a := e.pipeline(e.store, "killed", reg, func(c *archiveredis.Config) { c.Batch, c.Shards = 10, 1 })
			archiveredis.SetAfterAppend(a, cancel)
			if err := a.Run(ctx); err != nil {
				t.Fatalf("run: %v", err)
			}
			if c := e.rdb.Get(context.Background(), feedredis.ArchivedKey(e.prefix, r.trip)+":"+feedredis.RecordTrail).Val(); c != "" {
				t.Fatalf("trail cursor advanced to %q by the killed consumer", c)
			}
			if n := e.rdb.XLen(context.Background(), feedredis.RecordKey(e.prefix, r.trip, feedredis.RecordTrail)).Val(); n != 25 {
				t.Fatalf("the killed consumer trimmed the trail stream to %d", n)
			}
			for s := range feedredis.ArchiveShards { // killed: its leases stay until they expire
				e.rdb.Set(context.Background(), e.prefix+fmt.Sprintf("archive:lease:{s%d}", s), "killed", 300*time.Millisecond)
			}
			run(t, e.pipeline(e.store, "next", reg, func(c *archiveredis.Config) { c.Batch = 10 }))
			r.waitRows(t, 50, 10*time.Second)
			r.write(t, 5) // more while it runs
			r.waitRows(t, 60, 10*time.Second)
			e.waitClean(5 * time.Second)
			r.check(t)
			for table, want := range map[string]int{"trail_points": r.fixes, "driver_status": len(r.statuses),
				"ledger": 2 * r.webhook} {
				if n := labeled(t, reg, "hextrack_archive_records_total", table); n != float64(want) {
					t.Errorf("new %s rows counted = %v, want %d (redeliveries are not new)", table, n, want)
				}
			}
		})
	}
}

// labeled reads the counter name{table=label}.
func labeled(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" && l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

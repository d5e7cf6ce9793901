package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/driver"
	"github.com/hextrack/hextrack/feed/feedredis"
	"github.com/hextrack/hextrack/trip"
)

// TestTrailAndStatusesReachTheArchive: as `make run` (the embedded Redis,
// the data directory's SQLite), every fix a driver on a trip sends that
// the ingest accepts becomes a trail point, and its status changes its
// status history.
func TestTrailAndStatusesReachTheArchive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	m, _ := runMainWith(t, Config{DataDir: dir})
	ctx := context.Background()
	anon := client.New("http://"+m.Addr(), "", nil)
	rtok, err := anon.DevToken(ctx, "rider", "r_rec", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dtok, _ := anon.DevToken(ctx, "driver", "d_rec", time.Hour)
	drv := anon.WithToken(dtok)
	if _, err := drv.SetStatus(ctx, "d_rec", "available"); err != nil {
		t.Fatal(err)
	}
	snap, err := anon.WithToken(rtok).CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	if err := m.Trips.Assign(ctx, id, "d_rec"); err != nil {
		t.Fatal(err)
	}
	accepted := 0
	t0 := time.Now().Add(-time.Minute)
	for b := range 10 {
		var ps []client.Ping
		for i := range 3 {
			seq := int64(3*b + i + 1)
			ps = append(ps, client.Ping{Lat: 41.1496 + float64(seq)*1e-4, Lng: -8.6109, TS: t0.Add(time.Duration(seq) * time.Second), Seq: seq})
		}
		res, err := drv.SendLocations(ctx, "d_rec", ps)
		if err != nil {
			t.Fatal(err)
		}
		accepted += res.Accepted
	}
	da := trip.Actor{Role: trip.RoleDriver, ID: "d_rec"}
	for _, act := range []string{trip.ActArrived, trip.ActPickup, trip.ActComplete} {
		if _, err := m.Trips.Act(ctx, id, da, act, ""); err != nil {
			t.Fatalf("%s: %v", act, err)
		}
	}
	db, err := sql.Open("sqlite3", filepath.Join(dir, archiveFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := func(q string, args ...any) int64 {
		var c int64
		_ = db.QueryRowContext(ctx, q, args...).Scan(&c)
		return c
	}
	deadline := time.Now().Add(10 * time.Second)
	for n("SELECT COUNT(*) FROM trail_points WHERE trip_id = $1", id) < int64(accepted) ||
		n("SELECT COUNT(*) FROM driver_status WHERE driver_id = 'd_rec'") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("archive: %d trail points (want %d), %d status changes (want 3)",
				n("SELECT COUNT(*) FROM trail_points WHERE trip_id = $1", id), accepted,
				n("SELECT COUNT(*) FROM driver_status WHERE driver_id = 'd_rec'"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := n("SELECT COUNT(*) FROM trail_points WHERE trip_id = $1", id); got != int64(accepted) || accepted != 30 {
		t.Fatalf("trail points %d, accepted fixes %d (want 30)", got, accepted)
	}
	if got := n("SELECT COUNT(*) FROM driver_status WHERE driver_id = 'd_rec' AND status = $1 AND trip_id = $2", driver.StatusOnTrip, id); got != 1 {
		t.Fatalf("on_trip changes with the trip: %d, want 1", got)
	}
	// Archived record entries are deleted from Redis.
	trail := feedredis.RecordKey("", trip.Topic(id), feedredis.RecordTrail)
	for m.Redis().XLen(ctx, trail).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the trail stream still holds %d archived fixes", m.Redis().XLen(ctx, trail).Val())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

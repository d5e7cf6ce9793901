package main

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hextrack/hextrack/archive"
	"github.com/hextrack/hextrack/client"
	"github.com/hextrack/hextrack/feed"
	"github.com/hextrack/hextrack/trip"
)

// fix is a GPS fix the driver sent and the trip stored (its position seq).
type fix struct {
	seq      int64
	lat, lng float64
	ts       time.Time
}

// historyTrip is a trip driven to completion on m, with the fixes its trip
// stored in order.
type historyTrip struct {
	id    string
	fixes []fix
	rider string // the rider's token
}

// driveTrip: driver dID goes available near the pickup, rider rID orders
// a ride, the driver accepts, drives to the pickup, picks up, drives on
// and completes. Each fix is sent once the previous one is stored (the
// trip's location seq), so seq i is the i-th fix; they are spaced so the
// breadcrumb sampling keeps some and skips others.
func driveTrip(t *testing.T, m *Main, rID, dID string) historyTrip {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	anon := client.New("http://"+m.Addr(), "", nil)
	rtok, err := anon.DevToken(ctx, "rider", rID, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dtok, _ := anon.DevToken(ctx, "driver", dID, 24*time.Hour)
	rider, drv := anon.WithToken(rtok), anon.WithToken(dtok)
	if _, err := drv.SetStatus(ctx, dID, "available"); err != nil {
		t.Fatal(err)
	}
	// Fresh enough for dispatch (30 s); the last fix ~11 s ahead (30 s allowed).
	base := time.Now().Add(-10 * time.Second).Truncate(time.Millisecond)
	pingSeq := int64(1)
	if _, err := drv.SendLocation(ctx, dID, client.Ping{Lat: 41.1480, Lng: -8.6109, TS: base, Seq: pingSeq}); err != nil {
		t.Fatal(err)
	}
	snap, err := rider.CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109, Address: "Rua <b>Nova</b>"}, Dropoff: client.Place{Lat: 41.1530, Lng: -8.6109}}, "")
	if err != nil {
		t.Fatal(err)
	}
	ht := historyTrip{id: snap.Trip.ID, rider: rtok}
	for {
		if _, err := drv.TripAction(ctx, ht.id, "accept", ""); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("accept: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // until dispatch's offer is there
	}
	send := func(n int, lat0 float64) {
		for range n {
			i := len(ht.fixes)
			pingSeq++
			f := fix{seq: int64(i + 1), lat: lat0 + float64(i)*0.0001, lng: -8.6109, ts: base.Add(time.Duration(i+1) * 1500 * time.Millisecond)}
			if _, err := drv.SendLocation(ctx, dID, client.Ping{Lat: f.lat, Lng: f.lng, TS: f.ts, Seq: pingSeq}); err != nil {
				t.Fatal(err)
			}
			for {
				p, err := rider.GetTrip(ctx, ht.id, "")
				if err != nil {
					t.Fatal(err)
				}
				if l := p.Snapshot.Location; l != nil && l.Seq == f.seq {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("fix %d was not stored on the trip", f.seq)
				}
				time.Sleep(5 * time.Millisecond)
			}
			ht.fixes = append(ht.fixes, f)
		}
	}
	send(6, 41.1482)
	for _, a := range []string{"arrived", "pickup"} {
		if _, err := drv.TripAction(ctx, ht.id, a, ""); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	send(8, 41.1482)
	if _, err := drv.TripAction(ctx, ht.id, "complete", ""); err != nil {
		t.Fatal(err)
	}
	return ht
}

// archiveTrail waits until the pipeline has archived the trip's trail:
// every fix stored on the trip, keyed by the trip's trail seq, with its
// position (as stored: to 7 decimals) and time.
func archiveTrail(t *testing.T, m *Main, ht historyTrip, driverID string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var pts []archive.Point
		if s := m.Archive(); s != nil {
			pts, _ = s.Trail(context.Background(), archive.TrailQuery{TripID: ht.id, Limit: len(ht.fixes) + 10})
		}
		if len(pts) >= len(ht.fixes) {
			for i, f := range ht.fixes {
				p := pts[i]
				if len(pts) != len(ht.fixes) || p.Seq != f.seq || p.DriverID != driverID || math.Abs(p.Lat-f.lat) > 1e-7 || math.Abs(p.Lng-f.lng) > 1e-7 || !p.TS.Equal(f.ts) {
					t.Fatalf("archived trail point %d = %+v, want %+v of %d fixes (driver %s)", i, p, f, len(ht.fixes), driverID)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15s the archive holds %d of the trip's %d fixes", len(pts), len(ht.fixes))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitArchived waits until the archive holds the trip's final record and
// every event of its stream.
func waitArchived(t *testing.T, m *Main, id string) {
	t.Helper()
	ctx := context.Background()
	snap, err := m.Trips.Store().Snapshot(ctx, id, trip.Actor{Role: trip.RoleSystem})
	if err != nil {
		t.Fatal(err)
	}
	n, err := m.Redis().XLen(ctx, feed.StreamKey("", trip.Topic(id))).Result()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var rec archive.Trip
		var evs []archive.Event
		if s := m.Archive(); s != nil {
			rec, _ = s.Trip(ctx, id)
			evs, _ = s.Events(ctx, archive.EventQuery{Topic: trip.Topic(id), Limit: archive.MaxEventLimit})
		}
		if rec.Version == snap.Version && int64(len(evs)) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15s the archive holds version %d of %d and %d of %d events", rec.Version, snap.Version, len(evs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sameRead compares a read from Redis with one from the archive: equal to
// the byte (the feed stamps events to the microsecond, as the archive
// keeps them).
func sameRead(redis, arch httpReply) bool { return redis == arch }

type httpReply struct {
	status int
	etag   string
	body   string
}

func httpGet(t *testing.T, m *Main, path, tok string, header ...string) httpReply {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+m.Addr()+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpReply{status: resp.StatusCode, etag: resp.Header.Get("ETag"), body: string(b)}
}

// tripReads are the trip routes that must outlive Redis.
func tripReads(id string) []string {
	return []string{"/v1/trips/" + id, "/v1/trips/" + id + "/events?limit=1000", "/v1/trips/" + id + "/path"}
}

// TestTripServedFromArchive: a completed trip whose Redis keys were all
// deleted (as if they expired) is served whole from the archive: the
// snapshot, the long-polled events and the path are byte for byte what
// Redis served, with the same ETag, under the same access rules; its
// receipt and the lists have it. On SQLite and PostgreSQL.
func TestTripServedFromArchive(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(t *testing.T) Config
	}{
		{"sqlite", func(t *testing.T) Config { return Config{DataDir: filepath.Join(t.TempDir(), "state")} }},
		{"postgres", func(t *testing.T) Config { return Config{DatabaseURL: testPostgres(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := runMainWith(t, tc.cfg(t))
			ht := driveTrip(t, m, "r_hist", "d_hist")
			archiveTrail(t, m, ht, "d_hist")
			waitArchived(t, m, ht.id)
			before := map[string]httpReply{}
			for _, p := range tripReads(ht.id) {
				r := httpGet(t, m, p, ht.rider)
				if r.status != 200 {
					t.Fatalf("GET %s before: %d %s", p, r.status, r.body)
				}
				before[p] = r
			}
			var path struct{ Points []client.Crumb }
			if err := json.Unmarshal([]byte(before[tripReads(ht.id)[2]].body), &path); err != nil || len(path.Points) < 3 || len(path.Points) >= len(ht.fixes) {
				t.Fatalf("the path before: %d crumbs of %d fixes (want sampled): %v", len(path.Points), len(ht.fixes), err)
			}

			ctx := context.Background()
			link, err := client.New("http://"+m.Addr(), ht.rider, nil).ShareTrip(ctx, ht.id, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if r := httpGet(t, m, "/v1/trips/"+ht.id, link.Token); r.status != 200 {
				t.Fatalf("the viewer before: %d %s", r.status, r.body)
			}
			// A viewer of another trip of the same rider.
			other, err := client.New("http://"+m.Addr(), ht.rider, nil).CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
				Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "")
			if err != nil {
				t.Fatal(err)
			}
			otherLink, err := client.New("http://"+m.Addr(), ht.rider, nil).ShareTrip(ctx, other.Trip.ID, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := m.Redis().Keys(ctx, "*"+ht.id+"*").Result()
			if err != nil || len(keys) < 2 {
				t.Fatalf("the trip's keys: %v %v", keys, err)
			}
			if err := m.Redis().Del(ctx, keys...).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Trips.Store().Get(ctx, ht.id); err == nil {
				t.Fatal("the trip is still in Redis")
			}

			for _, p := range tripReads(ht.id) {
				after := httpGet(t, m, p, ht.rider)
				if !sameRead(before[p], after) {
					t.Errorf("GET %s from the archive differs:\nredis   %d %s %s\narchive %d %s %s", p,
						before[p].status, before[p].etag, before[p].body, after.status, after.etag, after.body)
				}
			}
			anon := client.New("http://"+m.Addr(), "", nil)
			tok := func(role, sub string) string {
				s, err := anon.DevToken(ctx, role, sub, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			// Today's access rules, from the archive.
			for who, c := range map[string]struct {
				tok    string
				status int
			}{
				"other rider": {tok("rider", "r_other"), 403}, "other driver": {tok("driver", "d_other"), 403},
				"its driver": {tok("driver", "d_hist"), 200}, "ops": {tok("ops", "o1"), 200}, "no token": {"", 401},
				"its rider": {ht.rider, 200}, "viewer of another trip": {otherLink.Token, 403},
			} {
				for _, p := range tripReads(ht.id) {
					if r := httpGet(t, m, p, c.tok); r.status != c.status {
						t.Errorf("GET %s as %s from the archive: %d %s, want %d", p, who, r.status, r.body, c.status)
					}
				}
			}
			// The share link lived in the trip's keys: gone with them, as
			// it would be from Redis (401 share_revoked), not opened by the
			// archive.
			for _, p := range tripReads(ht.id) {
				if r := httpGet(t, m, p, link.Token); r.status != 401 || !strings.Contains(r.body, "share_revoked") {
					t.Errorf("GET %s as the trip's viewer once its keys are gone: %d %s", p, r.status, r.body)
				}
			}
			// An SSE client starts from the archived snapshot.
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			f := <-client.New("http://"+m.Addr(), ht.rider, nil).WatchTrip(wctx, ht.id, "").C
			wcancel()
			if f.Type != "snapshot" || f.Snapshot == nil || f.Snapshot.Trip.ID != ht.id || f.Snapshot.Trip.Status != "completed" {
				t.Errorf("the first SSE frame of the archived trip: %+v", f)
			}
			// A poll's If-None-Match is answered from the archive too.
			snapPath := tripReads(ht.id)[0]
			if r := httpGet(t, m, snapPath, ht.rider, "If-None-Match", before[snapPath].etag); r.status != 304 {
				t.Errorf("If-None-Match of the archived trip: %d %s", r.status, r.body)
			}
			if r := httpGet(t, m, "/v1/trips/no_such_trip", ht.rider); r.status != 404 {
				t.Errorf("a trip in neither Redis nor the archive: %d %s", r.status, r.body)
			}
			r := httpGet(t, m, "/v1/trips/"+ht.id+"/receipt", ht.rider)
			if r.status != 200 || !strings.Contains(r.body, `"distance_m"`) || !strings.Contains(r.body, `"status":"completed"`) {
				t.Errorf("receipt: %d %s", r.status, r.body)
			}
			if r := httpGet(t, m, "/v1/trips", ht.rider); r.status != 200 || !strings.Contains(r.body, `"id":"`+ht.id+`"`) {
				t.Errorf("the rider's trips: %d %s", r.status, r.body)
			}
		})
	}
}

// TestRestartServesHistory is the acceptance of `make run`: a completed
// trip, stop, start again on the same data directory (the embedded Redis
// starts empty): the trip, its path and its receipt are served, with the
// rider token issued before the restart.
func TestRestartServesHistory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	m, stop := runMainWith(t, Config{DataDir: dir})
	ht := driveTrip(t, m, "r_restart", "d_restart")
	archiveTrail(t, m, ht, "d_restart")
	waitArchived(t, m, ht.id)
	// The completed trip's record carries the distance driven along its
	// breadcrumbs (the driver's km in /shifts): 13 fixes ~11 m apart.
	if rec, err := m.Archive().Trip(context.Background(), ht.id); err != nil || rec.DistanceM < 50 || rec.DistanceM > 300 {
		t.Fatalf("archived record: distance %v m, %v", rec.DistanceM, err)
	}
	before := map[string]httpReply{}
	for _, p := range tripReads(ht.id) {
		before[p] = httpGet(t, m, p, ht.rider)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	m2, _ := runMainWith(t, Config{DataDir: dir})
	if _, err := m2.Trips.Store().Get(context.Background(), ht.id); err == nil {
		t.Fatal("the trip is in the new node's Redis: the test proves nothing")
	}
	for _, p := range tripReads(ht.id) {
		if after := httpGet(t, m2, p, ht.rider); !sameRead(before[p], after) {
			t.Errorf("GET %s after the restart:\nbefore %d %s\nafter  %d %s", p, before[p].status, before[p].body, after.status, after.body)
		}
	}
	r := httpGet(t, m2, "/v1/trips/"+ht.id+"/receipt", ht.rider)
	var rc struct {
		TripID    string  `json:"trip_id"`
		DistanceM float64 `json:"distance_m"`
		WaitingS  float64 `json:"waiting_s"`
		DurationS float64 `json:"duration_s"`
	}
	if err := json.Unmarshal([]byte(r.body), &rc); err != nil || r.status != 200 || rc.TripID != ht.id || rc.DistanceM < 100 || rc.DurationS <= 0 {
		t.Fatalf("receipt after the restart: %d %s %v", r.status, r.body, err)
	}
	if h := httpGet(t, m2, "/v1/trips/"+ht.id+"/receipt?format=html", ht.rider); h.status != 200 || !strings.Contains(h.body, "Rua &lt;b&gt;Nova&lt;/b&gt;") {
		t.Fatalf("HTML receipt after the restart: %d %s", h.status, h.body)
	}
}

// TestCancelledTripFromArchive: a trip cancelled before any driver took
// it (no fix, no path) reads the same from the archive, and its receipt
// says so: no distance, no ride, the rider's reason.
func TestCancelledTripFromArchive(t *testing.T) {
	m, _ := runMainWith(t, Config{DataDir: filepath.Join(t.TempDir(), "state")})
	ctx := context.Background()
	anon := client.New("http://"+m.Addr(), "", nil)
	rtok, err := anon.DevToken(ctx, "rider", "r_cancel", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rider := anon.WithToken(rtok)
	snap, err := rider.CreateTrip(ctx, client.CreateTripRequest{Kind: "ride",
		Pickup: client.Place{Lat: 41.1496, Lng: -8.6109}, Dropoff: client.Place{Lat: 41.16, Lng: -8.62}}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := snap.Trip.ID
	if r := httpGet(t, m, "/v1/trips/"+id+"/receipt", rtok); r.status != 409 && r.status != 404 {
		t.Fatalf("receipt of a running trip: %d %s; want 409 (or 404 before it is archived)", r.status, r.body)
	}
	if _, err := rider.CancelTrip(ctx, id, "changed my <mind>"); err != nil {
		t.Fatal(err)
	}
	waitArchived(t, m, id)
	before := map[string]httpReply{}
	for _, p := range tripReads(id) {
		before[p] = httpGet(t, m, p, rtok)
	}
	if !strings.Contains(before[tripReads(id)[2]].body, `"points":[]`) {
		t.Fatalf("the path of a trip never driven: %s", before[tripReads(id)[2]].body)
	}
	keys, _ := m.Redis().Keys(ctx, "*"+id+"*").Result()
	if err := m.Redis().Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	for _, p := range tripReads(id) {
		if after := httpGet(t, m, p, rtok); !sameRead(before[p], after) {
			t.Errorf("GET %s from the archive:\nredis   %d %s\narchive %d %s", p, before[p].status, before[p].body, after.status, after.body)
		}
	}
	r := httpGet(t, m, "/v1/trips/"+id+"/receipt", rtok)
	var rc struct {
		Status       string   `json:"status"`
		DistanceM    float64  `json:"distance_m"`
		DurationS    float64  `json:"duration_s"`
		StartedAt    *string  `json:"started_at"`
		CancelReason string   `json:"cancel_reason"`
		Payments     []string `json:"payments"`
	}
	if err := json.Unmarshal([]byte(r.body), &rc); err != nil || r.status != 200 || rc.Status != "cancelled" ||
		rc.DistanceM != 0 || rc.DurationS != 0 || rc.StartedAt != nil || rc.CancelReason != "changed my <mind>" || rc.Payments == nil {
		t.Fatalf("receipt of the cancelled trip: %d %s %v", r.status, r.body, err)
	}
}
